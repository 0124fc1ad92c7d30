"""The optional GitOps controller install in deploy/gitops: it builds, the API server would accept every object,
the Flux CRDs are Flux's own and cover what the controller reconciles, its pod is locked down as the operator's
is, and its command line is one `canaryflow gitops-controller` accepts."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing

from canaryflow.gitops.controller import RECONCILERS
from tests.deploy.manifests import DEPLOY, NAMESPACE, ROOT, kustomize, only, validate

GITOPS = DEPLOY / "gitops"
FLUX_CRDS = ROOT / "tests" / "fixtures" / "flux-crd"


@functools.cache
def built() -> list[dict[str, Any]]:
    return kustomize(GITOPS)


def deployment() -> dict[str, Any]:
    return only(built(), "Deployment")


def container() -> dict[str, Any]:
    containers = deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def gitops_options(argv: list[str]) -> Any:
    """The GitOpsOptions the real `canaryflow ARGV` starts with, stopped where it would connect to the cluster."""
    from canaryflow.cli.main import app
    from canaryflow.kube.gitops import run

    started: list[Any] = []

    async def fake_run(options: Any, stop: Any = None) -> None:
        started.append(options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "run", fake_run)
        for name in [n for n in os.environ if n.startswith("CANARYFLOW_")]:
            patch.delenv(name)
        result = typer.testing.CliRunner().invoke(app, argv)
    assert result.exit_code == 0, f"canaryflow {' '.join(argv)}:\n{result.output}"
    (options,) = started
    return options


def test_base_installs_the_flux_crds_and_the_controller_in_its_namespace() -> None:
    kinds = sorted(o["kind"] for o in built())
    assert kinds == sorted(["Namespace", "ServiceAccount", "ClusterRoleBinding", "Deployment", "Service", "Role",
                            "RoleBinding"] + ["CustomResourceDefinition"] * 6)  # fmt: skip
    assert only(built(), "Namespace")["metadata"]["name"] == NAMESPACE
    for obj in built():
        where = obj["metadata"].get("namespace")
        expected = None if obj["kind"] in {"Namespace", "CustomResourceDefinition", "ClusterRoleBinding"} else NAMESPACE
        assert where == expected, f"{obj['kind']}/{obj['metadata']['name']} in namespace {where!r}"
    # the same Namespace as the operator's base, so installing both agrees on it
    assert (GITOPS / "namespace.yaml").read_text() == (DEPLOY / "namespace.yaml").read_text()


def test_the_crds_are_fluxs_own_and_serve_every_kind_the_controller_reconciles() -> None:
    crds = [o for o in built() if o["kind"] == "CustomResourceDefinition"]
    assert {c["spec"]["names"]["kind"] for c in crds} == set(RECONCILERS)
    for path in sorted((GITOPS / "crds").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        assert path.read_text().startswith((FLUX_CRDS / path.name).read_text()), f"{path} is not Flux's CRD"
    for name in ("LICENSE", "PROVENANCE"):
        assert (GITOPS / "crds" / name).is_file(), f"deploy/gitops/crds/{name} is missing"
    provenance = (GITOPS / "crds" / "PROVENANCE").read_text()
    for crd in crds:
        assert f"{crd['metadata']['name'].partition('.')[2]}_{crd['spec']['names']['plural']}.yaml" in provenance


def test_every_object_is_accepted_by_the_api_server_schema() -> None:
    for obj in built():
        validate(obj)


def test_the_controller_is_bound_to_cluster_admin_with_the_reason_given() -> None:
    binding = only(built(), "ClusterRoleBinding")
    account = only(built(), "ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "cluster-admin"}  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    assert deployment()["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    comment = "\n".join(
        line for line in (GITOPS / "clusterrolebinding.yaml").read_text().splitlines() if line.startswith("#")
    )
    assert "cluster-admin" in comment and "kustomize-controller" in comment and "narrower" in comment


def test_the_pod_is_locked_down_as_the_operators_is() -> None:
    operator = only(kustomize(DEPLOY), "Deployment")["spec"]["template"]["spec"]
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"] == operator["securityContext"]
    assert container()["securityContext"] == operator["containers"][0]["securityContext"]
    assert deployment()["spec"]["replicas"] == 1 and deployment()["spec"]["strategy"] == {"type": "Recreate"}
    resources = container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    workdir = Path(gitops_options(["gitops-controller", *container()["args"]]).workdir)
    for writable in (Path("/tmp"), workdir):
        mount = next(m for m in container()["volumeMounts"] if writable.is_relative_to(m["mountPath"]))
        assert "emptyDir" in volumes[mount["name"]], f"{writable} is not on an emptyDir"


def test_probes_and_the_webhook_service_reach_the_listen_addresses() -> None:
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    options = gitops_options(["gitops-controller", *container()["args"]])
    assert (options.listen, options.receiver_listen) == ("0.0.0.0:8081", "0.0.0.0:9292")
    assert ports == {"http-metrics": 8081, "http-webhook": 9292}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    # named and numbered as Flux's, so an Ingress written for Flux's webhook-receiver works unchanged
    service = only(built(), "Service")
    assert service["metadata"]["name"] == "webhook-receiver"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http-webhook", "protocol": "TCP"}]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    operator = only(kustomize(DEPLOY), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= operator.items(), "the webhook Service selects the operator"


def test_command_and_args_are_accepted_by_canaryflow_gitops_controller() -> None:
    """The image's entrypoint runs the operator, so the pod names its command; the real CLI parses it with the
    Deployment's arguments up to where it would connect: an unknown flag fails here, not in a crash loop."""
    entrypoint = (ROOT / "Dockerfile").read_text().rstrip().splitlines()[-1]
    assert entrypoint == 'ENTRYPOINT ["canaryflow", "operator"]'
    command = container()["command"]
    assert command == ["canaryflow", "gitops-controller"]
    options = gitops_options([*command[1:], *container()["args"]])
    assert (options.namespaces, str(options.workdir), options.listen) == ((), "/data", "0.0.0.0:8081")
    assert options.leader_elect and options.lease_name == "canaryflow-gitops-leader-election"

    from canaryflow.cli.main import app

    group: Any = typer.main.get_command(app)  # typer's own vendored click: no isinstance against click.Group
    cli = group.get_command(group.context_class(group), "gitops-controller")
    envvars = {e for p in cli.params for e in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])}
    ours = {e["name"] for e in container().get("env", []) if e["name"].startswith("CANARYFLOW_")}
    assert ours <= envvars, f"the controller reads no {sorted(ours - envvars)}"


def test_leader_election_may_use_the_lease_it_names_in_its_own_namespace() -> None:
    """The Role grants what kube/gitops/leader.py calls on leases, for the Lease the Deployment names, in the
    namespace the pod is told (its own), to the pod's ServiceAccount."""
    import ast

    role, binding = only(built(), "Role"), only(built(), "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    (rule,) = role["rules"]
    source = (ROOT / "src" / "canaryflow" / "kube" / "gitops" / "leader.py").read_text()
    called = {node.func.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Attribute)
              and node.func.value.attr == "api"}  # fmt: skip
    assert (rule["apiGroups"], rule["resources"]) == (["coordination.k8s.io"], ["leases"])
    assert set(rule["verbs"]) == {{"replace": "update"}.get(call, call) for call in called}  # get, create, update
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": deployment()["spec"]["template"]["spec"][
        "serviceAccountName"], "namespace": NAMESPACE}]  # fmt: skip
    env = {e["name"]: e for e in container()["env"]}
    assert env["CANARYFLOW_LEADER_ELECTION_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_the_operators_base_does_not_install_it() -> None:
    """Optional: `kubectl apply -k deploy/` installs the operator only."""
    assert not [o for o in kustomize(DEPLOY) if o["metadata"]["name"].startswith("canaryflow-gitops")]
