"""Shared helpers of the install tests: the built kustomize base, schema validation, RBAC rules and what kopf needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer.testing
import yaml

from tests.kube import schemas

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "charts" / "canaryflow"
NAMESPACE = "canaryflow-system"

Permission = tuple[str, str, str]

# What kopf itself needs whatever the operator's modules do (kopf 1.45's source: kopf/_core/engines/peering.py,
# kopf/_core/reactor/observation.py): the peering object watched and patched (keep-alives) and CRDs listed and
# watched (resource observation). Its event posting is disabled by the runtime's settings.
KOPF: set[Permission] = {
    ("kopf.dev", "clusterkopfpeerings", "list"),
    ("kopf.dev", "clusterkopfpeerings", "watch"),
    ("kopf.dev", "clusterkopfpeerings", "patch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# kopf watching listed namespaces: each namespace's KopfPeering, and the list of namespaces (which exist).
KOPF_NAMESPACED: set[Permission] = {("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "patch")}
KOPF_NAMESPACES: set[Permission] = {("", "namespaces", "list"), ("", "namespaces", "watch")}
# Needed by the API server rather than by a call: objects whose ownerReference sets blockOwnerDeletion need
# update on the owner's finalizers (test_owner_references_that_block_deletion_are_allowed).
OWNER_FINALIZERS: Permission = ("flagger.app", "canaries/finalizers", "update")

# The runtime and kopf use the ClusterKopfPeering when they watch all namespaces (this base), a KopfPeering per
# namespace when they watch listed ones (the chart's `namespaces`): the code names both kinds, each mode needs one.
NAMESPACED_ONLY = {"kopfpeerings"}
CLUSTERWIDE_ONLY = {"clusterkopfpeerings"}


def kustomize(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize PATH``: the objects ``kubectl apply -k PATH`` would send."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to build the kustomize base"
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def validate(obj: Mapping[str, Any]) -> None:
    """What the API server would refuse (kubernetes-validate, strict, 1.30; CRDs as apiextensions.k8s.io/v1)."""
    try:
        schemas.validate(dict(obj))
    except Exception as error:
        raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']}: {error}") from error


def operator_options(args: Sequence[str]) -> Any:
    """The OperatorOptions `canaryflow operator ARGS` starts the runtime with: the real command, stopped where
    it would connect to the cluster. Fails with the command's own message on a flag or value it refuses."""
    from canaryflow.cli.main import app
    from canaryflow.kube import runtime

    started: list[Any] = []

    async def run(self: runtime.OperatorRuntime) -> None:
        started.append(self.options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime.OperatorRuntime, "run", run)
        for name in [n for n in os.environ if n.startswith("CANARYFLOW_")]:
            patch.delenv(name)
        result = typer.testing.CliRunner().invoke(app, ["operator", *args])
    assert result.exit_code == 0, f"canaryflow operator {' '.join(args)}:\n{result.output}"
    (options,) = started
    return options


def granted(rules: Iterable[Mapping[str, Any]]) -> set[Permission]:
    """Every (group, resource, verb) a list of PolicyRules allows, spelled out."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def uncommented_rules(text: str) -> list[int]:
    """Line numbers of rules (``- apiGroups:``) that no comment line explains right above."""
    lines = text.splitlines()
    return [
        number
        for number, line in enumerate(lines, start=1)
        if line.strip().startswith("- apiGroups:") and not lines[number - 2].strip().startswith("#")
    ]


def only(objects: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    found = [dict(o) for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
