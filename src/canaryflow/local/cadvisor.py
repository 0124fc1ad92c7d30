"""Each workload process's CPU and memory under cAdvisor's names, for the local Prometheus to scrape.

In Kubernetes the kubelet's cAdvisor reports ``container_cpu_usage_seconds_total`` and
``container_memory_working_set_bytes`` per container, and Flagger's Grafana dashboard charts them by pod. Here a
pod is a replica process: its CPU is user + system time of the process and its descendants, live or reaped (a
shell-wrapped command counts its children), its working set their resident memory, read from ``/proc``. Labels
are cAdvisor's: ``namespace``, ``pod`` (the replica's name, ``<workload>-<revision>-<index>``), ``container`` and
``cpu="total"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of ``pid`` and its descendants; None when it has gone."""
    cpu, rss, found = 0.0, 0, False
    for each in _tree(pid):
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
            pages = int(Path(f"/proc/{each}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
        # utime and stime, plus cutime and cstime of reaped children: a cgroup keeps counting exited processes.
        cpu += sum(int(f) for f in fields[11:15]) / _TICKS
        rss += pages * _PAGE
        found = True
    return (cpu, rss) if found else None


def _tree(pid: int) -> Iterator[int]:
    pending = [pid]
    while pending:
        current = pending.pop()
        yield current
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(c) for c in children)


class _Processes(Collector):
    def __init__(self, processes: Any) -> None:
        self.processes = processes

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["namespace", "pod", "container", "cpu"]
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "Cumulative cpu time consumed", labels=labels)
        memory = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set", labels=labels[:3])
        for p in self.processes():
            found = usage(p["pid"]) if p.get("pid") else None
            if found is None:
                continue
            container = p["workload"]
            cpu.add_metric([p["namespace"], p["name"], container, "total"], found[0])
            memory.add_metric([p["namespace"], p["name"], container], found[1])
        yield cpu
        yield memory


def exposition(processes: Any) -> bytes:
    """The text exposition for ``processes()`` (``ProcessWorkloads.processes``: name, namespace, workload, pid)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Processes(processes))
    return generate_latest(registry)
