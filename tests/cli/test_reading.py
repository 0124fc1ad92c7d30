"""``get``, ``describe`` and ``events`` as a kubectl user types them, here against the state a stopped runtime
left on disk (the same listings the running runtime's API serves: tests/cli/test_runtime_api.py)."""

from __future__ import annotations

import io
import json

import yaml
from rich.console import Console

from canaryflow.cli import view
from tests.cli.conftest import LONG, Saved

SAVED_NOTE = "no runtime is running: showing the state saved in"


def test_get_reads_the_saved_state_when_no_runtime_runs_and_says_so(saved: Saved) -> None:
    code, out, err = saved.cli("get", "canaries", "-n", "prod")
    assert code == 0, err
    assert f"{SAVED_NOTE} {saved.dirs.db}" in err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"]
    assert row.split()[:4] == ["backend", "Progressing", "10", "1"]


def test_get_lists_one_namespace_as_kubectl_does_and_all_with_A(saved: Saved) -> None:
    code, out, err = saved.cli("get", "canaries")
    assert (code, out) == (0, "")
    assert "No resources found in default namespace." in err
    for flag in ("-A", "--all-namespaces"):
        code, out, _ = saved.cli("get", "canaries", flag)
        assert code == 0
        rows = [line.split()[:3] for line in out.splitlines()]
        assert rows == [["NAMESPACE", "NAME", "STATUS"], ["prod", "backend", "Progressing"],
                        ["staging", "backend", "Succeeded"]]  # fmt: skip


def test_get_one_canary_as_json_or_yaml_prints_the_object_not_a_list(saved: Saved) -> None:
    code, out, _ = saved.cli("get", "canary", "backend", "-n", "prod", "-o", "json")
    assert code == 0
    obj = json.loads(out)
    assert (obj["kind"], obj["metadata"]["name"], obj["status"]["phase"]) == ("Canary", "backend", "Progressing")
    code, out, _ = saved.cli("get", "canary", "backend", "-n", "prod", "-o", "yaml")
    assert yaml.safe_load(out) == obj
    code, out, _ = saved.cli("get", "canaries", "-A", "-o", "yaml")
    listing = yaml.safe_load(out)
    assert listing["kind"] == "List" and [i["metadata"]["namespace"] for i in listing["items"]] == ["prod", "staging"]


def test_an_unknown_output_format_is_a_usage_error(saved: Saved) -> None:
    for command in (["get", "canaries"], ["status"], ["events"]):
        code, _, err = saved.cli(*command, "-o", "bogus")
        assert code == 2, (command, err)
        assert "Invalid value for '-o' / '--output': 'bogus' is not one of json, yaml" in err


def test_a_missing_object_is_named_the_same_way_by_every_command(saved: Saved) -> None:
    for command in (["get", "canary", "nope"], ["describe", "canary", "nope"], ["get", "deployment", "nope"]):
        code, _, err = saved.cli(*command, "-n", "prod")
        assert code == 1, command
        kind = "Deployment" if "deployment" in command else "Canary"
        assert f"error: {kind} prod/nope not found" in err, err
    code, _, err = saved.cli("logs", "deployment/nope", "-n", "prod")
    assert code == 1 and "Deployment prod/nope not found" in err


def test_describe_canary_summarises_the_spec_and_shows_the_run_timeline(saved: Saved) -> None:
    code, out, _ = saved.cli("describe", "canary", "backend", "-n", "prod")
    assert code == 0
    lines = out.splitlines()
    for expected in ("Target:            Deployment/backend", "Service:           port 9898",
                     "Analysis:          interval 15s, threshold 10, max weight 50, step weight 5",
                     "  error-rate  max 1  interval 30s  template istio-system/error-rate",
                     "  conformance-test  pre-rollout  http://flagger-loadtester.prod/",
                     "  load-test  rollout  http://flagger-loadtester.prod/",
                     "  Phase:             Progressing", "  Canary weight:     10"):  # fmt: skip
        assert expected in lines, out
    timeline = lines[lines.index(next(x for x in lines if x.startswith("Timeline of the current run"))) + 1 :]
    assert timeline[:3] == [
        "  +0m01s  Normal   New revision detected! Scaling up backend.prod",
        "  +0m16s  Normal   Advance backend.prod canary weight 5",
        "  +0m31s  Normal   Advance backend.prod canary weight 10",
    ]
    assert "''" not in out and "Unready since" not in out and "Last promoted spec" not in out  # empty: left out


def test_events_follow_the_namespace_rules_of_get(saved: Saved) -> None:
    code, out, _ = saved.cli("events", "-n", "prod")
    assert code == 0 and "prod/backend" in out and "staging/backend" not in out
    code, out, _ = saved.cli("events", "-A")
    assert "prod/backend" in out and "Promotion completed! backend.staging" in out
    code, out, _ = saved.cli("events", "backend", "-n", "staging")
    assert out.splitlines()[1:] and all("staging/backend" in line for line in out.splitlines()[1:])
    code, _, err = saved.cli("events")
    assert code == 0 and "No events found in namespace default." in err
    code, out, _ = saved.cli("events", "-A", "-o", "yaml")
    assert [e["object"] for e in yaml.safe_load(out)] == ["prod/backend"] * 4 + ["staging/backend"]


def test_wide_output_keeps_a_long_message_whole_on_its_row_when_piped(saved: Saved) -> None:
    saved.set_status("prod/backend", message=LONG)
    code, out, _ = saved.cli("get", "canaries", "-n", "prod", "-o", "wide")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("backend")]
    assert LONG in row and row.endswith("2026-05-28T20:26:40Z")


def test_wide_output_on_a_terminal_keeps_one_line_per_canary() -> None:
    item = {"metadata": {"namespace": "prod", "name": "backend"}, "spec": {"analysis": {"interval": "15s"}},
            "status": {"phase": "Failed", "conditions": [{"message": LONG}]}}  # fmt: skip
    screen = io.StringIO()
    rows = view.canary_rows([item, item], wide=True)
    Console(file=screen, force_terminal=True, width=200, color_system=None).print(rows.table(rows.width(200)))
    lines = screen.getvalue().splitlines()
    assert len(lines) == 3 and all(len(line) <= 200 for line in lines), lines
    assert "Failed" in lines[1] and "…" in lines[1]


def test_an_error_message_is_not_wrapped_when_output_is_not_a_terminal(saved: Saved) -> None:
    code, _, err = saved.cli("get", "widgets-of-a-kind-nobody-has-ever-heard-of-in-any-cluster-anywhere")
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "unknown resource type 'widgets-of-a-kind-nobody-has-ever-heard-of-in-any-cluster-anywhere'" in line
    assert "known: alertprovider" in line


def test_without_any_state_the_user_is_told_to_start_a_runtime(tmp_path: object) -> None:
    from typer.testing import CliRunner

    from canaryflow.cli.main import app

    result = CliRunner().invoke(app, ["get", "canaries", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no runtime is running with state directory" in result.stderr and "canaryflow up" in result.stderr
