"""``spec.analysis.judge``: the extension is validated like the rest of the Canary, and a Canary without it is
Flagger's Canary unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api import loader, validate
from canaryflow.api.canary import Canary
from canaryflow.api.evidence import Counts, Evidence, JudgeState
from canaryflow.api.status import CanaryStatus, Phase

SEED = Path(__file__).resolve().parents[2] / "examples/gitops-istio/apps/backend/canary.yaml"


def problems(judge: Any) -> list[str]:
    doc = yaml.safe_load(SEED.read_text())
    doc["spec"]["analysis"]["judge"] = judge
    text = yaml.safe_dump(doc, sort_keys=False)
    return [str(p) for p in validate.validate_documents(loader.load_text(text, "canary.yaml").documents).problems]


@pytest.mark.parametrize(
    ("judge", "expected"),
    [
        pytest.param({"alpah": 0.1}, "spec.analysis.judge.alpah: unknown field; did you mean alpha?", id="typo"),
        pytest.param(
            {"alpha": 1.5},
            "spec.analysis.judge.alpha: alpha is a false-rollback probability: it must be above 0 and below 0.5 "
            "(got 1.5)",
            id="alpha",
        ),
        pytest.param(
            {"tests": ["errors", "bogus"]},
            'spec.analysis.judge.tests[1]: must be one of errors, latency, slo (got "bogus")',
            id="test-name",
        ),
        pytest.param({"tests": []}, "spec.analysis.judge.tests: name at least one test", id="no-test"),
        pytest.param(
            {"interval": "100ms"}, "spec.analysis.judge.interval: the judge looks at most once a second", id="interval"
        ),
        pytest.param({"margin": -1}, "spec.analysis.judge.margin:", id="margin"),
        pytest.param(
            {"counts": {"requests": ""}}, "spec.analysis.judge.counts.requests: must not be empty", id="counts"
        ),
    ],
)
def test_a_wrong_judge_is_named_with_its_path(judge: dict[str, Any], expected: str) -> None:
    found = problems(judge)
    assert len(found) == 1, found
    assert expected in found[0]
    assert found[0].startswith("canary.yaml:")


def test_defaults_are_documented_values() -> None:
    canary = Canary.model_validate(yaml.safe_load(SEED.read_text()))
    assert canary.spec.effective_analysis.judge is None  # Flagger's manifest: no judge
    assert problems({}) == []
    doc = yaml.safe_load(SEED.read_text())
    doc["spec"]["analysis"]["judge"] = {}
    judge = Canary.model_validate(doc).spec.effective_analysis.judge
    assert judge is not None
    assert (judge.alpha, judge.tests, judge.interval, judge.margin) == (0.05, ["errors", "latency", "slo"], "5s", 0.5)
    assert judge.counts.requests == "istio_requests_total"


def test_the_evidence_survives_both_status_stores() -> None:
    """The local runtime keeps the status as JSON; the operator in the status subresource (Flagger's shape)."""
    state = JudgeState(
        alpha=0.05,
        weight=10,
        segment_canary=Counts(120.0, 3.0, ((25.0, 100.0), (float("inf"), 120.0))),
        segment_primary=Counts(1000.0, 1.0),
        tests=(Evidence("errors", closed=1.5, current=0.7, log_bound=3.69, decision="continue"),),
        looked_at=1700000000.0,
    )
    status = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10, judge=state, last_analysis_at=1700000000.0)
    assert CanaryStatus.from_json(status.to_json()) == status
    shown = status.to_dict()
    assert CanaryStatus.from_dict(shown).judge == state
    (test,) = shown["judge"]["tests"]
    assert test["name"] == "errors" and test["decision"] == "continue"
    assert test["statistic"] == pytest.approx(9.025, rel=1e-3) and test["bound"] == pytest.approx(40.0, rel=1e-2)


def test_the_stored_evidence_is_plain_json() -> None:
    """Stores and APIs write strict JSON (no NaN or Infinity): the +Inf bucket and unbounded evidence included."""
    import json

    state = JudgeState(
        alpha=0.05,
        last_canary=Counts(10.0, 1.0, ((25.0, 9.0), (float("inf"), 10.0))),
        tests=(Evidence("slo", closed=float("-inf"), current=float("inf"), log_bound=4.1),),
    )
    text = json.dumps(CanaryStatus(judge=state).to_dict(), allow_nan=False)
    again = CanaryStatus.from_dict(json.loads(text)).judge
    assert again is not None and again.last_canary == state.last_canary
