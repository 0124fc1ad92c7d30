"""The operator's surroundings: the command's flags, the catalog it reads, its /metrics port, namespace selection,
and what a user sees for a Canary it cannot drive."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from canaryflow.cli.main import app
from canaryflow.cli.operator import namespaces_from
from canaryflow.clock.backoff import Backoff
from canaryflow.kube.catalog import KubeCatalog
from canaryflow.kube.client import ALERT_PROVIDER, CANARY, DEPLOYMENT, METRIC_TEMPLATE, SECRET, ApiError
from canaryflow.kube.runtime import Fanout, OperatorOptions
from canaryflow.notify.base import Alert, Severity
from tests.hooks.receiver import Receiver
from tests.kube import lifecycle_support as s


# -- flags ------------------------------------------------------------------------------------------------------
def test_namespaces_come_from_flags_else_from_the_environment() -> None:
    assert namespaces_from(["a", "b", "a"], "x,y") == ("a", "b")
    assert namespaces_from(None, " x, y ,,") == ("x", "y")
    assert namespaces_from(None, None) == ()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mesh-provider", "linkerd"], "--mesh-provider 'linkerd': must be one of istio, kubernetes"),
        (["--listen", "8080"], "--listen '8080': expected HOST:PORT"),
        (["--log-level", "loud"], "must be one of debug, info, warning, error"),
    ],
)
def test_bad_flags_stop_the_command_naming_the_flag(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(app, ["operator", *args])
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.replace("│", " ").split())


def test_environment_variables_configure_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYFLOW_MESH_PROVIDER", "consul")
    result = CliRunner().invoke(app, ["operator"])
    assert result.exit_code == 2 and "consul" in result.output


def test_options_refuse_an_unknown_mesh_provider() -> None:
    with pytest.raises(ValueError, match="mesh-provider"):
        OperatorOptions(mesh_provider="nginx")


class _Notifier:
    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.alerts: list[Alert] = []

    async def post(self, alert: Alert) -> None:
        self.alerts.append(alert)
        if self.error:
            raise RuntimeError(self.error)


async def test_the_global_notifiers_each_hear_every_alert_and_failures_are_reported() -> None:
    slack, teams = _Notifier("slack said no"), _Notifier()
    alert = Alert("podinfo", "test", "Promotion completed", Severity.INFO, ())
    with pytest.raises(RuntimeError, match="slack said no"):
        await Fanout([slack, teams]).post(alert)
    assert slack.alerts == [alert] and teams.alerts == [alert]


# -- the catalog --------------------------------------------------------------------------------------------------
def _template(address: str = "http://prometheus.monitoring:9090") -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": "test"},
        "spec": {"provider": {"type": "prometheus", "address": address, "secretRef": {"name": "prom-auth"}},
                 "query": "sum(rate(errors[{{ interval }}]))"},
    }  # fmt: skip


async def test_the_catalog_follows_templates_and_reads_the_secrets_they_name(kube_api: Any) -> None:
    await s.ensure_namespace(kube_api, "test")
    token = base64.b64encode(b"s3cret").decode()
    await kube_api.create(SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth",
                                   "namespace": "test"}, "data": {"token": token}})  # fmt: skip
    await kube_api.create(METRIC_TEMPLATE, _template())
    catalog = KubeCatalog(kube_api, ("test",), restart=Backoff(0.1, 0.1))
    await catalog.start()
    try:
        found = catalog.metric_template("test", "errors")
        assert found is not None and found.spec.provider.address == "http://prometheus.monitoring:9090"
        assert catalog.secret("test", "prom-auth") == {"token": "s3cret"}
        live = await kube_api.get(METRIC_TEMPLATE, "test", "errors")
        live["spec"]["provider"]["address"] = "http://thanos:9090"
        await kube_api.replace(METRIC_TEMPLATE, live)

        async def updated() -> bool:
            t = catalog.metric_template("test", "errors")
            return t is not None and t.spec.provider.address == "http://thanos:9090"

        await s.until(updated, "the catalog to see the new address")
        await kube_api.delete(METRIC_TEMPLATE, "test", "errors")

        async def forgotten() -> bool:
            return catalog.metric_template("test", "errors") is None

        await s.until(forgotten, "the catalog to forget the template")
    finally:
        await catalog.close()


async def test_the_catalog_waits_out_a_failing_api_server_but_not_a_refusal(kube_emulator: Any, kube_api: Any) -> None:
    # Found by bench/chaos_operator.py: a burst of 504s on the first list of AlertProviders outlasted the client's
    # retries and the operator exited at start-up.
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(METRIC_TEMPLATE, _template())
    templates = "/apis/flagger.app/v1beta1/namespaces/test/metrictemplates"
    kube_emulator.fail_next("GET", templates, 504, times=6)  # the client makes 4 attempts
    catalog = KubeCatalog(kube_api, ("test",), restart=Backoff(0.01, 0.01))
    await catalog.start()
    try:
        assert catalog.metric_template("test", "errors") is not None
    finally:
        await catalog.close()
    # (another namespace: a request of the closed catalog's watches may still reach the server)
    kube_emulator.fail_next("GET", "/apis/flagger.app/v1beta1/namespaces/other/alertproviders", 403)
    with pytest.raises(ApiError, match="403"):
        await KubeCatalog(kube_api, ("other",), restart=Backoff(0.01, 0.01)).start()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("catalog")], "a failed start leaves no task"


# -- the running operator -----------------------------------------------------------------------------------------
async def test_the_operator_serves_flaggers_metrics_and_health(kube_emulator: Any, kube_api: Any) -> None:
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, s.canary_doc())
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url) as runtime:
        await s.reaches(kube_api, "Initialized")
        base = f"http://127.0.0.1:{runtime.metrics_port}"
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(f"{base}/healthz")
            metrics = (await client.get(f"{base}/metrics")).text
    assert health.status_code == 200
    assert 'flagger_info{mesh_provider="istio"' in metrics
    assert 'flagger_canary_total{namespace="test"} 1.0' in metrics
    assert 'flagger_canary_status{name="podinfo",namespace="test"} 1.0' in metrics


async def test_only_the_listed_namespaces_are_driven(kube_emulator: Any, kube_api: Any) -> None:
    for namespace in ("test", "other"):
        await s.ensure_namespace(kube_api, namespace)
        await kube_api.create(DEPLOYMENT, s.deployment_doc(namespace=namespace))
        await kube_api.create(CANARY, s.canary_doc(namespace=namespace))
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url, namespaces=("test",)) as runtime:
        await s.reaches(kube_api, "Initialized")
        await asyncio.sleep(0.5)  # several ticks of the driven canary: long enough to see the other one move
        assert runtime.handlers.driving == {"test/podinfo"}
    other = await kube_api.get(CANARY, "other", "podinfo")
    assert "status" not in other or not other["status"], "a canary outside --namespace was touched"
    assert await kube_api.get(DEPLOYMENT, "other", "podinfo-primary") is None


async def test_an_invalid_canary_gets_a_status_message_and_a_warning(kube_emulator: Any, kube_api: Any) -> None:
    await s.ensure_namespace(kube_api, "test")
    bad = s.canary_doc(stepWeight="ten")
    await kube_api.create(CANARY, bad)
    async with s.operator(kube_emulator.url):

        async def reported() -> str | None:
            obj = await kube_api.get(CANARY, "test", "podinfo")
            conditions = (obj.get("status") or {}).get("conditions") or [{}]
            return conditions[0].get("message") or None

        message = await s.until(reported, "the invalid canary's status message")
    assert message.startswith("invalid Canary, not driven until fixed: spec.analysis.stepWeight")
    assert any("spec.analysis.stepWeight" in m for m in await s.messages(kube_api))


# -- the command itself ---------------------------------------------------------------------------------------------
def _kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "any"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_the_command_drives_canaries_from_a_kubeconfig_and_stops_on_sigterm(
    kube_emulator: Any, kube_api: Any, tmp_path: Path
) -> None:
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, s.canary_doc())
    port = _free_port()
    env = {**os.environ, "KUBECONFIG": str(_kubeconfig(tmp_path / "config", kube_emulator.url)),
           "CANARYFLOW_NAMESPACES": "test", "CANARYFLOW_LISTEN": f"127.0.0.1:{port}"}  # fmt: skip
    command = [str(Path(sys.executable).with_name("canaryflow")), "operator", "--standalone", "--log-level", "warning"]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with s.Rollouts(kube_api, "test"):
            canary = await s.reaches(kube_api, "Initialized")
            async with httpx.AsyncClient(trust_env=False) as client:
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'flagger_canary_total{namespace="test"} 1.0' in metrics
        assert "canaryflow.dev/finalizer" in canary["metadata"]["finalizers"]
        process.send_signal(signal.SIGTERM)
        output, _ = await s.wait_for(process.communicate(), "the operator to exit on SIGTERM")
        assert process.returncode == 0, output.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_alerts_go_to_the_global_notifiers_or_to_the_canarys_alert_providers(
    kube_emulator: Any, kube_api: Any
) -> None:
    receiver = Receiver()
    try:
        await s.ensure_namespace(kube_api, "test")
        address = base64.b64encode(receiver.url("/provider").encode()).decode()
        await kube_api.create(SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "on-call-url",
                                       "namespace": "test"}, "data": {"address": address}})  # fmt: skip
        await kube_api.create(ALERT_PROVIDER, {
            "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": "on-call", "namespace": "test"},
            "spec": {"type": "slack", "channel": "on-call", "secretRef": {"name": "on-call-url"}},
        })  # fmt: skip
        for name in ("podinfo", "backend"):
            await kube_api.create(DEPLOYMENT, s.deployment_doc(name=name))
        await kube_api.create(CANARY, s.canary_doc())
        alerting = s.canary_doc(name="backend", alerts=[{"name": "pager", "providerRef": {"name": "on-call"}}])
        await kube_api.create(CANARY, alerting)
        flags = {"slack_url": receiver.url("/slack"), "slack_channel": "deploys", "slack_user": "canaryflow",
                 "msteams_url": receiver.url("/teams")}  # fmt: skip
        async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url, options=flags):
            await s.reaches(kube_api, "Initialized")
            await s.reaches(kube_api, "Initialized", name="backend")

            async def three() -> bool:
                return len(receiver.requests) >= 3

            await s.until(three, "three alerts")
        by_path = {r.target: r.json for r in receiver.requests}
        assert sorted(by_path) == ["/provider", "/slack", "/teams"], "each alert goes to one place only"
        assert (by_path["/slack"]["channel"], by_path["/slack"]["username"]) == ("deploys", "canaryflow")
        assert "podinfo" in json.dumps(by_path["/slack"]) and "podinfo" in json.dumps(by_path["/teams"])
        assert by_path["/provider"]["channel"] == "on-call" and "backend" in json.dumps(by_path["/provider"])
    finally:
        receiver.stop()
