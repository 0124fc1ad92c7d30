"""Helpers of ``bench/chaos.py``: one live local runtime driven from outside, as a user and an operator would.

The runtime is started with ``canaryflow up --detach`` and killed with SIGKILL by the PID in its ``runtime.json``;
everything the bench checks is read independently of it: Envoy's admin API (route weights, cluster counters),
the SQLite file (status and events, read-only) and ``/proc`` (the process table, listening sockets).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _chaos_invariants import Proc
from _dataplane_helpers import cmdline, descendants

from canaryflow.cli.client import CliError, Runtime, sources

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "gitops-istio"
CANARYFLOW = str(Path(sys.executable).with_name("canaryflow"))
NAMESPACE, APP = "prod", "backend"
KEY = f"{NAMESPACE}/{APP}"
PRIMARY_CLUSTER, CANARY_CLUSTER = f"{NAMESPACE}_{APP}-primary", f"{NAMESPACE}_{APP}"
Json = dict[str, Any]

#: The chaos canary: a tick a second at ``--time-scale 0.1`` (interval 10 s, Flagger's floor), three steps to
#: 60 %, rolled back after ``threshold`` failed checks; no load-test webhook (the bench's own users are the load).
#: The error-rate window is not scaled: a faulty release waits ``QUIET`` seconds after the previous run, or its
#: first checks would read the previous (healthy) canary's requests, which carry the same workload label.
METRIC_WINDOW = 10
QUIET = METRIC_WINDOW + 2
ANALYSIS: Json = {
    "interval": "10s",
    "threshold": 3,
    "maxWeight": 60,
    "stepWeight": 20,
    "metrics": [
        {"name": "error-rate", "templateRef": {"name": "error-rate", "namespace": "istio-system"},
         "thresholdRange": {"max": 5}, "interval": f"{METRIC_WINDOW}s"},
    ],
    "webhooks": [],
}  # fmt: skip
TIME_SCALE = 0.1


class Live:
    """A copy of the seed repository and a runtime whose state is in ``work/state``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.repo = work / "gitops-istio"
        if not self.repo.exists():
            shutil.copytree(EXAMPLES, self.repo)
        self.runtime = Runtime(str(work / "state"))
        self.dirs = self.runtime.dirs
        self.release_no = 0
        self.rps = 0
        self.users: subprocess.Popen[bytes] | None = None

    # -- the runtime, as a user starts it ----------------------------------------------------------------------------
    def up(self) -> float:
        """``canaryflow up --detach`` on the state directory; the seconds until it answered."""
        start = time.monotonic()
        argv = [CANARYFLOW, "up", "--detach", "--state-dir", str(self.dirs.root),
                "--time-scale", str(TIME_SCALE), "--min-interval", "10"]  # fmt: skip
        run = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"canaryflow up failed ({run.returncode}): {run.stdout[-800:]} {run.stderr[-800:]}")
        return time.monotonic() - start

    def down(self) -> None:
        subprocess.run([CANARYFLOW, "down", "--state-dir", str(self.dirs.root)], capture_output=True, timeout=120)

    def runtime_pid(self) -> int | None:
        return self.dirs.running_pid()

    def kill_runtime(self) -> int:
        pid = self.runtime_pid()
        if pid is None:
            raise RuntimeError("no runtime to kill")
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return pid

    def record(self) -> Json:
        return self.dirs.record() or {}

    def endpoint(self, name: str) -> str:
        return str(self.record()["endpoints"][name])

    def child_pid(self, name: str) -> int:
        for child in self.record().get("children", []):
            if child["name"] == name:
                return int(child["pid"])
        raise KeyError(name)

    # -- manifests ---------------------------------------------------------------------------------------------------
    def write(self, *, analysis: Json | None = None, env: dict[str, str] | None = None, deadline: int = 60) -> None:
        """The backend's Canary (``ANALYSIS`` unless given) and Deployment (probes every scaled second, the demo
        app's fault knobs in ``env``)."""
        path = self.repo / "apps" / APP / "canary.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["analysis"] = copy.deepcopy(analysis or ANALYSIS)
        doc["spec"]["progressDeadlineSeconds"] = deadline
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path = self.repo / "apps" / APP / "deployment.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["minReadySeconds"] = 0
        container = doc["spec"]["template"]["spec"]["containers"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            container[probe].update(initialDelaySeconds=1, periodSeconds=2)
        kept = [e for e in container.get("env", []) if not e["name"].startswith("CANARYFLOW_FAULT")]
        container["env"] = kept + [{"name": k, "value": v} for k, v in (env or {}).items()]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def apply(self, *paths: str) -> None:
        body = {"sources": sources([str(self.repo / p) for p in paths]), "namespace": None}
        response = self.runtime.request("POST", "/apply", json=body)
        if response.status_code != 200:
            raise CliError("apply refused: " + "; ".join(response.json().get("problems", [])))

    def first_deploy(self, timeout: float = 180) -> None:
        self.write()
        self.apply("apps/namespace.yaml", "istio/gateway", f"apps/{APP}")
        deadline = time.monotonic() + timeout
        while self.status().get("phase") != "Initialized":
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Initialized within {timeout:g}s: {self.status()}")
            time.sleep(0.5)

    def release(self, *, analysis: Json | None = None, env: dict[str, str] | None = None, deadline: int = 60) -> str:
        """A new tag of the backend (a new pod template); returns the lastAppliedSpec it replaces."""
        before = str(self.status().get("last_applied_spec", ""))
        self.release_no += 1
        path = self.repo / "apps" / APP / "kustomization.yaml"
        path.write_text(re.sub(r"newTag: \S+", f"newTag: 6.3.{self.release_no}", path.read_text()))
        self.write(analysis=analysis, env=env, deadline=deadline)
        self.apply(f"apps/{APP}")
        return before

    # -- users ---------------------------------------------------------------------------------------------------------
    def start_users(self, rps: int, workers: int = 4) -> None:
        self.stop_users()
        self.rps = rps
        argv = ["hey", "-z", "6h", "-q", f"{rps / workers:g}", "-c", str(workers), "-t", "2",
                "-x", self.endpoint("meshProxy"), f"http://{APP}.{NAMESPACE}:9898/"]  # fmt: skip
        self.users = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_users(self) -> None:
        if self.users is not None and self.users.poll() is None:
            self.users.terminate()
            self.users.wait(10)
        self.users = None

    # -- reading the store, independently of the runtime ----------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.dirs.db}?mode=ro", uri=True, timeout=5)

    def status(self) -> Json:
        """The stored status of the backend canary (``version`` added), read from state.db."""
        with contextlib.closing(self._db()) as db:
            row = db.execute("SELECT status, version FROM canary_status WHERE key = ?", (KEY,)).fetchone()
        if row is None:
            return {}
        status: Json = json.loads(row[0])
        status["version"] = int(row[1])
        return status

    def events(self, after_id: int = 0) -> list[Json]:
        with contextlib.closing(self._db()) as db:
            rows = db.execute(
                "SELECT id, time, type, reason, message FROM events WHERE canary = ? AND id > ? ORDER BY id",
                (KEY, after_id),
            ).fetchall()
        return [{"id": r[0], "time": r[1], "type": r[2], "reason": r[3], "message": r[4]} for r in rows]

    def last_event_id(self) -> int:
        with contextlib.closing(self._db()) as db:
            row = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(row[0])

    # -- reading Envoy -----------------------------------------------------------------------------------------------
    def canary_weights(self, admin: str | None = None, timeout: float = 2.0) -> list[int]:
        """The canary cluster's weight in every weighted route Envoy serves that names the backend's clusters."""
        url = f"{admin or self.endpoint('envoyAdmin')}/config_dump"
        response = httpx.get(url, params={"resource": "dynamic_route_configs"}, timeout=timeout, trust_env=False)
        response.raise_for_status()
        return canary_weights_in(response.json())

    def cluster_requests(self, cluster: str, admin: str | None = None) -> int:
        """Requests Envoy sent to ``cluster`` or answered 503 for lack of a healthy host in it, since it started."""
        pattern = rf"^cluster\.{cluster}\.(upstream_rq_total|upstream_cx_none_healthy)$"
        text = httpx.get(f"{admin or self.endpoint('envoyAdmin')}/stats", params={"filter": pattern},
                         timeout=2.0, trust_env=False).text  # fmt: skip
        return sum(int(v) for line in text.splitlines() if (v := line.partition(": ")[2].strip()).isdigit())


def canary_weights_in(config_dump: Json) -> list[int]:
    """The canary's weight in every route that sends traffic to the backend's primary (the apex service's routes;
    ``backend-canary`` and ``backend-primary`` have routes of their own, to one cluster)."""
    weights = []
    for entry in config_dump.get("configs", []):
        for host in entry.get("route_config", {}).get("virtual_hosts", []):
            for route in host.get("routes", []):
                split = route.get("route", {}).get("weighted_clusters", {}).get("clusters", [])
                names = {c.get("name"): int(c.get("weight", 0)) for c in split}
                if PRIMARY_CLUSTER in names:
                    weights.append(names.get(CANARY_CLUSTER, 0))
                elif route.get("route", {}).get("cluster") == PRIMARY_CLUSTER:
                    weights.append(0)
    return weights


# -- the process table --------------------------------------------------------------------------------------------
def proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    start = int(stat[stat.rfind(")") + 2 :].split()[19])
    return Proc(pid, start, cmdline(pid))


def tree(pid: int) -> list[Proc]:
    """Every live process below ``pid``."""
    return [p for child in descendants(pid) if (p := proc(child)) is not None]


def all_procs() -> list[Proc]:
    return [p for e in Path("/proc").iterdir() if e.name.isdigit() and (p := proc(int(e.name))) is not None]


def mentions(pid: int, root: Path) -> bool:
    """Whether a process names the state directory in its command line or environment."""
    needle = str(root).encode()
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


def listening_ports() -> dict[int, set[int]]:
    """PID → TCP ports it listens on (IPv4 and IPv6), from /proc/net/tcp* and each process's fds."""
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    by_inode[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    out: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and (inode := target[8:-1]) in by_inode:
                    out.setdefault(int(entry.name), set()).add(by_inode[inode])
    return out
