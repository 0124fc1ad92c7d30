"""The CLI against the runtime's real HTTP API (served in this process over the saved state; no Envoy): what a
running runtime answers to ``status``, ``promote``/``abort``/``retry``, ``apply``, ``up --detach`` and ``get``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import yaml

from canaryflow.engine.machine import Operation
from tests.cli.conftest import Runtime, Saved


def test_get_through_the_api_shows_what_the_disk_shows_without_a_note(saved: Saved, served: Runtime) -> None:
    code, out, err = saved.cli("get", "canaries", "-A")
    assert code == 0 and err == ""
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [["prod", "backend", "Progressing"],
                                                                   ["staging", "backend", "Succeeded"]]  # fmt: skip
    code, out, _ = saved.cli("get", "canary", "backend", "-n", "staging", "-o", "json")
    assert json.loads(out)["kind"] == "Canary"


def test_status_shows_the_runtime_pid_and_gateways_as_a_table(saved: Saved, served: Runtime) -> None:
    code, out, _ = saved.cli("status", "-o", "json")
    assert code == 0 and json.loads(out)["pid"] == os.getpid()
    code, out, _ = saved.cli("status", "-o", "yaml")
    assert yaml.safe_load(out)["pid"] == os.getpid()
    code, out, _ = saved.cli("status")
    lines = out.splitlines()
    assert f"runtime pid {os.getpid()}, state in {saved.root}" in lines
    assert ["GATEWAY", "URL"] in [x.split() for x in lines]
    assert ["istio-system/public-gateway", "http://127.0.0.1:2"] in [x.split() for x in lines]
    assert "{" not in out


def test_an_operation_that_cannot_apply_is_refused_with_its_reason(saved: Saved, served: Runtime) -> None:
    code, _, err = saved.cli("promote", "canary", "backend", "-n", "staging")
    assert code == 1
    assert "error: cannot promote canary staging/backend: it is Succeeded, no analysis is running" in err
    code, _, err = saved.cli("retry", "canary", "backend", "-n", "prod")
    assert code == 1 and "cannot retry canary prod/backend: it is Progressing" in err
    code, out, _ = saved.cli("get", "canary", "backend", "-n", "staging", "-o", "json")
    assert json.loads(out)["status"]["conditions"][0]["message"] == "Canary analysis completed successfully"
    assert asyncio.run(saved.status.pending("staging/backend")) is None  # nothing queued for the engine
    assert served.canaries.woken == []


def test_an_operation_that_applies_is_queued_and_the_canary_woken(saved: Saved, served: Runtime) -> None:
    code, out, _ = saved.cli("promote", "canary", "backend", "-n", "prod")
    assert code == 0 and "canary prod/backend: promote requested" in out
    assert asyncio.run(saved.status.pending("prod/backend")) is Operation.PROMOTE
    assert served.canaries.woken == ["prod/backend"]
    code, _, err = saved.cli("abort", "canary", "nope", "-n", "prod")
    assert code == 1 and "error: Canary prod/nope not found" in err


def test_up_detach_says_a_runtime_is_already_running(saved: Saved, served: Runtime) -> None:
    code, out, _ = saved.cli("up", "--detach")
    assert code == 0
    assert f"a runtime is already running (pid {os.getpid()}), state in {saved.root}" in out
    assert "dashboard: http://127.0.0.1:3/" in out


def test_refused_manifests_print_each_problem_on_one_greppable_line(
    saved: Saved, served: Runtime, tmp_path: Path
) -> None:
    deep = tmp_path / "a-directory-with-a-rather-long-name" / "and-another-one-below-it" / "apps"
    deep.mkdir(parents=True)
    canary = yaml.safe_load((Path(__file__).parents[2] / "examples/gitops-istio/apps/backend/canary.yaml").read_text())
    canary["spec"]["analysis"]["stepWeigth"] = 5
    bad = deep / "canary.yaml"
    bad.write_text(yaml.safe_dump(canary))
    code, _, err = saved.cli("apply", "-f", str(bad))
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith(f"{bad}:")]
    assert "stepWeigth: unknown field; did you mean stepWeight?" in line
