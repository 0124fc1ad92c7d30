"""Sending one alert about a canary to everyone who should hear it: the one place severity is filtered.

A canary without ``analysis.alerts`` uses the global notifier (the controller's Slack or Teams URL), if any.
A canary with alerts posts to each entry whose severity admits the alert, looking the AlertProvider up in
the entry's ``providerRef`` namespace (the canary's own by default). Deliveries run concurrently, so one
slow service does not delay the others. Nothing here raises: what failed comes back as messages for the
caller to log or record as events, because a chat outage must never stop a canary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from canaryflow.api.canary import Canary, Strategy
from canaryflow.api.catalog import Catalog
from canaryflow.notify.base import Alert, Notifier, Severity
from canaryflow.notify.factory import NotifierFactory, build_notifier

_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.ERROR: 2}

Fields = tuple[tuple[str, str], ...]


def receives(entry_severity: str, severity: Severity) -> bool:
    """Whether an alert entry gets an alert: ``info`` (or empty) gets all, ``warn`` warn and error, ``error``
    only error."""
    return _RANK[severity] >= _RANK[Severity(entry_severity or Severity.INFO)]


class AlertDispatcher:
    def __init__(
        self,
        catalog: Catalog,
        global_notifier: Notifier | None = None,
        factory: NotifierFactory = build_notifier,
    ) -> None:
        self._catalog = catalog
        self._global = global_notifier
        self._factory = factory

    @property
    def global_notifier(self) -> Notifier | None:
        return self._global

    @global_notifier.setter
    def global_notifier(self, notifier: Notifier | None) -> None:
        """Replaced when the configuration behind it changes (the local runtime's flagger HelmRelease)."""
        self._global = notifier

    async def send(
        self, canary: Canary, message: str, severity: Severity, fields: Iterable[tuple[str, str]] = ()
    ) -> list[str]:
        """Post the alert wherever the canary says; returns one message per delivery that failed."""
        namespace = canary.metadata.namespace
        alert = Alert(canary.metadata.name, namespace, message, severity, tuple(fields))
        entries = canary.spec.effective_analysis.alerts or []
        if not entries:
            if self._global is None:
                return []
            error = await _deliver(self._global, alert)
            return [f"global notifier: {error}"] if error else []
        # Two entries naming the same provider (say, one `info` and one `error`) would post the same message
        # twice; each provider hears an alert once.
        providers: dict[tuple[str, str], str] = {}
        for entry in entries:
            if receives(entry.severity, severity):
                key = (entry.provider_ref.namespace or namespace, entry.provider_ref.name)
                providers.setdefault(key, entry.name)
        errors = await asyncio.gather(*(self._post(key, alert) for key in providers))
        return [f"alert {providers[key]}: {error}" for key, error in zip(providers, errors, strict=True) if error]

    async def _post(self, key: tuple[str, str], alert: Alert) -> str | None:
        namespace, name = key
        provider = self._catalog.alert_provider(namespace, name)
        if provider is None:
            return f"alert provider {namespace}/{name} not found"
        try:
            notifier = self._factory(provider, self._catalog)
        except Exception as exc:  # a broken provider is reported like a failed delivery, never raised
            return str(exc)
        error = await _deliver(notifier, alert)
        return f"alert provider {namespace}/{name}: {error}" if error else None


async def _deliver(notifier: Notifier, alert: Alert) -> str | None:
    try:
        await notifier.post(alert)
    except Exception as exc:  # NotifyError, or a notifier's bug: either way the canary goes on
        return str(exc) or type(exc).__name__
    return None


def canary_fields(canary: Canary, cluster: str | None = None) -> Fields:
    """Flagger's standard alert fields: Target, Failed checks threshold, Progress deadline, Traffic routing
    (and Cluster first, when the controller is given a cluster name)."""
    spec = canary.spec
    analysis = spec.effective_analysis
    target = spec.target_ref
    fields: list[tuple[str, str]] = [("Cluster", cluster)] if cluster else []
    fields += [
        ("Target", f"{target.kind}/{target.name}.{canary.metadata.namespace}"),
        ("Failed checks threshold", str(analysis.effective_threshold)),
        ("Progress deadline", f"{spec.progress_deadline_seconds}s"),
    ]
    routing = _traffic_routing(canary)
    if routing:
        fields.append(("Traffic routing", routing))
    return tuple(fields)


def _traffic_routing(canary: Canary) -> str | None:
    analysis = canary.spec.effective_analysis
    match analysis.strategy:
        case Strategy.AB_TESTING:
            return "A/B Testing"
        case Strategy.BLUE_GREEN:
            return "Blue/Green"
    # Flagger prints the raw maxWeight (0 when unset); the effective one is what the canary will reach.
    if analysis.step_weight:
        return f"Weight step: {analysis.step_weight} max: {analysis.effective_max_weight}"
    if analysis.step_weights:
        steps = ",".join(str(w) for w in analysis.step_weights)
        return f"Weight steps: {steps} max: {analysis.effective_max_weight}"
    return None
