"""The install manifests in deploy/: they build, the API server would accept them, the operator may do what its
code does (and no more than the comments justify), its pod is locked down, and its flags are the CLI's."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
import typer.testing

from tests.deploy import usage
from tests.deploy.manifests import (
    CHART,
    DEPLOY,
    KOPF,
    NAMESPACE,
    NAMESPACED_ONLY,
    OWNER_FINALIZERS,
    ROOT,
    granted,
    kustomize,
    only,
    operator_options,
    uncommented_rules,
    validate,
)

CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
REGENERATE = "# Regenerate with `make crds`"


@functools.cache
def built() -> list[dict[str, Any]]:
    return kustomize(DEPLOY)


def crds() -> list[dict[str, Any]]:
    return [o for o in built() if o["kind"] == "CustomResourceDefinition"]


def deployment() -> dict[str, Any]:
    return only(built(), "Deployment")


def container() -> dict[str, Any]:
    containers = deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def cluster_role() -> dict[str, Any]:
    return only(built(), "ClusterRole")


def test_crd_files_are_the_output_of_canaryflow_crds() -> None:
    command = Path(sys.executable).with_name("canaryflow")
    out = subprocess.run([str(command), "crds"], capture_output=True, text=True, timeout=120, check=True).stdout
    for path in (DEPLOY / "crds" / "canaryflow.yaml", CHART / "crds" / "canaryflow.yaml"):
        header, _, body = path.read_text().partition("\n")
        assert header.startswith(REGENERATE), f"{path}: the first line must say how to regenerate it"
        assert body == out, f"{path} is stale: run `make crds`"
    assert (CHART / "crds" / "kopf-peering.yaml").read_text() == (DEPLOY / "crds" / "kopf-peering.yaml").read_text()


def test_base_installs_crds_rbac_and_operator_in_its_namespace() -> None:
    kinds = sorted(o["kind"] for o in built())
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"]
        + ["CustomResourceDefinition"] * 5
    )
    assert {c["metadata"]["name"] for c in crds()} == {
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
        "alertproviders.flagger.app",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    assert only(built(), "Namespace")["metadata"]["name"] == NAMESPACE
    for obj in built():
        where = obj["metadata"].get("namespace")
        expected = None if obj["kind"] in CLUSTER_SCOPED else NAMESPACE
        assert where == expected, f"{obj['kind']}/{obj['metadata']['name']} in namespace {where!r}"


def test_every_object_is_accepted_by_the_api_server_schema() -> None:
    for obj in built():
        validate(obj)


def test_rbac_grants_exactly_what_the_operator_code_and_kopf_use() -> None:
    needed = {p for p in usage.used_by(ROOT / "src" / "canaryflow" / "kube") | KOPF if p[1] not in NAMESPACED_ONLY}
    rules = granted(cluster_role()["rules"])
    missing = needed - rules
    assert not missing, f"deploy/rbac/clusterrole.yaml lacks {sorted(missing)}"
    unused = rules - needed - {OWNER_FINALIZERS}
    assert not unused, f"deploy/rbac/clusterrole.yaml grants what nothing uses: {sorted(unused)}"


def test_owner_references_that_block_deletion_are_allowed() -> None:
    """The operator's objects name the Canary as controller with blockOwnerDeletion, which the API server's
    OwnerReferencesPermissionEnforcement admits only with update on canaries/finalizers."""
    meta = (ROOT / "src" / "canaryflow" / "kube" / "render" / "meta.py").read_text()
    assert '"blockOwnerDeletion": True' in meta
    assert OWNER_FINALIZERS in granted(cluster_role()["rules"])


def test_the_rbac_check_sees_a_new_call() -> None:
    """A module that starts deleting Services needs a grant the ClusterRole does not have."""
    known = {"SERVICE": ("", "services"), "DEPLOYMENT": ("apps", "deployments"), "HPA": ("autoscaling", "hpas")}
    source = (
        "_KINDS = {'Deployment': DEPLOYMENT}\n"
        "async def cleanup(self, ns, name):\n"
        "    await self._api.delete(SERVICE, ns, name)\n"
        "    await self._api.apply(client.DEPLOYMENT, {})\n"
        "    await self.api.patch(_KINDS[name], ns, name, {})\n"
        "    kind = pick(name)\n"
        "    await self._api.replace_status(kind, {})\n"
    )
    needed = usage.permissions(source, known)
    assert ("", "services", "delete") in needed
    assert {("apps", "deployments", "patch"), ("apps", "deployments", "create")} <= needed  # apply creates too
    assert ("autoscaling", "hpas", "patch") not in needed  # _KINDS names Deployments only
    assert ("autoscaling", "hpas/status", "update") not in needed  # not named in the module at all
    assert ("apps", "deployments/status", "update") in needed  # unresolved: every kind the module names
    assert ("", "services", "delete") not in granted(cluster_role()["rules"])


def test_the_rbac_check_follows_helpers_that_take_a_kind() -> None:
    known = {"SERVICE": ("", "services"), "HPA": ("autoscaling", "hpas")}
    helper = "async def converge(api, kind, ns, name):\n    await api.replace(kind, {})\n"
    caller = "async def f(self):\n    for kind in (SERVICE,):\n        await converge(self.api, kind, 'ns', 'n')\n"
    wrapped = usage.wrappers(helper)
    assert usage.permissions(helper, known, wrapped) == set()  # counted where it is called
    assert usage.permissions(caller, known, wrapped) == {("", "services", "update")}
    returned = (
        "_KINDS = {'Service': SERVICE}\n"
        "def _kind(name):\n    kind = _KINDS.get(name)\n    if kind is None:\n        raise KeyError(name)\n"
        "    return kind\n"
        "async def f(self):\n    await self.api.patch(_kind('Service'), 'ns', 'n', {})\n"
        "    await self.api.get(HPA, 'ns', 'n')\n"
    )
    assert usage.permissions(returned, known) == {("", "services", "patch"), ("autoscaling", "hpas", "get")}


def test_the_rbac_check_follows_a_kind_through_nested_plans_and_helpers_of_helpers() -> None:
    """``converge`` writes from a nested ``plan`` with its own ``kind``, and hands it to a shared retry loop; a
    cache follows a watch through a method: each call counts for the kind its outermost caller names."""
    known = {"SERVICE": ("", "services"), "SECRET": ("", "secrets"), "HPA": ("autoscaling", "hpas")}
    helpers = (
        "async def converge(api, kind, ns, name):\n"
        "    def plan(live):\n        return lambda: api.create(kind, {})\n"
        "    return await _retrying(api, kind, ns, name, plan)\n"
        "async def _retrying(api, kind, ns, name, plan):\n    await api.get(kind, ns, name)\n"
        "async def follow(api, kind, ns):\n    async for e in api.watch(kind, ns):\n        pass\n"
    )
    caller = (
        "class Cache:\n"
        "    async def start(self):\n        for kind in (HPA,):\n            await self._follow(kind, None)\n"
        "    async def _follow(self, kind, ns):\n        await follow(self.api, kind, ns)\n"
        "    async def write(self):\n        await converge(self.api, SERVICE, 'ns', 'n')\n"
        "    async def secret(self):\n        return SECRET\n"
    )
    wrapped: usage.Wrapped = {}
    for _ in range(3):  # as used_by does, until no more wrappers are found
        wrapped = {**usage.wrappers(helpers, wrapped), **usage.wrappers(caller, wrapped)}
    assert usage.permissions(helpers, known, wrapped) == set()
    assert usage.permissions(caller, known, wrapped) == {
        ("", "services", "create"), ("", "services", "get"),
        ("autoscaling", "hpas", "list"), ("autoscaling", "hpas", "watch"),
    }  # fmt: skip


def test_rbac_is_least_privilege_and_explained() -> None:
    for rule in cluster_role()["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {rule}"
        assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"], rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    path = DEPLOY / "rbac" / "clusterrole.yaml"
    assert not uncommented_rules(path.read_text()), f"{path}: rules without a justifying comment"
    binding = only(built(), "ClusterRoleBinding")
    account = only(built(), "ServiceAccount")
    assert binding["roleRef"]["name"] == cluster_role()["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    assert deployment()["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_the_operator_pod_is_locked_down() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    tmp = next(m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])


def test_probes_and_metrics_service_reach_the_listen_address() -> None:
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert "--listen=0.0.0.0:8080" in container()["args"] and ports == {"http-metrics": 8080}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    service = only(built(), "Service")
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}
    ]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_deployment_args_and_environment_are_accepted_by_canaryflow_operator() -> None:
    """The real `canaryflow operator` command with the Deployment's arguments, up to the point where it would
    connect to the cluster: an unknown flag or a value it refuses fails here, not in a crash-looping pod."""
    from canaryflow.cli.main import app

    options = operator_options(container()["args"])
    assert (options.listen, options.peering, options.namespaces) == ("0.0.0.0:8080", "canaryflow", ())

    group: Any = typer.main.get_command(app)  # typer's own vendored click: no isinstance against click.Group
    command = group.get_command(group.context_class(group), "operator")
    envvars = {e for p in command.params for e in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])}
    ours = {e["name"] for e in container()["env"] if e["name"].startswith("CANARYFLOW_")}
    assert ours <= envvars, f"the operator reads no {sorted(ours - envvars)}"


def test_dockerfile_runs_the_operator_as_the_pods_user() -> None:
    """The image cannot be built here (no Docker daemon); what the Deployment relies on is checked in the file."""
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim AS build" in text
    assert 'pip install ".[kube]"' in text
    assert "USER 10001:10001" in text
    assert text.rstrip().endswith('ENTRYPOINT ["canaryflow", "operator"]')
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsGroup"] == 10001
