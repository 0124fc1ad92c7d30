"""Per-arm counters from Prometheus: three instant queries per look (requests, errors, latency buckets).

The counters are summed per workload, not rated: the judge differences them itself, segment by segment, so it
sees every request once whatever the scrape interval, and a drop (a restarted pod) starts a new segment.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from canaryflow.api.canary import Canary
from canaryflow.api.evidence import Counts
from canaryflow.api.judge import JudgeCounts
from canaryflow.engine.effects import ArmCounts
from canaryflow.traffic.base import TrafficError

Sample = tuple[dict[str, str], float]


class PrometheusTraffic:
    """``default_address`` is asked when a canary's ``judge.counts.address`` is unset; ``transport`` carries
    requests to an address a canary names (the local runtime's mesh proxy resolves in-cluster names)."""

    def __init__(
        self, default_address: str, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0
    ) -> None:
        self.default_address = default_address.rstrip("/")
        self._direct = httpx.AsyncClient(timeout=timeout)
        self._named = httpx.AsyncClient(timeout=timeout, transport=transport) if transport else self._direct

    async def close(self) -> None:
        await self._direct.aclose()
        if self._named is not self._direct:
            await self._named.aclose()

    async def count(self, canary: Canary, counts: JudgeCounts) -> ArmCounts:
        canary_name = canary.spec.target_ref.name
        primary_name = f"{canary_name}-primary"
        ns = canary.metadata.namespace
        wl = counts.workload_label
        match = f'{counts.namespace_label}="{ns}", {wl}=~"{canary_name}|{primary_name}"'
        if counts.selector:
            match += f", {counts.selector}"
        requests = await self._query(counts, f"sum by ({wl}) ({counts.requests}{{{match}}})")
        errors = await self._query(
            counts, f'sum by ({wl}) ({counts.requests}{{{match}, response_code=~"{counts.error_codes}"}})'
        )
        buckets = await self._query(counts, f"sum by ({wl}, le) ({counts.duration}{{{match}}})")
        return ArmCounts(
            _arm(canary_name, wl, requests, errors, buckets), _arm(primary_name, wl, requests, errors, buckets)
        )

    async def _query(self, counts: JudgeCounts, query: str) -> list[Sample]:
        address = (counts.address or self.default_address).rstrip("/")
        client = self._named if counts.address else self._direct
        who = f"prometheus {address}"
        try:
            response = await client.get(f"{address}/api/v1/query", params={"query": query})
        except httpx.TimeoutException as exc:
            raise TrafficError(f"{who} did not answer in time (query: {query})") from exc
        except httpx.HTTPError as exc:
            raise TrafficError(f"{who} is unreachable: {exc or type(exc).__name__}") from exc
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise TrafficError(f"{who} answered HTTP {response.status_code}: {error} (query: {query})")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise TrafficError(f"{who}: expected a vector for {query}, got {data.get('resultType')!r}")
        out: list[Sample] = []
        for item in data.get("result") or ():
            try:
                out.append((dict(item["metric"]), float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise TrafficError(f"{who}: malformed sample {item!r}") from exc
        return out


def _arm(name: str, label: str, requests: list[Sample], errors: list[Sample], buckets: list[Sample]) -> Counts:
    def total(samples: list[Sample]) -> float:
        return sum(v for labels, v in samples if labels.get(label) == name and not math.isnan(v))

    histogram: dict[float, float] = {}
    for labels, value in buckets:
        if labels.get(label) == name and "le" in labels and not math.isnan(value):
            le = math.inf if labels["le"] in ("+Inf", "Inf") else float(labels["le"])
            histogram[le] = histogram.get(le, 0.0) + value
    return Counts(total(requests), total(errors), tuple(sorted(histogram.items())))
