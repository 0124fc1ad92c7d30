"""Engine throughput: canary ticks per second on one core, every adapter in memory.

Goal (issue "Foundation"): >= 20,000 ticks/s, i.e. 10,000 canaries at a 10 s interval use under 5 % of a core.
Prints figures for idle canaries (nothing changed: the common case) and for canaries in analysis (hooks,
metrics, a weight step every tick). Run: .venv/bin/python bench/engine.py [--canaries 1000 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc

from canaryflow.api.canary import Canary
from canaryflow.control.simulate import Sandbox

SPEC = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "app", "namespace": "bench"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "service": {"port": 9898},
        "analysis": {
            "interval": "10s",
            "threshold": 5,
            "maxWeight": 100,
            "stepWeight": 1,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
            ],
            "webhooks": [{"name": "load", "type": "rollout", "url": "http://loadtester/"}],
        },
    },
}


def canaries(count: int) -> list[Canary]:
    out = []
    for i in range(count):
        doc = {**SPEC, "metadata": {"name": f"app-{i}", "namespace": "bench"}}
        doc["spec"] = {**SPEC["spec"], "targetRef": {**SPEC["spec"]["targetRef"], "name": f"app-{i}"}}  # type: ignore[dict-item]
        out.append(Canary.model_validate(doc))
    return out


async def measure(count: int) -> dict[str, float]:
    all_canaries = canaries(count)
    box = Sandbox(all_canaries[0])
    for c in all_canaries:
        box.workload.deploy(f"bench/{c.spec.target_ref.name}", "revision-1")
    tick = box.executor.tick

    async def round_() -> float:
        start = time.process_time()
        for c in all_canaries:
            await tick(c)
        return time.process_time() - start

    await round_()  # initialize every canary
    idle = min([await round_() for _ in range(3)])
    for c in all_canaries:
        box.workload.deploy(f"bench/{c.spec.target_ref.name}", "revision-2")
    await round_()  # new revision detected: Progressing
    await round_()  # first analysis tick
    analysing = min([await round_() for _ in range(3)])
    status = await box.store.load(all_canaries[-1].key)
    assert status is not None and status.status.canary_weight >= 4, status
    return {"idle": count / idle, "analysing": count / analysing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--canaries", type=int, nargs="*", default=[1000, 10000])
    args = parser.parse_args()
    print("canaryflow engine benchmark (CPU time of this process, one core, in-memory adapters)")
    for count in args.canaries:
        figures = asyncio.run(measure(count))
        tracemalloc.start()  # a second run for memory: tracing slows the timed run three-fold
        asyncio.run(measure(count))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        share = 10_000 / 10 / figures["analysing"] * 100
        print(
            f"{count:>6} canaries: idle {figures['idle']:>9,.0f} ticks/s   in analysis {figures['analysing']:>9,.0f} "
            f"ticks/s   peak traced memory {peak / 2**20:6.1f} MiB   "
            f"(10,000 canaries in analysis at 10 s: {share:.1f} % of a core; goal < 5 %)"
        )


if __name__ == "__main__":
    main()
