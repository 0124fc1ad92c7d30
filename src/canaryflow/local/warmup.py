"""Holding analysis while the local data plane (re)starts: no check counts before Prometheus has seen it serve.

A restarted runtime (``canaryflow up`` after a crash or a ``kill -9``) starts Envoy, Prometheus and every workload
again. Once a canary's replicas are ready, Envoy's counters for them are new, and the canary's request metrics
have no samples until Prometheus has scraped them twice and evaluated its recording rules on them: a check run in
that moment finds "no values" (or a rate over a handful of requests) and counts a failed check for a healthy
canary — three such ticks and it is rolled back. In a cluster, the mesh and Prometheus keep running while Flagger
restarts, so nothing like it happens there.

``DataPlaneWarmup.hold`` answers, for a canary whose replicas are ready, why its analysis must still wait: until
Prometheus has scraped Envoy three times, and evaluated its rules four times, since the canary was seen ready in this
*epoch* (the runtime's start, or Envoy's or Prometheus' last restart by its supervisor) and Envoy confirmed serving
its replicas. The workloads report it as the canary not being ready, so the engine waits with an event saying why,
counts no failed check and takes no step, and the progress deadline still applies. The hold is bounded: ``limit``
seconds after the epoch began it ends whatever Prometheus says, so a data plane that stays dead fails its checks as
it would without it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from canaryflow.api.timestamps import parse_rfc3339
from canaryflow.clock import Clock, SystemClock

log = logging.getLogger(__name__)

#: How long after the data plane (re)started its canaries may be held, at most.
LIMIT = 30.0
#: Scrapes of Envoy and evaluations of the recording rules that must follow a canary's readiness: the request
#: metrics' ``rate()`` needs two samples, the rules derive them one evaluation after each scrape, and one interval
#: more allows for a scrape or an evaluation that came late on a loaded machine (with one less, one check in a few
#: restarts still found no values).
SCRAPES, EVALUATIONS = 3, 4


class _Restarting(Protocol):
    @property
    def restarts(self) -> int: ...


class DataPlaneWarmup:
    """Whether a ready canary's analysis waits for the restarted data plane (see the module docstring)."""

    def __init__(
        self,
        envoy: _Restarting,
        prometheus: _Restarting,
        prometheus_url: str,
        *,
        interval: float = 1.0,
        limit: float = LIMIT,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._parts = (envoy, prometheus)
        self._url = prometheus_url
        self._interval = interval
        self._limit = limit
        self._clock = clock or SystemClock()
        self._client = client or httpx.AsyncClient(timeout=1.0, trust_env=False)
        self._restarts = self._count()
        self._epoch = self._clock.now()
        self._ready_at: dict[str, float] = {}  # canary key → when it was first seen ready in this epoch
        self._done: set[str] = set()

    async def hold(self, key: str, served_at: float) -> str:
        """Why the canary ``key``, whose replicas are ready and served by the mesh since ``served_at`` (a Unix
        time), must not be analysed yet; "" when it may be."""
        now = self._clock.now()
        if self._count() != self._restarts:  # Envoy or Prometheus was restarted: their counters start again
            self._restarts, self._epoch = self._count(), now
            self._ready_at.clear()
            self._done.clear()
        if key in self._done:
            return ""
        if now - self._epoch >= self._limit:
            if key in self._ready_at:  # it was held: say why it no longer is
                log.warning("%s: the data plane is not warm %gs after its start; analysis goes on", key, self._limit)
            self._done.add(key)
            return ""
        waiting = await self._waiting_for(max(self._ready_at.setdefault(key, now), served_at))
        if not waiting:
            self._done.add(key)
            return ""
        return f"Analysis of {key} held: the local data plane is starting ({waiting})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _count(self) -> tuple[int, ...]:
        return tuple(part.restarts for part in self._parts)

    async def _waiting_for(self, since: float) -> str:
        """What Prometheus has not done yet since ``since`` (a Unix time); "" when it has."""
        try:
            targets = await self._get("/api/v1/targets", {"state": "active"})
            rules = await self._get("/api/v1/rules", {"type": "record"})
        except (httpx.HTTPError, ValueError) as exc:
            return f"Prometheus does not answer: {exc or type(exc).__name__}"
        envoy = [t for t in targets.get("activeTargets", []) if t.get("scrapePool") == "envoy"]
        scraped = max((_unix(t.get("lastScrape")) for t in envoy if t.get("health") == "up"), default=0.0)
        if scraped < since + SCRAPES * self._interval:
            return f"waiting for Prometheus to scrape Envoy {SCRAPES} times since the canary is ready"
        evaluated = min((_unix(g.get("lastEvaluation")) for g in rules.get("groups", [])), default=0.0)
        if evaluated < since + EVALUATIONS * self._interval:
            return f"waiting for Prometheus to evaluate its rules {EVALUATIONS} times since the canary is ready"
        return ""

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        response = await self._client.get(self._url + path, params=params)
        response.raise_for_status()
        data = response.json().get("data")
        if not isinstance(data, dict):
            raise ValueError(f"{path} answered without data")
        return data


def _unix(stamp: Any) -> float:
    """Prometheus' RFC 3339 time (nanoseconds, ``Z``) as a Unix time; 0 for none (never scraped)."""
    if not isinstance(stamp, str) or stamp.startswith("0001-"):
        return 0.0
    try:
        return parse_rfc3339(stamp)
    except ValueError:
        return 0.0
