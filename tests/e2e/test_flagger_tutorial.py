"""Flagger's "Istio Canary Deployments" tutorial in the local runtime, with its manifests unchanged.

The tutorial's Canary (podinfo in namespace ``test``) uses the built-in ``request-success-rate`` and
``request-duration`` checks without ``metricsServer``, so they run on the runtime's own Prometheus at
``http://127.0.0.1:PORT``: a healthy release is promoted, one whose canary answers 500s (podinfo's
``--random-error``) is rolled back. Only time is shortened: the runtime's time scale turns the tutorial's 1m
interval into 3 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.cli.client import Runtime, sources
from tests.hooks.receiver import Receiver

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "flagger-docs"
CANARY = DOCS / "docs" / "gitbook" / "tutorials" / "istio-progressive-delivery" / "1.yaml"
PODINFO = DOCS / "kustomize" / "podinfo"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test\n  labels: {istio-injection: enabled}\n"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(str(tmp_path / "state"))
    rt.start(time_scale=0.05, min_interval=10.0)
    try:
        yield rt
    finally:
        rt.stop()


def apply(runtime: Runtime, texts: list[dict[str, str]]) -> None:
    response = runtime.request("POST", "/apply", json={"sources": texts, "namespace": None})
    assert response.status_code == 200, response.json()


def status(runtime: Runtime) -> dict[str, Any]:
    items = runtime.json("GET", "/objects/canaries", params={"namespace": "test", "name": "podinfo"})["items"]
    return dict(items[0].get("status") or {})


def wait(runtime: Runtime, phases: tuple[str, ...], since: str = "", timeout: float = 150.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    now = status(runtime)
    while time.monotonic() < deadline:
        now = status(runtime)
        if now.get("phase") in phases and now.get("lastAppliedSpec") != since:
            return now
        time.sleep(0.5)
    raise AssertionError(f"canary test/podinfo did not reach {phases}: {now}")


def release(runtime: Runtime, tag: str, *flags: str) -> None:
    """``kubectl set image`` (and, for a faulty release, podinfo's own flags), applied as a user would."""
    docs = list(yaml.safe_load_all((PODINFO / "deployment.yaml").read_text()))
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = f"ghcr.io/stefanprodan/podinfo:{tag}"
    container["command"] = [f for f in container["command"] if f.split("=")[0] not in {x.split("=")[0] for x in flags}]
    container["command"] += list(flags)
    docs[0]["metadata"]["namespace"] = "test"
    apply(runtime, [{"source": "podinfo.yaml", "text": yaml.safe_dump_all(docs)}])


def messages(runtime: Runtime) -> list[str]:
    events = runtime.json("GET", "/events", params={"canary": "test/podinfo", "limit": 300})
    return [str(e["message"]) for e in events]


def flagger_release(slack_url: str) -> str:
    """Flagger's HelmRelease with Slack enabled, as the seed's guide does with ``values.slack``."""
    values = {"meshProvider": "istio", "slack": {"url": slack_url, "channel": "deploys", "user": "flagger"}}
    body = {"apiVersion": "helm.toolkit.fluxcd.io/v2beta1", "kind": "HelmRelease",
            "metadata": {"name": "flagger", "namespace": "istio-system"},
            "spec": {"interval": "1h", "chart": {"spec": {"chart": "flagger", "sourceRef": {"kind": "HelmRepository",
                     "name": "flagger"}}}, "values": values}}  # fmt: skip
    return yaml.safe_dump(body)


@pytest.fixture
def slack() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_the_tutorial_canary_is_promoted_when_healthy_and_rolled_back_on_500s(
    runtime: Runtime, slack: Receiver
) -> None:
    hook = slack.url("/services/T0/B0/SECRETPART")
    apply(runtime, [{"source": "namespace.yaml", "text": NAMESPACE}, {"source": "flagger.yaml",
                    "text": flagger_release(hook)}, *sources([str(PODINFO), str(CANARY)])])  # fmt: skip
    notifier = runtime.json("GET", "/status")["globalNotifier"]
    assert notifier.startswith("slack to http://127.0.0.1:") and "SECRETPART" not in notifier
    initialized = wait(runtime, ("Initialized",))

    release(runtime, "6.0.1")
    promoted = wait(runtime, ("Succeeded", "Failed"), since=initialized["lastAppliedSpec"])
    assert promoted["phase"] == "Succeeded", messages(runtime)
    said = messages(runtime)
    assert not any("answered HTTP 404" in m for m in said), said  # the default Prometheus was reached
    assert "Promotion completed! Scaling down podinfo.test" in said, said
    posted = [r.json for r in slack.requests]
    assert {p["channel"] for p in posted} == {"deploys"}  # the canary has no alerts: the global notifier hears all
    assert any("promotion finished" in str(p) for p in posted), posted

    release(runtime, "6.0.2", "--random-error=true")
    rolled_back = wait(runtime, ("Succeeded", "Failed"), since=promoted["lastAppliedSpec"])
    assert rolled_back["phase"] == "Failed"
    said = messages(runtime)
    assert any(m.startswith("Halt podinfo.test advancement success rate") for m in said), said
    assert "Rolling back podinfo.test failed checks threshold reached 5" in said
