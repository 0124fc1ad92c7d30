"""Workload processes' CPU and memory under cAdvisor's names, measured from /proc of real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from canaryflow.local import cadvisor

from ..polling import wait_until


def samples(processes: list[dict[str, object]]) -> dict[tuple[str, str], float]:
    text = cadvisor.exposition(lambda: processes).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, str(sample.labels.get("pod")))] = sample.value
            if sample.name.startswith("container_cpu"):
                assert sample.labels["cpu"] == "total"
            assert (sample.labels["namespace"], sample.labels["container"]) == ("prod", "backend")
    return found


def test_a_busy_process_and_its_children_count_cpu_and_working_set(tmp_path: Path) -> None:
    # A shell whose child burns 0.6 s of CPU (CPU time, not wall-clock time: a busy machine only makes it take
    # longer) and ends: the pod's CPU is the tree's, reaped children included, as a container's would be.
    done = tmp_path / "burnt"
    burn = f"{sys.executable} -c 'import time\nwhile time.process_time() < 0.6: pass'"
    shell = subprocess.Popen(["sh", "-c", f"{burn}; touch {done}; sleep 30"])
    try:
        wait_until(done.exists, "the child has burnt its CPU and ended", limit=60)
        pod = {"name": "backend-abc123-0", "namespace": "prod", "workload": "backend", "pid": shell.pid}
        found = samples([pod, {**pod, "name": "backend-gone-1", "pid": 2**22 + 7}])
    finally:
        shell.kill()
        shell.wait()
    assert found[("container_cpu_usage_seconds_total", "backend-abc123-0")] >= 0.55
    assert found[("container_memory_working_set_bytes", "backend-abc123-0")] > 100_000
    assert not any(pod == "backend-gone-1" for _, pod in found), "a process that has gone reports nothing"
