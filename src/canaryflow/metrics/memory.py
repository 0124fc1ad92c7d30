"""In-memory metric providers: answers set by hand, for engine and scheduler tests and for demos.

``MemoryProvider`` answers each query from a table (exact query text, after whitespace is collapsed) or from
a function of the query; an answer may be a float or an exception to raise (``NoValuesFound`` to play a
workload without traffic, ``MetricError`` to play a broken provider). ``MemoryFactory`` hands these out where
a runner would build Prometheus clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.metrics import factory
from canaryflow.metrics.base import MetricError
from canaryflow.metrics.prometheus import ONLINE_PROBE, collapse_whitespace

Answer = float | MetricError
Answers = Mapping[str, Answer] | Callable[[str], Answer]


class MemoryProvider:
    """A MetricsProvider whose answers are set by the test; it records every query it is asked."""

    def __init__(self, answers: Answers | None = None, *, online: bool = True) -> None:
        self._table: dict[str, Answer] = {}
        self._function: Callable[[str], Answer] | None = None
        self.online = online
        self.queries: list[str] = []
        if callable(answers):
            self._function = answers
        elif answers is not None:
            for expr, answer in answers.items():
                self.set(expr, answer)

    def set(self, expr: str, answer: Answer) -> None:
        """From now on, ``expr`` answers ``answer`` (a value, or an error to raise)."""
        self._table[collapse_whitespace(expr)] = answer

    def answer_with(self, function: Callable[[str], Answer]) -> None:
        """Answer queries missing from the table with ``function(query)``."""
        self._function = function

    async def query(self, expr: str) -> float:
        query = collapse_whitespace(expr)
        self.queries.append(query)
        if query in self._table:
            answer = self._table[query]
        elif self._function is not None:
            answer = self._function(query)
        else:
            # Loud on purpose: a test that forgot to set a value should not pass as "no traffic".
            known = "; ".join(self._table) or "none"
            raise MetricError(f"memory provider has no answer for query {query}; it knows: {known}")
        if isinstance(answer, MetricError):
            raise answer
        return float(answer)

    async def is_online(self) -> bool:
        if not self.online:
            raise MetricError(f"memory provider is offline (cannot run {ONLINE_PROBE})")
        return True

    async def close(self) -> None:
        """Nothing to release; present so a MemoryProvider can stand wherever a real provider is closed."""


class MemoryFactory:
    """A provider factory that hands out MemoryProviders: one per address when given, else the default."""

    def __init__(
        self, default: MemoryProvider | None = None, by_address: Mapping[str, MemoryProvider] | None = None
    ) -> None:
        self.default = default or MemoryProvider()
        self.by_address = dict(by_address or {})

    def for_template(
        self, template: MetricTemplate, secret: Mapping[str, str] | None, interval: str = factory.DEFAULT_INTERVAL
    ) -> MemoryProvider:
        factory.check_supported(template)  # engine tests see the same refusal as production
        return self.for_server(template.spec.provider.address or "")

    def for_server(self, address: str) -> MemoryProvider:
        return self.by_address.get(address, self.default)

    async def close(self) -> None:
        """MemoryProviders hold nothing; tests read them after the runner is closed."""
