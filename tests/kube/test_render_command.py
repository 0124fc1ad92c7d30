"""``canaryflow kube render`` as a user runs it: which routes a weight and phase give, and what is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from canaryflow.api.canary import Canary
from canaryflow.api.status import Phase
from canaryflow.engine.effects import Routes
from canaryflow.kube.render import RenderError, cli, parse_phase, routes_for
from tests.kube.builders import canary_doc, deployment_doc

CANARY = Canary.model_validate(canary_doc())
MIRROR = Canary.model_validate(canary_doc(analysis="stepWeight: 10\nmirror: true"))
AB = Canary.model_validate(canary_doc(analysis="iterations: 5\nmatch: [{headers: {x-canary: {exact: 'on'}}}]"))
BLUE_GREEN = Canary.model_validate(canary_doc(analysis="iterations: 5\nmirror: true"))


@pytest.mark.parametrize(
    ("canary", "weight", "phase", "routes"),
    [
        pytest.param(CANARY, 0, Phase.INITIALIZED, Routes(100, 0), id="initialized"),
        pytest.param(CANARY, 0, Phase.SUCCEEDED, Routes(100, 0), id="succeeded"),
        pytest.param(CANARY, 30, Phase.PROGRESSING, Routes(70, 30), id="canary-step"),
        pytest.param(CANARY, 0, Phase.PROGRESSING, Routes(100, 0), id="canary-run-start"),
        pytest.param(MIRROR, 0, Phase.PROGRESSING, Routes(100, 0, mirrored=True), id="mirror-step"),
        pytest.param(MIRROR, 10, Phase.PROGRESSING, Routes(90, 10), id="after-mirror-step"),
        pytest.param(AB, 0, Phase.PROGRESSING, Routes(0, 100), id="ab-iterations"),
        pytest.param(AB, 0, Phase.WAITING_PROMOTION, Routes(0, 100), id="ab-awaiting-approval"),
        pytest.param(AB, 50, Phase.PROMOTING, Routes(50, 50), id="ab-stepped-promotion"),
        pytest.param(BLUE_GREEN, 0, Phase.PROGRESSING, Routes(100, 0, mirrored=True), id="blue-green-mirroring"),
        pytest.param(BLUE_GREEN, 100, Phase.PROGRESSING, Routes(0, 100), id="blue-green-switched"),
        pytest.param(CANARY, 20, Phase.FINALISING, Routes(80, 20), id="finalising"),
    ],
)
def test_weight_and_phase_give_flagger_s_routes(canary: Canary, weight: int, phase: Phase, routes: Routes) -> None:
    assert routes_for(canary, weight, phase) == routes


@pytest.mark.parametrize(
    ("canary", "weight", "phase", "message"),
    [
        pytest.param(CANARY, 30, Phase.SUCCEEDED, "all traffic goes to the primary", id="weight-at-rest"),
        pytest.param(AB, 30, Phase.PROGRESSING, "is an A/B test", id="ab-weight"),
        pytest.param(BLUE_GREEN, 30, Phase.PROGRESSING, "blue/green test", id="blue-green-weight"),
    ],
)
def test_weights_flagger_never_sets_are_refused(canary: Canary, weight: int, phase: Phase, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        routes_for(canary, weight, phase)


def test_phase_names_are_read_in_any_case() -> None:
    assert parse_phase("waitingpromotion") is Phase.WAITING_PROMOTION


def write_manifests(tmp_path: Path, *documents: object) -> str:
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def run(paths: list[str], weight: int = 0, phase: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run_render(paths, weight, phase, out, err)
    return code, out.getvalue(), err.getvalue()


def test_plain_files_render_to_a_yaml_stream(tmp_path: Path) -> None:
    code, out, err = run([write_manifests(tmp_path, canary_doc(), deployment_doc())], 10)
    assert (code, err) == (0, "")
    assert "at weight 10, phase Progressing" in out
    kinds = [doc["kind"] for doc in yaml.safe_load_all(out) if doc]
    assert kinds == [
        "Service",
        "Service",
        "Deployment",
        "Service",
        "DestinationRule",
        "DestinationRule",
        "VirtualService",
    ]


def test_canaries_render_in_namespace_and_name_order(tmp_path: Path) -> None:
    docs = []
    for ns, name in (("prod", "b"), ("dev", "z"), ("prod", "a")):
        canary, target = canary_doc(), deployment_doc({"app": name})
        canary["metadata"] = {"name": name, "namespace": ns}
        canary["spec"]["targetRef"]["name"] = target["metadata"]["name"] = name
        target["metadata"]["namespace"] = ns
        docs += [canary, target]
    _, out, _ = run([write_manifests(tmp_path, *docs)])
    services = [d["metadata"] for d in yaml.safe_load_all(out) if d and d["kind"] == "VirtualService"]
    assert [(m["namespace"], m["name"]) for m in services] == [("dev", "z"), ("prod", "a"), ("prod", "b")]


@pytest.mark.parametrize(
    ("weight", "phase", "message"),
    [
        pytest.param(0, "Rolling", "unknown phase 'Rolling'; phases are Initializing, Initialized", id="phase"),
        pytest.param(101, "", "--weight must be 0..100", id="weight"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, weight: int, phase: str, message: str) -> None:
    code, out, err = run([write_manifests(tmp_path, canary_doc(), deployment_doc())], weight, phase)
    assert (code, out) == (2, "")
    assert message in err


def test_no_paths_exit_2() -> None:
    assert run([])[0] == 2


def test_an_invalid_canary_is_reported_where_it_is_written(tmp_path: Path) -> None:
    bad = canary_doc(analysis="stepWeigth: 10")
    code, out, err = run([write_manifests(tmp_path, bad, deployment_doc())])
    assert (code, out) == (1, "")
    assert "manifests.yaml:" in err and "spec.analysis.stepWeigth: unknown field; did you mean stepWeight?" in err


def test_a_missing_target_exits_1_naming_it(tmp_path: Path) -> None:
    code, _, err = run([write_manifests(tmp_path, canary_doc())])
    assert code == 1
    assert "its target Deployment prod/backend is not in the manifests" in err


def test_manifests_without_canaries_exit_1(tmp_path: Path) -> None:
    code, _, err = run([write_manifests(tmp_path, deployment_doc())])
    assert code == 1
    assert "no Canary" in err


def test_objects_the_operator_owns_that_are_also_in_the_manifests_are_pointed_out(tmp_path: Path) -> None:
    apex = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {"selector": {"app": "backend"}, "ports": [{"port": 9898}]},
    }
    code, _, err = run([write_manifests(tmp_path, canary_doc(), deployment_doc(), apex)])
    assert code == 0
    assert "note: Canary prod/backend: Service prod/backend is in the manifests too: the operator takes it over" in err
