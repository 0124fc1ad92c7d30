"""Building a Notifier: from an AlertProvider and its Secret, or from a type and an address (the global one).

Where the address comes from, as in Flagger: ``spec.address``, unless the provider has a ``secretRef``: then
the Secret's ``address`` key, which must exist and wins over ``spec.address`` when both are set (webhook URLs
are credentials and belong in Secrets; Flagger's docs set both for a Slack bot token). A
``token`` key in that Secret is sent as ``Authorization: Bearer``. Unlike Flagger, a bad provider is never
silently replaced by a notifier that drops alerts: every problem is an AlertProviderError saying what to fix.
"""

from __future__ import annotations

from collections.abc import Callable

from canaryflow.api.alertprovider import ALERT_PROVIDER_TYPES, AlertProvider
from canaryflow.api.catalog import Catalog
from canaryflow.notify.base import Notifier, NotifyError
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.discord import DiscordNotifier
from canaryflow.notify.gchat import GChatNotifier
from canaryflow.notify.msteams import MSTeamsNotifier
from canaryflow.notify.rocket import RocketNotifier
from canaryflow.notify.slack import SlackNotifier

DEFAULT_CHANNEL = "general"
DEFAULT_USERNAME = "flagger"

NotifierFactory = Callable[[AlertProvider, Catalog], Notifier]
"""What the AlertDispatcher calls to turn an AlertProvider into a Notifier; ``build_notifier`` is one."""


class AlertProviderError(NotifyError):
    """An AlertProvider cannot be used as written: no address, a missing Secret, an unknown type."""


def notifier_for(
    kind: str, endpoint: Endpoint, *, channel: str = DEFAULT_CHANNEL, username: str = DEFAULT_USERNAME
) -> Notifier:
    """The notifier for provider type ``kind``; raises AlertProviderError listing the valid types."""
    match kind:
        case "slack":
            return SlackNotifier(endpoint, channel=channel, username=username)
        case "discord":
            return DiscordNotifier(endpoint, channel=channel, username=username)
        case "rocket":
            return RocketNotifier(endpoint, channel=channel, username=username)
        case "msteams":
            return MSTeamsNotifier(endpoint)
        case "gchat":
            return GChatNotifier(endpoint)
    raise AlertProviderError(f"unknown alert provider type {kind!r}: valid types are {', '.join(ALERT_PROVIDER_TYPES)}")


def build_notifier(provider: AlertProvider, catalog: Catalog) -> Notifier:
    """The notifier an AlertProvider describes, reading its Secret from ``catalog``."""
    namespace, name = provider.metadata.namespace, provider.metadata.name
    where = f"alert provider {namespace}/{name}"
    spec = provider.spec
    address, token = spec.address, None
    if spec.secret_ref is not None:
        secret_name = f"{namespace}/{spec.secret_ref.name}"
        secret = catalog.secret(namespace, spec.secret_ref.name)
        if secret is None:
            raise AlertProviderError(f"{where}: secret {secret_name} not found")
        # Values written with `kubectl create secret --from-file` usually end in a newline.
        address = secret.get("address", "").strip()
        token = secret.get("token", "").strip() or None
        if not address:
            ignored = " (spec.address is not used when secretRef is set, as in Flagger)" if spec.address else ""
            raise AlertProviderError(f"{where}: secret {secret_name} has no 'address' key{ignored}")
    if not address:
        raise AlertProviderError(f"{where} has no address: set spec.address or spec.secretRef")
    try:
        endpoint = Endpoint(address.strip(), token=token, proxy=spec.proxy or None)
    except ValueError as exc:
        raise AlertProviderError(f"{where}: {exc}") from exc
    return notifier_for(
        spec.type,
        endpoint,
        channel=spec.channel or DEFAULT_CHANNEL,
        username=spec.username or DEFAULT_USERNAME,
    )
