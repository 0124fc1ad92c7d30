"""The local runtime's object store: what ``canaryflow apply`` applied, as the Kubernetes API would keep it.

An apply is all-or-nothing: every document is checked first (Flagger's kinds with the validator, the others for
a name and a kind the local runtime knows), and if any is invalid nothing is stored. Objects live in the same
SQLite file as the canaries' status, so they survive a crash together.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from canaryflow.api import references, validate
from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.loader import Document
from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.gitops.controller.objects import FLUX_KINDS

#: Kinds the local runtime runs or uses, by kind: the API group it must come from (any version).
RUN = {
    "Namespace": "",
    "Deployment": "apps",
    "Service": "",
    "ConfigMap": "",
    "Secret": "",
    "ServiceAccount": "",
    "HorizontalPodAutoscaler": "autoscaling",
    "Canary": "flagger.app",
    "MetricTemplate": "flagger.app",
    "AlertProvider": "flagger.app",
    # Flux's kinds: the GitOps controller reconciles them.
    **FLUX_KINDS,
}
#: Kinds judged by the validator (typed models, path-precise messages) before they are stored.
VALIDATED = frozenset({"Canary", "MetricTemplate", "AlertProvider", *FLUX_KINDS})
#: Kinds whose job the local runtime does itself (the mesh, Flagger, Istio's installation): stored and reported
#: as provided, never an error, so a whole GitOps repository applies unchanged.
PROVIDED = {
    "Gateway": "networking.istio.io",
    "Sidecar": "networking.istio.io",
    "IstioOperator": "install.istio.io",
    "HelmRelease": "helm.toolkit.fluxcd.io",
    "HelmRepository": "source.toolkit.fluxcd.io",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    kind: str
    namespace: str
    name: str
    action: str  # created | configured | unchanged | deleted | provided
    body: dict[str, Any]

    def __str__(self) -> str:
        group = RUN.get(self.kind, PROVIDED.get(self.kind, ""))
        resource = f"{self.kind.lower()}.{group}" if group else self.kind.lower()
        suffix = " (provided by the local runtime)" if self.action == "provided" else ""
        return f"{resource}/{self.name} {'unchanged' if self.action == 'provided' else self.action}{suffix}"


class Rejected(Exception):
    """The apply was refused as a whole; ``problems`` are the validator's lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def check(documents: Iterable[Document], default_namespace: str) -> list[tuple[dict[str, Any], Document]]:
    """Every document, with its namespace defaulted; raises Rejected listing every problem."""
    problems: list[str] = []
    accepted: list[tuple[dict[str, Any], Document]] = []
    for document in documents:
        body = document.body
        if not isinstance(body, dict):
            problems.append(f"{document.source}:{document.line}: not a Kubernetes object")
            continue
        kind, api_version = body.get("kind"), str(body.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        metadata = body.get("metadata") or {}
        where = f"{document.source}:{document.line}: {kind}/{metadata.get('name', '?')}"
        known = RUN.get(kind) if isinstance(kind, str) else None
        provided = PROVIDED.get(kind) if isinstance(kind, str) else None
        if known is None and provided is None:
            supported = ", ".join(sorted(RUN) + sorted(PROVIDED))
            problems.append(f"{where}: kind {kind!r} is not supported by the local runtime (supported: {supported})")
            continue
        if group != (known if known is not None else provided):
            problems.append(f"{where}: apiVersion {api_version!r} does not serve kind {kind}")
            continue
        if not isinstance(metadata.get("name"), str) or not metadata["name"]:
            problems.append(f"{where}: metadata.name: required")
            continue
        if kind in VALIDATED:
            checked = validate.check(document)
            problems.extend(str(p) for p in checked.problems)
            if checked.problems:
                continue
        if kind != "Namespace":
            metadata = {**metadata, "namespace": metadata.get("namespace") or default_namespace}
        accepted.append(({**body, "metadata": metadata}, document))
    if problems:
        raise Rejected(problems)
    return accepted


class ObjectStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS objects (kind TEXT, namespace TEXT, name TEXT, body TEXT NOT NULL,"
            " generation INTEGER NOT NULL, PRIMARY KEY (kind, namespace, name))"
        )
        # Status written by controllers (the GitOps controller's conditions and inventories), apart from the
        # objects so that re-applying an unchanged object never loses it.
        db.execute(
            "CREATE TABLE IF NOT EXISTS statuses (kind TEXT, namespace TEXT, name TEXT, status TEXT NOT NULL,"
            " PRIMARY KEY (kind, namespace, name))"
        )
        # Deleted objects a controller still has to finalize (the local runtime's finalizers): written in the
        # same transaction as the deletion, so a crash between the two cannot lose the job.
        db.execute(
            "CREATE TABLE IF NOT EXISTS finalizing (kind TEXT, namespace TEXT, name TEXT, body TEXT NOT NULL,"
            " PRIMARY KEY (kind, namespace, name))"
        )
        self.held: set[str] = set()  # kinds whose deletions are recorded in `finalizing`

    def hold_deletions(self, kind: str) -> None:
        """From now on, a deleted ``kind`` is also recorded (body and last status) until :meth:`finalized`."""
        self.held.add(kind)

    def finalizing(self, kind: str) -> list[dict[str, Any]]:
        """The deleted objects of ``kind`` whose finalization has not finished (oldest first)."""
        rows = self.db.execute("SELECT body FROM finalizing WHERE kind = ? ORDER BY rowid", (kind,))
        return [json.loads(r[0]) for r in rows.fetchall()]

    def finalized(self, kind: str, namespace: str, name: str) -> None:
        self.db.execute("DELETE FROM finalizing WHERE kind = ? AND namespace = ? AND name = ?", (kind, namespace, name))

    def apply(self, documents: Iterable[Document], default_namespace: str = "default") -> list[Change]:
        """Store the documents (all or nothing); returns what changed, in kubectl's words."""
        accepted = check(documents, default_namespace)
        changes: list[Change] = []
        self.db.execute("BEGIN")
        try:
            for body, _ in accepted:
                changes.append(self._put(body))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return changes

    def _put(self, body: dict[str, Any]) -> Change:
        kind, meta = body["kind"], body["metadata"]
        namespace = "" if kind == "Namespace" else meta["namespace"]
        old = self.get(kind, namespace, meta["name"])
        spec_of = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        if old is not None:
            old_spec = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            labels_same = old["metadata"].get("labels") == meta.get("labels")
            notes_same = old["metadata"].get("annotations") == meta.get("annotations")
            if old_spec == spec_of and labels_same and notes_same:
                action = "provided" if kind in PROVIDED else "unchanged"
                return Change(kind, namespace, meta["name"], action, old)
        generation = (old["metadata"].get("generation", 0) if old else 0) + 1
        stored = {**body, "metadata": {**meta, "generation": generation}}
        stored.pop("status", None)
        self.db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
            (kind, namespace, meta["name"], json.dumps(stored), generation),
        )
        action = "provided" if kind in PROVIDED else ("configured" if old else "created")
        return Change(kind, namespace, meta["name"], action, stored)

    def delete(self, documents: Iterable[Document], default_namespace: str = "default") -> list[Change]:
        changes = []
        for body, _ in check(documents, default_namespace):
            kind, meta = body["kind"], body["metadata"]
            namespace = "" if kind == "Namespace" else meta["namespace"]
            old = self.remove(kind, namespace, meta["name"])
            if old is not None:
                changes.append(Change(kind, namespace, meta["name"], "deleted", old))
        return changes

    def remove(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete one object (and its status); returns what was stored, with the status it last had, as the
        Kubernetes API returns a deleted object (a deleted Kustomization's inventory is what its finalization
        deletes)."""
        old = self.get(kind, namespace, name)
        status = self.status(kind, namespace, name)
        if old is not None and status:
            old = {**old, "status": status}
        where = (kind, namespace, name)
        self.db.execute("SAVEPOINT remove")  # one transaction, alone or inside apply's
        try:
            self.db.execute("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?", where)
            self.db.execute("DELETE FROM statuses WHERE kind = ? AND namespace = ? AND name = ?", where)
            if old is not None and kind in self.held:
                self.db.execute("INSERT OR REPLACE INTO finalizing VALUES (?, ?, ?, ?)", (*where, json.dumps(old)))
            self.db.execute("RELEASE remove")
        except BaseException:
            self.db.execute("ROLLBACK TO remove")
            self.db.execute("RELEASE remove")
            raise
        return old

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT status FROM statuses WHERE kind = ? AND namespace = ? AND name = ?", (kind, namespace, name)
        ).fetchone()
        return json.loads(row[0]) if row else {}

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO statuses VALUES (?, ?, ?, ?)", (kind, namespace, name, json.dumps(status))
        )

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (kind, namespace, name)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def keys(self) -> set[references.Key]:
        return {(k, ns, n) for k, ns, n in self.db.execute("SELECT kind, namespace, name FROM objects")}

    def dangling(self, documents: list[Document], default_namespace: str = "default") -> list[str]:
        """Warnings for the Canaries' references to nothing, in ``documents`` or among the stored objects
        (a warning, not a refusal: the object may be applied later, by hand or from git)."""
        checked = [validate.check(d) for d in documents]
        canaries = validate.canaries((c.document, c.resource) for c in checked if c.resource is not None)
        known = references.keys_of(documents, default_namespace) | self.keys()
        found = references.check(canaries, known, default_namespace, "this input or the runtime")
        return [str(warning) for warning in found]

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            rows = self.db.execute("SELECT body FROM objects WHERE kind = ? ORDER BY namespace, name", (kind,))
        else:
            rows = self.db.execute(
                "SELECT body FROM objects WHERE kind = ? AND namespace = ? ORDER BY name", (kind, namespace)
            )
        return [json.loads(r[0]) for r in rows.fetchall()]


class StoreCatalog:
    """The Catalog the metrics runner and the alert dispatcher read, over the object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        body = self.store.get("MetricTemplate", namespace, name)
        return MetricTemplate.model_validate(body) if body else None

    def alert_provider(self, namespace: str, name: str) -> AlertProvider | None:
        body = self.store.get("AlertProvider", namespace, name)
        return AlertProvider.model_validate(body) if body else None

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        import base64

        body = self.store.get("Secret", namespace, name)
        if body is None:
            return None
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()}
        data.update(body.get("stringData") or {})
        return data
