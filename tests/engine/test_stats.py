"""The judge's statistics against reference implementations on fixed inputs, and the property that makes them
tests at all: under a healthy canary each e-value has expectation at most 1 (exactly 1 at the boundary)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import integrate, special
from scipy import stats as scipy_stats

from canaryflow.engine import stats

SAVVI = json.loads((Path(__file__).parent / "reference" / "savvi_values.json").read_text())["cases"]


@pytest.mark.parametrize("case", SAVVI, ids=lambda c: f"c{c['canary']}-b{c['primary']}-t{c['theta0']}-k{c['k']}")
def test_two_sided_bayes_factor_matches_savvi(case: dict[str, float]) -> None:
    got = stats.log_bf_two_sided(case["canary"], case["primary"], case["theta0"], case["k"])
    assert got == pytest.approx(case["log_bf"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [(2, 5, 0.1), (0.5, 9.5, 0.05), (40.5, 300, 0.1), (2000, 19000, 0.095), (3, 3, 0.9), (1.2, 38.8, 0.03)],
)
def test_beta_survival_matches_scipy(a: float, b: float, x: float) -> None:
    assert math.exp(stats.log_sf(a, b, x)) == pytest.approx(scipy_stats.beta.sf(x, a, b), rel=1e-9)


@pytest.mark.parametrize(("c", "b", "theta0"), [(3, 10, 0.1), (0, 5, 0.2), (20, 40, 0.1), (7, 1, 0.5), (12, 88, 0.05)])
def test_one_sided_factor_is_the_truncated_mixture(c: int, b: int, theta0: float) -> None:
    """An independent computation: integrate the likelihood ratio over the prior restricted to theta > theta0."""
    a0, b0 = stats.K * theta0, stats.K * (1 - theta0)

    def ratio(theta: float) -> float:
        log_lr = special.xlogy(c, theta / theta0) + special.xlog1py(b, -theta) - b * math.log1p(-theta0)
        return math.exp(log_lr) * scipy_stats.beta.pdf(theta, a0, b0)

    mass, _ = integrate.quad(ratio, theta0, 1, limit=400, epsabs=1e-13, epsrel=1e-11)
    expected = math.log(mass / scipy_stats.beta.sf(theta0, a0, b0))
    assert stats.log_bf_greater(c, b, theta0) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize(("events", "theta0"), [(1, 0.05), (10, 0.05), (40, 0.1), (25, 0.5)])
def test_a_healthy_canary_expects_an_e_value_of_one(events: int, theta0: float) -> None:
    """Exact, over every split of ``events`` between canary and primary: E[BF] = 1 when the canary's share of
    events is its share of requests, and below 1 when the canary is better. This is what bounds false rollbacks."""
    for theta, at_most in ((theta0, 1.0), (theta0 / 2, 1.0)):
        mean = sum(
            scipy_stats.binom.pmf(c, events, theta) * math.exp(stats.log_bf_greater(c, events - c, theta0))
            for c in range(events + 1)
        )
        assert mean == pytest.approx(at_most, rel=1e-7) if theta == theta0 else mean < at_most


def test_the_factor_grows_with_the_canary_share_of_errors() -> None:
    values = [stats.log_bf_greater(c, 20 - c, 0.1) for c in range(21)]
    assert values == sorted(values)
    assert values[2] < 0 < values[8]  # 2 of 20 at a 10 % share is no evidence; 8 of 20 is


def test_wald_likelihood_ratio_matches_the_binomial() -> None:
    n, c, p0, p1 = 1200, 30, 0.01, 0.02
    expected = scipy_stats.binom.logpmf(c, n, p1) - scipy_stats.binom.logpmf(c, n, p0)
    assert stats.log_lr_slo(n, c, p0, p1) == pytest.approx(expected, rel=1e-9)


def test_not_worse_is_a_mean_of_likelihood_ratios() -> None:
    n, c, p_ref = 900, 2, 0.011
    grid = [p_ref * (j + 0.5) / 20 for j in range(20)]
    ratios = [math.exp(scipy_stats.binom.logpmf(c, n, p) - scipy_stats.binom.logpmf(c, n, p_ref)) for p in grid]
    assert stats.log_e_not_worse(n, c, p_ref) == pytest.approx(math.log(sum(ratios) / 20), rel=1e-9)


def test_not_worse_evidence_needs_a_rate_below_the_reference() -> None:
    assert stats.log_e_not_worse(2000, 2, 0.011) > math.log(20)  # 0.1 % against 1.1 %: shown
    assert stats.log_e_not_worse(2000, 30, 0.011) < math.log(20)  # 1.5 %: not
    assert stats.log_e_not_worse(0, 0, 0.011) == 0.0  # no data is no evidence
