"""Judging one metric reading against its Canary's thresholds, with Flagger's messages."""

from __future__ import annotations

import dataclasses
import enum

from canaryflow.api.canary import CanaryMetric, ThresholdRange
from canaryflow.api.judge import CanaryJudge
from canaryflow.engine.effects import Reading


class NoValuesPolicy(enum.StrEnum):
    """What "no values found" (no traffic, NaN) means for a check.

    ``fail`` is Flagger's behaviour: a failed check. Under low traffic that rolls back healthy canaries
    (Flagger #1035, #1689), so ``hold`` halts the advance without counting a failure, and ``pass`` ignores it.
    """

    FAIL = "fail"
    HOLD = "hold"
    PASS = "pass"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    no_values: NoValuesPolicy = NoValuesPolicy.FAIL
    #: The judge for canaries whose analysis has none (``--judge``); None: only canaries that ask for it.
    judge: CanaryJudge | None = None


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    HOLD = "hold"


@dataclasses.dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    message: str = ""


_PASSED = Judgement(Verdict.PASS)  # (made once: a passing check is the common case of every analysis tick)


def bounds(metric: CanaryMetric) -> ThresholdRange:
    """The range a value must stay in: ``thresholdRange``, or the deprecated ``threshold`` (a minimum for the
    success rate, a maximum for everything else, as Flagger reads it)."""
    if metric.threshold_range is not None:
        return metric.threshold_range
    if metric.threshold is None:
        return ThresholdRange()
    if metric.name == "request-success-rate":
        return ThresholdRange(min=metric.threshold)
    return ThresholdRange(max=metric.threshold)


def judge(metric: CanaryMetric, reading: Reading, ref: str, settings: Settings) -> Judgement:
    """Whether ``reading`` passes; ``ref`` is ``name.namespace`` for the messages."""
    if reading.error:
        return Judgement(Verdict.FAIL, f"Metric query failed for {metric.name}: {reading.error}")
    if reading.no_values or reading.value is None:
        kind = "custom" if metric.template_ref or metric.query else "built-in"
        message = (
            f"Halt advancement no values found for {kind} metric: {metric.name} probably {ref} is not receiving traffic"
        )
        verdict = {
            NoValuesPolicy.FAIL: Verdict.FAIL,
            NoValuesPolicy.HOLD: Verdict.HOLD,
            NoValuesPolicy.PASS: Verdict.PASS,
        }[settings.no_values]
        return Judgement(verdict, message)
    value, limits = reading.value, bounds(metric)
    if limits.min is not None and value < limits.min:
        if metric.name == "request-success-rate":
            return Judgement(Verdict.FAIL, f"Halt {ref} advancement success rate {value:.2f}% < {limits.min:g}%")
        return Judgement(Verdict.FAIL, f"Halt {ref} advancement {metric.name} {value:.2f} < {limits.min:g}")
    if limits.max is not None and value > limits.max:
        if metric.name == "request-duration":
            return Judgement(Verdict.FAIL, f"Halt {ref} advancement request duration {value:.0f}ms > {limits.max:g}ms")
        return Judgement(Verdict.FAIL, f"Halt {ref} advancement {metric.name} {value:.2f} > {limits.max:g}")
    return _PASSED


def record(metric: CanaryMetric, reading: Reading, judgement: Judgement) -> dict[str, object]:
    """One check as the status shows it: the value, the range it had to stay in, and whether it passed."""
    limits = bounds(metric)
    check: dict[str, object] = {
        "name": metric.name,
        "value": reading.value,
        "min": limits.min,
        "max": limits.max,
        "passed": judgement.verdict is not Verdict.FAIL,
    }
    if judgement.message:
        check["message"] = judgement.message
    return check
