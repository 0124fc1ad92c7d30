"""The dashboard's pages over an in-memory backend: what a person sees, escaped, and with the judge's evidence."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from canaryflow.dashboard.app import Dashboard
from canaryflow.dashboard.memory import MemoryBackend

SCRIPT = "<script>window.__pwned = 1</script>"


def canary(name: str = "backend", status: dict[str, Any] | None = None, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "analysis": {
                "interval": "15s", "threshold": 5,
                "metrics": [{"name": "error-rate", "thresholdRange": {"max": 1}},
                            {"name": "request-success-rate", "threshold": 99}],
                **analysis,
            },
        },
        "status": status or {"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1,
                             "lastTransitionTime": "2026-12-04T10:00:00Z",
                             "lastMetrics": {"error-rate": 1.5, "request-success-rate": 99.5}},
    }  # fmt: skip


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend([canary(), canary("frontend", {"phase": "Succeeded"})])


def client(backend: MemoryBackend, token: str | None = None) -> TestClient:
    return TestClient(Dashboard(backend, token).app, headers={"accept": "text/html"})


def test_the_list_shows_every_canary_with_its_phase_and_weight(backend: MemoryBackend) -> None:
    page = client(backend).get("/")
    assert page.status_code == 200
    assert 'data-canary="prod/backend"' in page.text and 'data-canary="prod/frontend"' in page.text
    assert '<td class="phase">Progressing</td><td class="weight">20%</td><td>1</td>' in page.text


def test_canary_and_event_text_is_escaped(backend: MemoryBackend) -> None:
    backend.put(canary("evil", {"phase": "Failed", "conditions": [{"type": "Promoted", "message": SCRIPT}]}))
    backend.emit("prod/evil", f"webhook answered {SCRIPT}", warning=True)
    for path in ("/", "/canaries/prod/evil"):
        page = client(backend).get(path)
        assert SCRIPT not in page.text
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_each_metric_is_set_against_its_threshold(backend: MemoryBackend) -> None:
    page = client(backend).get("/canaries/prod/backend").text
    assert "<td>error-rate</td><td>1.5</td><td>—</td><td>1</td>" in page
    assert '<td class="fail">failed</td>' in page
    # A built-in check's single threshold is a minimum for the success rate.
    assert "<td>request-success-rate</td><td>99.5</td><td>99</td><td>—</td>" in page
    assert '<td class="pass">passed</td>' in page


def test_the_judges_evidence_and_reported_checks_are_shown_when_present(backend: MemoryBackend) -> None:
    status = canary()["status"] | {
        "judge": {"alpha": 0.05, "tests": [{"name": "errors", "statistic": 3.1, "bound": 20.0,
                                            "decision": "continue", "message": "not enough evidence yet"}]},
        "lastChecks": [{"name": "error-rate", "value": 0.2, "min": None, "max": 1.0, "passed": True}],
    }  # fmt: skip
    backend.put(canary(status=status))
    page = client(backend).get("/canaries/prod/backend").text
    assert "Sequential judge (\u03b1 = 0.05)" in page
    assert "<td>errors</td><td>3.1</td><td>20.0</td>" in page and "not enough evidence yet" in page
    assert "<td>error-rate</td><td>0.2</td>" in page and "request-success-rate" not in page


def test_a_missing_canary_is_a_404(backend: MemoryBackend) -> None:
    assert client(backend).get("/canaries/prod/nothing").status_code == 404


def test_gitops_objects_show_revision_and_readiness() -> None:
    ready = {"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:abc"}
    backend = MemoryBackend(gitops={
        "GitRepository": [{"metadata": {"name": "flux-system", "namespace": "flux-system"},
                           "status": {"artifact": {"revision": "main@sha1:abc"}, "conditions": [ready]}}],
        "ImagePolicy": [{"metadata": {"name": "backend", "namespace": "flux-system"},
                         "status": {"latestRef": {"name": "ghcr.io/x/backend", "tag": "6.1.1"}}}],
    })  # fmt: skip
    page = client(backend).get("/gitops").text
    assert "<code>main@sha1:abc</code>" in page and "Applied revision: main@sha1:abc" in page
    assert "<code>ghcr.io/x/backend:6.1.1</code>" in page
