"""GitOps commands of the local runtime, named as Flux users know them: ``reconcile source|kustomization``,
``get sources|kustomizations|images``, ``tree kustomization``, ``diff kustomization``, and ``up --git`` (what
``flux bootstrap`` does: a ``flux-system`` GitRepository and a Kustomization for one path of the repository)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml

from canaryflow.api.flux.status import ImagePolicyStatus, read
from canaryflow.cli import view
from canaryflow.cli.client import CliError, Runtime
from canaryflow.cli.options import StateDir, fail, flag, out
from canaryflow.cli.progress import waiting
from canaryflow.local.gitops_api import KINDS, RECONCILE_TIMEOUT

#: What ``get`` lists, by the word users type; ``images`` lists the three image kinds.
LISTINGS = {
    "sources": ("gitrepositories",), "source": ("gitrepositories",), "gitrepositories": ("gitrepositories",),
    "kustomizations": ("kustomizations",), "kustomization": ("kustomizations",), "ks": ("kustomizations",),
    "images": ("imagerepositories", "imagepolicies", "imageupdateautomations"),
    "imagerepositories": ("imagerepositories",), "imagepolicies": ("imagepolicies",),
    "imageupdateautomations": ("imageupdateautomations",), "receivers": ("receivers",),
}  # fmt: skip
RECONCILABLE = {"source": "gitrepositories", "kustomization": "kustomizations", "ks": "kustomizations",
                "image": "imagerepositories", "imagepolicy": "imagepolicies", "receiver": "receivers",
                "imageupdateautomation": "imageupdateautomations"}  # fmt: skip
DEFAULT_NAMESPACE = "flux-system"
#: How long ``reconcile`` waits for the runtime's answer: a little more than the runtime waits for the reconcile.
RECONCILE_WAIT = RECONCILE_TIMEOUT + 10

Namespace = Annotated[str, typer.Option("-n", "--namespace", metavar="NAMESPACE", help="The object's namespace.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")]
#: The word ``kustomization`` that ``tree`` and ``diff`` take before the name (``ks`` too), as flux's commands do.
KustomizationWord = Annotated[str, typer.Argument(metavar="kustomization", help="kustomization")]
#: The kind of each plural ``get`` lists.
KIND_OF = {plural: kind for plural, kind in KINDS.items() if plural.endswith("s") and plural != "sources"}


def bootstrap(url: str, branch: str, path: str, interval: str = "1m0s") -> str:
    """The two objects ``flux bootstrap`` creates, as YAML: the runtime then follows ``path`` of ``url``."""
    meta = {"name": "flux-system", "namespace": DEFAULT_NAMESPACE}
    repo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": meta,
        "spec": {"interval": interval, "url": url, "ref": {"branch": branch}},
    }
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {"interval": "10m0s", "path": path, "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
    }  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEFAULT_NAMESPACE}}
    return yaml.safe_dump_all([namespace, repo, kustomization], sort_keys=False)


def rows(plural: str, items: list[dict[str, Any]]) -> view.Rows:
    found = []
    for item in items:
        status = item.get("status") or {}
        ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        found.append((
            item["metadata"]["namespace"],
            item["metadata"]["name"],
            _revision(plural, status),
            str(bool((item.get("spec") or {}).get("suspend"))),
            str(ready.get("status", "Unknown")),
            " ".join(str(ready.get("message", "not reconciled yet")).split()),
        ))  # fmt: skip
    columns = ("NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE")
    return view.Rows(columns, found, [f"{plural}/{view.key(i)}" for i in items])


def _revision(plural: str, status: dict[str, Any]) -> str:
    if plural == "gitrepositories":
        return str((status.get("artifact") or {}).get("revision", ""))
    if plural == "kustomizations":
        return str(status.get("lastAppliedRevision") or "")
    if plural == "imagepolicies":
        return str(read(ImagePolicyStatus, status).latest_ref or "")
    if plural == "imagerepositories":
        return (
            f"{(status.get('lastScanResult') or {}).get('tagCount', '')} tags" if status.get("lastScanResult") else ""
        )
    if plural == "imageupdateautomations":
        return str(status.get("lastPushCommit") or "")
    return str(status.get("webhookPath") or "")


def register(app: typer.Typer) -> None:
    @app.command()
    def reconcile(
        kind: Annotated[
            str, typer.Argument(metavar="KIND", help="source | kustomization | image | imagepolicy | receiver")
        ],
        name: Name,
        namespace: Namespace = DEFAULT_NAMESPACE,
        with_source: Annotated[bool, flag("--with-source", help="Fetch the source first.")] = False,
        state_dir: StateDir = None,
    ) -> None:
        """Reconcile a Flux object now and wait for the result (``flux reconcile``)."""
        plural = RECONCILABLE.get(kind)
        if plural is None:
            raise fail(CliError(f"cannot reconcile {kind!r}: one of {', '.join(sorted(RECONCILABLE))}"))
        try:
            params = {"with_source": "1"} if with_source else {}
            with waiting(f"reconciling {kind} {namespace}/{name}"):
                data = Runtime(state_dir).json(
                    "POST", f"/gitops/{plural}/{namespace}/{name}/reconcile", params=params, timeout=RECONCILE_WAIT
                )
        except CliError as exc:
            raise fail(exc) from None
        ready: dict[str, Any] = next(
            (c for c in data["status"].get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        out().print(f"{kind} {namespace}/{name}: {ready.get('message', 'reconciled')}")
        if ready.get("status") != "True":
            raise typer.Exit(1)

    def kustomization_view(view: str, kind: str, name: str, namespace: str, state_dir: str | None) -> Any:
        """``tree`` and ``diff``: both take ``kustomization NAME`` and read one view of it from the runtime."""
        if kind not in ("kustomization", "ks"):
            raise fail(CliError(f"{view} works on kustomizations: canaryflow {view} kustomization NAME"))
        try:
            return Runtime(state_dir).json("GET", f"/gitops/kustomizations/{namespace}/{name}/{view}")
        except CliError as exc:
            raise fail(exc) from None

    @app.command()
    def tree(
        kind: KustomizationWord,
        name: Name,
        namespace: Namespace = DEFAULT_NAMESPACE,
        state_dir: StateDir = None,
    ) -> None:
        """The objects a Kustomization applied (its inventory)."""
        data = kustomization_view("tree", kind, name, namespace, state_dir)
        out().print(f"Kustomization/{namespace}/{name}")
        entries = data["entries"]
        for i, entry in enumerate(entries):
            ns, obj, _group, kind_ = str(entry["id"]).split("_", 3)
            branch = "└──" if i == len(entries) - 1 else "├──"
            provided = " (provided by the local runtime)" if entry.get("provided") else ""
            out().print(f"{branch} {kind_}/{ns + '/' if ns else ''}{obj}{provided}", markup=False)

    @app.command()
    def diff(
        kind: KustomizationWord,
        name: Name,
        namespace: Namespace = DEFAULT_NAMESPACE,
        state_dir: StateDir = None,
    ) -> None:
        """What applying the Kustomization's current revision would change; exit code 1 when anything would."""
        data = kustomization_view("diff", kind, name, namespace, state_dir)
        for difference in data["differences"]:
            out().print(f"► {difference['object']} {difference['action']}", markup=False)
            for line in difference.get("lines") or []:
                out().print(f"  {line}", markup=False)
        if data["differences"]:
            raise typer.Exit(1)
        out().print("no differences")
