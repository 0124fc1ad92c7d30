"""``canaryflow demo``: the seed scenario, end to end, on the local runtime (real Envoy, Prometheus, processes
and traffic) with the seed repository's unchanged manifests.

Like a user of the seed repository, the demo changes a copy of it (a new image tag in a kustomization, a faulty
release) and applies it: (a) first deploy → Initialized; (b) new backend tag → progressive canary under the
load-test webhook's traffic → Succeeded; (c) new frontend tag → A/B test, Firefox and ``type=insider`` traffic
reach the canary, other traffic never does → Succeeded; (d) a faulty backend release (HTTP 500s, 1 s delays) →
rolled back while the primary keeps serving; (e) the same faulty release with the sequential judge on → rolled
back sooner, with fewer failed requests. ``--time-scale`` shortens the analysis intervals (documented in the
README); the default makes the whole demo end within about five minutes.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from canaryflow.cli.client import CliError, Runtime, sources
from canaryflow.cli.options import UNWRAPPED
from canaryflow.cli.progress import waiting

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "gitops-istio"


@dataclasses.dataclass
class Outcome:
    step: str
    expected: str
    outcome: str = "not reached"
    seconds: float = 0.0
    canary_requests: int = 0
    failed_requests: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


class Demo:
    def __init__(self, root: Path, work: Path, console: Console, time_scale: float) -> None:
        self.repo = work / "gitops-istio"
        shutil.copytree(root, self.repo)
        self.runtime = Runtime(str(work / "state"))
        self.console = console
        self.time_scale = time_scale

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def apply(self, *paths: str) -> None:
        response = self.runtime.request(
            "POST", "/apply", json={"sources": sources([str(self.repo / p) for p in paths]), "namespace": None}
        )
        if response.status_code != 200:
            raise CliError("apply refused: " + "; ".join(response.json().get("problems", [])))

    def canary(self, name: str) -> dict[str, Any]:
        items = self.runtime.json("GET", "/objects/canaries", params={"namespace": "prod", "name": name})["items"]
        return dict(items[0])

    def wait(self, name: str, phases: tuple[str, ...], since: str = "", timeout: float = 300.0) -> str:
        """Wait until the canary is in one of ``phases`` with a status newer than ``since``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            status = self.canary(name).get("status", {})
            phase = status.get("phase", "")
            if phase != last:
                self.console.print(f"    {name}: {phase} (weight {status.get('canaryWeight', 0)})")
                last = phase
            if phase in phases and status.get("lastAppliedSpec") != since:
                return str(phase)
            time.sleep(0.5)
        return f"timed out in {last}"

    def set_tag(self, app: str, tag: str) -> None:
        path = self.repo / "apps" / app / "kustomization.yaml"
        path.write_text(re.sub(r"newTag: \S+", f"newTag: {tag}", path.read_text()))

    def inject_faults(self, app: str) -> None:
        path = self.repo / "apps" / app / "deployment.yaml"
        doc = yaml.safe_load(path.read_text())
        env = doc["spec"]["template"]["spec"]["containers"][0].setdefault("env", [])
        env += [
            {"name": "CANARYFLOW_FAULT_ERROR_RATE", "value": "0.5"},
            {"name": "CANARYFLOW_FAULT_DELAY", "value": "1s"},
        ]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def counts(self, workload: str, seconds: float) -> tuple[int, int]:
        """Requests a workload served in the last ``seconds``, and how many failed (5xx), from the mesh's Istio
        metrics (``increase`` copes with Envoy's counters starting again when a workload's cluster comes back)."""
        record = self.runtime.dirs.record() or {}
        url = record["endpoints"]["prometheus"] + "/api/v1/query"
        selector = f'reporter="destination",destination_workload="{workload}",destination_workload_namespace="prod"'
        window = f"{int(seconds) + 5}s"
        values = []
        for extra in ("", ',response_code=~"5.."'):
            expr = f"sum(increase(istio_requests_total{{{selector}{extra}}}[{window}]))"
            data = httpx.get(url, params={"query": expr}, trust_env=False, timeout=5).json()["data"]["result"]
            values.append(round(float(data[0]["value"][1])) if data else 0)
        return values[0], values[1]

    def mesh(self) -> httpx.Client:
        record = self.runtime.dirs.record() or {}
        return httpx.Client(proxy=record["endpoints"]["meshProxy"], timeout=5.0, trust_env=False)

    def gateway(self) -> str:
        record = self.runtime.dirs.record() or {}
        return str(next(iter(record["endpoints"]["gateways"].values())))

    # -- the scenario ------------------------------------------------------------------------------------------------
    def first_deploy(self) -> Outcome:
        out, start = Outcome("(a) first deploy of backend and frontend", "Initialized"), time.monotonic()
        self.apply("apps/namespace.yaml", "istio/gateway", "apps/backend", "apps/frontend")
        phases = {self.wait(app, ("Initialized",), timeout=180) for app in ("backend", "frontend")}
        out.outcome = phases.pop() if len(phases) == 1 else ", ".join(sorted(phases))
        out.seconds = time.monotonic() - start
        return out

    def progressive(self) -> Outcome:
        return self._backend_release(Outcome("(b) new backend tag: progressive canary", "Succeeded"), "6.1.1")

    def ab_test(self) -> Outcome:
        out, start = Outcome("(c) new frontend tag: A/B test", "Succeeded"), time.monotonic()
        before = self.canary("frontend")["status"].get("lastAppliedSpec", "")
        self.set_tag("frontend", "6.1.1")
        self.apply("apps/frontend")
        self.wait("frontend", ("Progressing",), since=before, timeout=120)
        seen: Counter[str] = Counter()
        firefox = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while self.canary("frontend")["status"].get("phase") == "Progressing":
                for label, headers in (("firefox", firefox), ("insider", {"cookie": "type=insider"}), ("other", {})):
                    try:
                        version = client.get(self.gateway() + "/", headers=headers).json().get("version")
                    except (httpx.HTTPError, ValueError):
                        version = "error"
                    seen[f"{label}→{version}"] += 1
                time.sleep(0.2)
        out.outcome = self.wait("frontend", ("Succeeded", "Failed"), since=before)
        out.seconds = time.monotonic() - start
        out.canary_requests, out.failed_requests = self.counts("frontend", out.seconds)
        leaked = seen["other→6.1.1"]
        out.note = ", ".join(f"{k}: {v}" for k, v in sorted(seen.items()))
        if leaked or not seen["firefox→6.1.1"] or not seen["insider→6.1.1"]:
            out.outcome = f"{out.outcome}, but routing was wrong"
        return out

    def rollback(self) -> Outcome:
        outcome = Outcome("(d) faulty backend release (500s, 1 s delays)", "Failed")
        return self._backend_release(outcome, "6.1.2", faulty=True)

    def judged_rollback(self) -> Outcome:
        """(e) the same faulty release with the sequential judge on (``spec.analysis.judge``, docs/judge.md)."""
        path = self.repo / "apps" / "backend" / "canary.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["analysis"]["judge"] = {"alpha": 0.05}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        outcome = Outcome("(e) the same faulty release, judged", "Failed")
        return self._backend_release(outcome, "6.1.3", faulty=True)

    def _backend_release(self, out: Outcome, tag: str, faulty: bool = False) -> Outcome:
        """Release ``tag`` of the backend; either way, the primary must serve 6.1.1 at the end."""
        start = time.monotonic()
        before = self.canary("backend")["status"].get("lastAppliedSpec", "")
        self.set_tag("backend", tag)
        if faulty and "CANARYFLOW_FAULT" not in (self.repo / "apps" / "backend" / "deployment.yaml").read_text():
            self.inject_faults("backend")
        self.apply("apps/backend")
        out.outcome = self.wait("backend", ("Succeeded", "Failed"), since=before)
        out.seconds = time.monotonic() - start
        out.canary_requests, out.failed_requests = self.counts("backend", out.seconds)
        with self.mesh() as client:
            version = client.get("http://backend.prod:9898/version").json().get("version")
        out.note = f"primary serves {version}"
        if version != "6.1.1":
            out.outcome = f"{out.outcome}, but primary serves {version}"
        return out


def run(out: TextIO, root: Path = EXAMPLES, time_scale: float = 0.2, keep: bool = False) -> int:
    console = Console(file=out, width=130 if out.isatty() else UNWRAPPED, soft_wrap=not out.isatty())
    work = Path(tempfile.mkdtemp(prefix="canaryflow-demo-"))
    console.print(f"[bold]canaryflow demo[/bold]: the seed scenario on a copy of {root} (state in {work}/state)")
    demo = Demo(root, work, console, time_scale)
    results: list[Outcome] = []
    try:
        with waiting("starting the runtime"):
            demo.runtime.start(time_scale=time_scale, min_interval=10.0)
        for step in (demo.first_deploy, demo.progressive, demo.ab_test, demo.rollback, demo.judged_rollback):
            console.print(f"[bold]{step.__name__.replace('_', ' ')}[/bold]")
            with waiting(step.__name__.replace("_", " ")):
                results.append(step())
    except (CliError, httpx.HTTPError, KeyError) as exc:
        console.print(f"[red]demo stopped: {exc}[/red]")
    finally:
        demo.runtime.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    table = Table(title="canaryflow demo")
    for column in ("step", "outcome", "duration", "canary requests", "failed requests", "notes"):
        table.add_column(column)
    for r in results:
        mark = "[green]✓[/green] " if r.ok else "[red]✗[/red] "
        table.add_row(r.step, mark + r.outcome, f"{r.seconds:.0f}s", str(r.canary_requests), str(r.failed_requests),
                      r.note)  # fmt: skip
    console.print(table)
    if len(results) == 5:
        thresholds, judge = results[3], results[4]
        console.print(
            f"faulty release: the thresholds rolled back after {thresholds.seconds:.0f}s with "
            f"{thresholds.failed_requests} failed requests; the judge after {judge.seconds:.0f}s with "
            f"{judge.failed_requests}"
        )
    ok = len(results) == 5 and all(r.ok for r in results)
    console.print("[green]all five outcomes happened[/green]" if ok else "[red]the demo did not complete[/red]")
    return 0 if ok else 1
