"""The operator's dashboard over the emulated API server: Canaries and Events read from it, operations written as
the annotation the operator acts on, and only with the token."""

from __future__ import annotations

from typing import Any

import httpx

from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.dashboard import app as dashboard_app
from canaryflow.engine.effects import EventType
from canaryflow.kube.client import CANARY
from canaryflow.kube.dashboard import KubeBackend
from canaryflow.kube.store import OPERATION_ANNOTATION, KubeEventSink, KubeStatusStore
from canaryflow.store.base import Event
from tests.kube import lifecycle_support as support

TOKEN = "operator-token"


async def test_the_operators_dashboard_shows_canaries_and_promotes_with_the_token(kube_api: Any) -> None:
    await support.ensure_namespace(kube_api, "test")
    await kube_api.create(CANARY, support.canary_doc())
    store = KubeStatusStore(kube_api)
    stored = await store.load("test/podinfo")
    assert stored is not None
    await store.save("test/podinfo", CanaryStatus(phase=Phase.PROGRESSING, canary_weight=30), stored.version)
    await KubeEventSink(kube_api).record(Event(1.7e9, "test/podinfo", EventType.NORMAL, "Advance podinfo.test <b>"))
    backend = KubeBackend(kube_api, ("test",), None)
    settings = dashboard_app.Settings("127.0.0.1:0", TOKEN)
    async with (
        dashboard_app.serve(backend, settings) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client,
    ):
        listing = (await client.get("/")).text
        assert '<td class="phase">Progressing</td><td class="weight">30%</td>' in listing
        page = (await client.get("/canaries/test/podinfo")).text
        assert "Advance podinfo.test &lt;b&gt;" in page
        refused = await client.post("/canaries/test/podinfo/actions/promote")
        assert refused.status_code == 401
        assert OPERATION_ANNOTATION not in (await kube_api.get(CANARY, "test", "podinfo"))["metadata"].get(
            "annotations", {}
        )
        bearer = {"authorization": f"Bearer {TOKEN}"}
        accepted = await client.post("/canaries/test/podinfo/actions/promote", headers=bearer)
        assert accepted.status_code == 200, accepted.text
        missing = await client.post("/canaries/other/podinfo/actions/promote", headers=bearer)
        assert missing.status_code == 404
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert live["metadata"]["annotations"][OPERATION_ANNOTATION] == "promote"
