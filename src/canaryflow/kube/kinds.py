"""Kubernetes resource kinds: where a kind lives in the REST API, and the kinds canaryflow writes.

A ``Kind`` is what every request needs to build its URL: the API version, the plural (the URL segment) and the
scope. The constants cover the kinds Flagger's controller touches; anything else is found with ``Api.discover``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    """One resource of one API version, e.g. ``apps/v1`` ``Deployment`` served as ``deployments``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group; ``""`` for the core group (``v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of a collection (no name), an object, or an object's subresource.

        A namespaced kind without a namespace is the all-namespaces collection (list and watch only); a
        cluster-scoped kind never takes a namespace, so passing one is a caller's mistake, not a URL to try.
        ``""`` means no namespace, as in Flux inventories and ``kubectl get -o json`` of cluster-scoped objects.
        """
        namespace = namespace or None
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if namespace is not None and not self.namespaced:
            raise ValueError(f"{self.kind} ({self.api_version}) is cluster-scoped: namespace {namespace!r} given")
        if namespace is None and name is not None and self.namespaced:
            raise ValueError(f"{self.kind} ({self.api_version}) is namespaced: {name!r} needs a namespace")
        if subresource is not None and name is None:
            raise ValueError(f"{self.kind} subresource {subresource!r} needs an object name")
        path = f"{base}/namespaces/{namespace}/{self.plural}" if namespace is not None else f"{base}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path

    def __str__(self) -> str:
        return f"{self.plural}.{self.api_version}"


NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
SERVICE = Kind("v1", "Service", "services")
CONFIGMAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
EVENT = Kind("v1", "Event", "events")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
DAEMONSET = Kind("apps/v1", "DaemonSet", "daemonsets")
HPA = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1beta1", "VirtualService", "virtualservices")
DESTINATION_RULE = Kind("networking.istio.io/v1beta1", "DestinationRule", "destinationrules")
CANARY = Kind("flagger.app/v1beta1", "Canary", "canaries")
METRIC_TEMPLATE = Kind("flagger.app/v1beta1", "MetricTemplate", "metrictemplates")
ALERT_PROVIDER = Kind("flagger.app/v1beta1", "AlertProvider", "alertproviders")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")
