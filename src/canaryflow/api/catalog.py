"""Where the engine's adapters look up the objects a Canary refers to (MetricTemplates, AlertProviders,
Secrets). Each runtime provides one: the local store, or the Kubernetes API's cache."""

from __future__ import annotations

from typing import Protocol

from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.metrictemplate import MetricTemplate


class Catalog(Protocol):
    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None: ...
    def alert_provider(self, namespace: str, name: str) -> AlertProvider | None: ...
    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded to text, or None when there is no such Secret."""
        ...


class MemoryCatalog:
    """A Catalog held in dictionaries: for tests and for the local runtime's in-memory mode."""

    def __init__(self) -> None:
        self.templates: dict[tuple[str, str], MetricTemplate] = {}
        self.providers: dict[tuple[str, str], AlertProvider] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, obj: MetricTemplate | AlertProvider) -> None:
        key = (obj.metadata.namespace, obj.metadata.name)
        if isinstance(obj, MetricTemplate):
            self.templates[key] = obj
        else:
            self.providers[key] = obj

    def add_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.secrets[(namespace, name)] = dict(data)

    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        return self.templates.get((namespace, name))

    def alert_provider(self, namespace: str, name: str) -> AlertProvider | None:
        return self.providers.get((namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.secrets.get((namespace, name))
        return dict(found) if found is not None else None
