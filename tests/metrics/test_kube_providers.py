"""externalmetrics and keptn read the Kubernetes API; here a local server plays the API server's
``external.metrics.k8s.io`` and ``metrics.keptn.sh`` groups, reached through ``spec.provider.address``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from canaryflow.metrics import externalmetrics, keptn, kubeapi
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.factory import MetricsFactory
from tests.metrics.fake_api import FakeApi, Reply, Seen, provider_template, serving

TOKEN = {"token": "sa-token-1234"}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    yield from serving()


@pytest.fixture
async def factory() -> MetricsFactory:
    return MetricsFactory()


def metric_list(*values: str) -> Reply:
    items = [{"metricName": "s0-rabbitmq", "metricLabels": {}, "timestamp": "2024-01-01T00:00:00Z", "value": v}
             for v in values]  # fmt: skip
    return Reply(body={"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
                       "metadata": {}, "items": items})  # fmt: skip


async def test_external_metric_value_is_read_as_a_quantity(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(metric_list("1500m"))
    provider = factory.for_template(provider_template("externalmetrics", api.url), TOKEN, "1m")

    assert await provider.query("test/queue-length?labelSelector=app%3Dpodinfo%2Cenv%3Dprod") == 1.5

    seen = api.last
    assert seen.path == "/apis/external.metrics.k8s.io/v1beta1/namespaces/test/queue-length"
    assert seen.params == {"labelSelector": "app=podinfo,env=prod"}
    assert seen.headers["authorization"] == "Bearer sa-token-1234"


async def test_external_metrics_none_several_and_malformed(api: FakeApi, factory: MetricsFactory) -> None:
    provider = factory.for_template(provider_template("externalmetrics", api.url, secret=False), None, "1m")
    api.answer(metric_list())
    with pytest.raises(NoValuesFound):
        await provider.query("queue-length")
    assert api.last.path.endswith("/namespaces/default/queue-length")
    api.answer(metric_list("1", "2"))
    with pytest.raises(MetricError, match="returned 2 series"):
        await provider.query("test/queue-length")
    with pytest.raises(MetricError, match="too many slashes"):
        await provider.query("a/b/c")


@pytest.mark.parametrize(
    ("text", "value"), [("1500m", 1.5), ("2k", 2000.0), ("1Ki", 1024.0), ("3e2", 300.0), ("-0.5", -0.5)]
)
def test_kubernetes_quantities(text: str, value: float) -> None:
    assert kubeapi.quantity(text) == value


def test_without_an_api_server_the_template_says_why(factory: MetricsFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(MetricError, match=r"keptn \(metric template test/keptn\): .*the local runtime has no Kub"):
        factory.for_template(provider_template("keptn", None, secret=False), None, "1m")


async def test_keptn_metric_value(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body={"kind": "KeptnMetric", "status": {"value": "12.75", "rawValue": "MTIuNzU="}}))
    provider = factory.for_template(provider_template("keptn", api.url), TOKEN, "1m")

    assert await provider.query("KeptnMetric/Test/Response-Time") == 12.75
    assert api.last.path == "/apis/metrics.keptn.sh/v1beta1/namespaces/test/keptnmetrics/response-time"


async def test_keptn_analysis_is_created_read_until_completed_and_deleted(
    api: FakeApi, factory: MetricsFactory
) -> None:
    def server(seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply(201, seen.json())
        if seen.method == "GET":
            return Reply(body={"status": {"state": "Completed", "pass": True}})
        return Reply(body={"kind": "Status", "status": "Success"})

    api.answer(server)
    provider = factory.for_template(provider_template("keptn", api.url, secret=False), None, "1m")

    assert await provider.query("analysis/test/podinfo-slo/2m/service=podinfo;env=prod") == 1.0

    create, read, delete = api.seen
    body = create.json()
    assert create.path == "/apis/metrics.keptn.sh/v1beta1/namespaces/test/analyses"
    assert body["spec"] == {"analysisDefinition": {"name": "podinfo-slo"}, "timeframe": {"recent": "2m"},
                            "args": {"service": "podinfo", "env": "prod"}}  # fmt: skip
    name = body["metadata"]["name"]
    assert name.startswith("podinfo-slo-")
    assert (read.method, read.path) == ("GET", f"{create.path}/{name}")
    assert (delete.method, delete.path) == ("DELETE", f"{create.path}/{name}")


def test_keptn_query_format_is_checked() -> None:
    with pytest.raises(MetricError, match="must be one of: \\['keptnmetric', 'analysis'\\]"):
        keptn.parse("deployment/test/podinfo")
    with pytest.raises(MetricError, match="query must be in the format"):
        keptn.parse("analysis/test")
    assert externalmetrics.parse("/queue") == ("default", "queue", None)
