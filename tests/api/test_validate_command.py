"""``canaryflow validate``: exit status, one line per problem, what was skipped, and a summary."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from canaryflow.cli import resources


def run(paths: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = resources.run_validate(paths, out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_seed_repository_is_valid(seed_dir: Path) -> None:
    code, out, err = run([str(seed_dir)])
    assert (code, out) == (0, "")
    skipped, summary = err.splitlines()
    assert skipped.startswith("skipped 24 documents canaryflow does not own: ConfigMap, Deployment (3), ")
    assert summary == "no problems; valid resources: 2 Canary, 3 Kustomization, 2 MetricTemplate"


def test_each_problem_is_one_line_and_the_exit_status_is_1(write: Callable[[str, str], Path], seed_dir: Path) -> None:
    canary = (seed_dir / "apps/backend/canary.yaml").read_text()
    bad = write("bad.yaml", canary.replace("stepWeight: 5", "stepWeigth: 5").replace("port: 9898", "port: x"))
    code, out, err = run([str(bad), str(seed_dir / "istio/gateway/flagger-metrics.yaml")])
    assert code == 1
    assert out.splitlines() == [
        f'{bad}:22: Canary/backend: spec.service.port: expected a whole number, got "x"',
        f"{bad}:35: Canary/backend: spec.analysis.stepWeigth: unknown field; did you mean stepWeight?",
    ]
    assert err.splitlines()[-1] == "2 problems; valid resources: 2 MetricTemplate"


def test_stdin_is_validated_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: chat\nspec:\n  type: slack\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, _ = run(["-"])
    assert code == 1
    assert (
        out == "<stdin>:5: AlertProvider/chat: spec: set address, or secretRef to a Secret with an address key: "
        "alerts need somewhere to go\n"
    )


def test_malformed_yaml_and_missing_files_fail_the_run(write: Callable[[str, str], Path]) -> None:
    broken = write("broken.yaml", "kind: Canary\nspec: [\n")
    code, out, _ = run([str(broken), "no/such/dir"])
    assert code == 1
    assert out.splitlines()[0].startswith(f"{broken}:3: malformed YAML: ")
    assert out.splitlines()[1] == "no/such/dir: no such file or directory"


def test_nothing_to_validate_is_a_usage_error() -> None:
    code, out, err = run([])
    assert (code, out) == (2, "")
    assert "nothing to validate" in err
