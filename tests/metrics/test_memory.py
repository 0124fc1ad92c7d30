"""The in-memory provider engine tests rely on: answers by query or by function, errors on demand."""

from __future__ import annotations

import pytest

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.memory import MemoryFactory, MemoryProvider

from .resources import template


async def test_answers_by_query_text_ignoring_layout() -> None:
    provider = MemoryProvider({"sum(\n  rate(x[1m])\n)": 99.5})
    assert await provider.query(" sum( rate(x[1m]) ) ") == 99.5
    assert provider.queries == ["sum( rate(x[1m]) )"]


async def test_answers_from_a_function_of_the_query() -> None:
    provider = MemoryProvider(lambda query: 5.0 if "backend" in query else 0.0)
    assert await provider.query('x{workload="backend"}') == 5.0
    assert await provider.query('x{workload="frontend"}') == 0.0


async def test_table_answers_win_over_the_function() -> None:
    provider = MemoryProvider({"a": 1.0})
    provider.answer_with(lambda query: 2.0)
    assert [await provider.query("a"), await provider.query("b")] == [1.0, 2.0]


@pytest.mark.parametrize(
    "error", [NoValuesFound("no traffic"), MetricError("prometheus down")], ids=["no-values", "broken"]
)
async def test_raises_the_error_it_is_told_to(error: MetricError) -> None:
    provider = MemoryProvider()
    provider.set("up", error)
    with pytest.raises(type(error), match=str(error)):
        await provider.query("up")


async def test_an_unset_query_is_a_loud_error_not_missing_traffic() -> None:
    provider = MemoryProvider({"known": 1.0})
    with pytest.raises(MetricError, match="no answer for query unknown; it knows: known") as caught:
        await provider.query("unknown")
    assert not isinstance(caught.value, NoValuesFound)


async def test_offline_provider_fails_the_online_check() -> None:
    assert await MemoryProvider().is_online() is True
    with pytest.raises(MetricError, match="offline"):
        await MemoryProvider(online=False).is_online()


def test_factory_hands_out_providers_by_address() -> None:
    other = MemoryProvider()
    factory = MemoryFactory(by_address={"http://other:9090": other})
    assert factory.for_server("http://other:9090") is other
    assert factory.for_template(template("up", address="http://other:9090"), None) is other
    assert factory.for_server("http://prometheus:9090") is factory.default
