"""Reaching the Kubernetes API for the providers that read it (externalmetrics, keptn), as client-go would.

Flagger passes them its own rest.Config; canaryflow builds the same from what a pod sees: the API server's
``KUBERNETES_SERVICE_HOST``/``_PORT`` and the service account's token and CA files. ``spec.provider.address``
and a secret's ``token`` replace them (Flagger honours both for externalmetrics; canaryflow for keptn too). The
local runtime has no Kubernetes API: without an address such a template is an error that says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from canaryflow.metrics.base import MetricError
from canaryflow.metrics.rest import ProviderConfig, RestClient

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def client(config: ProviderConfig) -> tuple[str, RestClient]:
    """The API server's base URL and a client that authenticates to it."""
    token = config.secret_key("token", required=False)
    if config.address:
        base = config.checked(config.address)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        base = f"https://{f'[{host}]' if ':' in host else host}:{port}"
        if token is None and (SERVICE_ACCOUNT / "token").is_file():
            token = (SERVICE_ACCOUNT / "token").read_text().strip()
    else:
        raise MetricError(
            f"{config.who}: a {config.type} provider reads the Kubernetes API, and none is reachable here (not in a "
            "pod, and no spec.provider.address); the local runtime has no Kubernetes API"
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ca = SERVICE_ACCOUNT / "ca.crt"
    in_pod = not config.address and ca.is_file() and not config.template.spec.provider.insecure_skip_verify
    return base, RestClient(config, headers, verify=str(ca) if in_pod else None)


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FACTORS = {
    None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def quantity(text: str) -> float:
    """A Kubernetes resource.Quantity (``1500m``, ``2k``, ``1Ki``, ``3e2``) as a float; ValueError otherwise."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    return float(match.group(1)) * _FACTORS[match.group(2)]
