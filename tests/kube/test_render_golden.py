"""``canaryflow kube render`` on the seed's backend and frontend canaries, compared with golden files.

Each golden file starts with what was checked in it by hand against Flagger (flagger-behaviour.md §6 and
Flagger's source), then a marker line, then the command's exact output. After a deliberate change, regenerate
with ``CANARYFLOW_REGENERATE_GOLDEN=1 pytest tests/kube/test_render_golden.py``, read the diff, and check the
changed objects by hand again before committing them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import yaml

from canaryflow.kube.render import cli
from tests.kube import schemas

SEED_APPS = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "apps"
GOLDEN = Path(__file__).resolve().parent / "golden"
MARKER = "# ---- output of canaryflow kube render below this line ----\n"
REGENERATE = os.environ.get("CANARYFLOW_REGENERATE_GOLDEN") == "1"

CASES = [
    pytest.param("backend", 0, "", "backend-weight-0.yaml", id="backend-initialized-weight-0"),
    pytest.param("backend", 50, "", "backend-weight-50.yaml", id="backend-progressing-weight-50"),
    pytest.param("frontend", 0, "", "frontend-weight-0.yaml", id="frontend-initialized-weight-0"),
    pytest.param("frontend", 0, "Progressing", "frontend-ab.yaml", id="frontend-ab-test-running"),
    pytest.param("frontend", 50, "Promoting", "frontend-weight-50.yaml", id="frontend-promoting-weight-50"),
]


def run(app: str, weight: int, phase: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run_render([str(SEED_APPS / app)], weight, phase, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("app", "weight", "phase", "golden"), CASES)
def test_render_matches_the_hand_checked_golden_file(app: str, weight: int, phase: str, golden: str) -> None:
    code, output, _ = run(app, weight, phase)
    assert code == 0
    path = GOLDEN / golden
    if REGENERATE:
        header = path.read_text().partition(MARKER)[0] if path.exists() else "# NOT CHECKED BY HAND YET\n"
        path.write_text(header + MARKER + output)
    text = path.read_text()
    assert MARKER in text, f"{golden}: the hand-check header must end with the marker line"
    header, _, expected = text.partition(MARKER)
    assert "NOT CHECKED BY HAND" not in header, f"{golden}: check the objects by hand and say what in the header"
    assert output == expected


@pytest.mark.parametrize(("app", "weight", "phase", "golden"), CASES)
def test_every_rendered_seed_object_is_valid_for_the_api_server(app: str, weight: int, phase: str, golden: str) -> None:
    _, output, _ = run(app, weight, phase)
    objects = [doc for doc in yaml.safe_load_all(output) if doc]
    assert [o["kind"] for o in objects] == [
        "Service",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Service",
        "DestinationRule",
        "DestinationRule",
        "VirtualService",
    ]
    for obj in objects:
        schemas.validate(obj)


def test_the_seed_config_map_istio_injects_is_reported_as_untracked() -> None:
    # The seed's pods mount istio-ca-root-cert, which Istio creates in each namespace: it is in no manifest.
    _, _, err = run("backend", 0, "")
    assert "ConfigMap prod/istio-ca-root-cert, read by Deployment backend, is not in the manifests" in err
