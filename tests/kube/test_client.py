"""``KubeApi`` against the emulator over real HTTP: every method, errors, retries, watches, config loading."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.clock.backoff import Backoff
from canaryflow.kube.client import (
    CANARY,
    CONFIGMAP,
    DEPLOYMENT,
    NAMESPACE,
    ApiError,
    ConfigError,
    Conflict,
    Invalid,
    Kind,
    KubeApi,
    NotFound,
    Retry,
    WatchEvent,
)
from tests.clocks import InstantClock
from tests.kube.emulator import RunningEmulator
from tests.polling import until

Json = dict[str, Any]
CANARIES = "/apis/flagger.app/v1beta1/namespaces/ns/canaries"


def canary(name: str = "podinfo", **labels: str) -> Json:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {"stepWeight": 10}}


# --- the methods -------------------------------------------------------------------------------------------------


async def test_get_create_list_replace_and_delete(kube_api: KubeApi) -> None:
    assert await kube_api.get(CANARY, "ns", "podinfo") is None
    created = await kube_api.create(CANARY, canary(app="web"))
    await kube_api.create(CANARY, canary("other", app="db"))
    assert (created["apiVersion"], created["kind"]) == ("flagger.app/v1beta1", "Canary")
    assert [c["metadata"]["name"] for c in await kube_api.list(CANARY, "ns", labels="app=web")] == ["podinfo"]
    listed = await kube_api.list(CANARY)
    assert {(c["kind"], c["metadata"]["name"]) for c in listed} == {("Canary", "podinfo"), ("Canary", "other")}
    replaced = await kube_api.replace(CANARY, {**created, "spec": {"stepWeight": 20}})
    assert replaced["spec"] == {"stepWeight": 20}
    assert (await kube_api.get(CANARY, "ns", "podinfo") or {})["spec"] == {"stepWeight": 20}
    assert await kube_api.delete(CANARY, "ns", "podinfo") is True
    assert await kube_api.delete(CANARY, "ns", "podinfo") is False
    assert await kube_api.get(CANARY, "ns", "podinfo") is None


async def test_conflicts_and_invalid_requests_raise_typed_errors(kube_api: KubeApi) -> None:
    created = await kube_api.create(CANARY, canary())
    with pytest.raises(Conflict) as already:
        await kube_api.create(CANARY, canary())
    assert already.value.reason == "AlreadyExists"
    await kube_api.patch(CANARY, "ns", "podinfo", {"spec": {"stepWeight": 5}})
    with pytest.raises(Conflict, match=r"PUT /apis/flagger.app/v1beta1/namespaces/ns/canaries/podinfo: .*modified"):
        await kube_api.replace(CANARY, created)
    with pytest.raises(Invalid):
        await kube_api.patch(
            CANARY, "ns", "podinfo", [{"op": "test", "path": "/spec/stepWeight", "value": 1}], type="json"
        )
    with pytest.raises(NotFound):
        await kube_api.patch(CANARY, "ns", "missing", {"spec": {}})


async def test_replace_status_writes_only_the_status(kube_api: KubeApi) -> None:
    created = await kube_api.create(CANARY, canary())
    written = await kube_api.replace_status(CANARY, {**created, "spec": {}, "status": {"phase": "Initialized"}})
    assert written["status"] == {"phase": "Initialized"} and written["spec"] == {"stepWeight": 10}
    patched = await kube_api.patch_status(CANARY, "ns", "podinfo", {"status": {"canaryWeight": 10}})
    assert patched["status"] == {"phase": "Initialized", "canaryWeight": 10}
    assert written["metadata"]["generation"] == patched["metadata"]["generation"] == 1


async def test_patch_types(kube_api: KubeApi) -> None:
    containers = [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]
    deployment = {
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }
    await kube_api.create(DEPLOYMENT, deployment)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}
    strategic = await kube_api.patch(DEPLOYMENT, "ns", "d", patch, type="strategic")
    assert [c["image"] for c in strategic["spec"]["template"]["spec"]["containers"]] == ["a:2", "s:1"]
    merged = await kube_api.patch(DEPLOYMENT, "ns", "d", patch)  # a merge patch replaces the list
    assert [c["image"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["a:2"]
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "a:3"}]
    assert (await kube_api.patch(DEPLOYMENT, "ns", "d", ops, type="json"))["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == "a:3"


async def test_apply_is_a_server_side_apply_by_canaryflow(kube_emulator: RunningEmulator, kube_api: KubeApi) -> None:
    applied = await kube_api.apply(CANARY, canary())
    [entry] = applied["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("canaryflow", "Apply")
    [request] = [r for r in kube_emulator.requests if r.method == "PATCH"]
    assert request.content_type == "application/apply-patch+yaml"
    assert request.query == {"fieldManager": "canaryflow", "force": "true"}
    assert request.body["apiVersion"] == "flagger.app/v1beta1" and request.body["kind"] == "Canary"
    dry = await kube_api.apply(CANARY, {**canary(), "spec": {"stepWeight": 50}}, dry_run=True)
    assert dry["spec"] == {"stepWeight": 50}
    assert (await kube_api.get(CANARY, "ns", "podinfo") or {})["spec"] == {"stepWeight": 10}


async def test_apply_without_force_reports_conflicts(kube_api: KubeApi) -> None:
    await kube_api.apply(CANARY, canary(), manager="flux")
    with pytest.raises(Conflict, match='conflict with "flux"'):
        await kube_api.apply(CANARY, {**canary(), "spec": {"stepWeight": 1}}, force=False)


async def test_cluster_scoped_kinds_and_address_mistakes(kube_api: KubeApi) -> None:
    await kube_api.create(NAMESPACE, {"metadata": {"name": "ns"}})
    assert [n["metadata"]["name"] for n in await kube_api.list(NAMESPACE)] == ["ns"]
    with pytest.raises(ValueError, match="cluster-scoped"):
        NAMESPACE.path("ns", "x")
    assert NAMESPACE.path("", "x") == "/api/v1/namespaces/x"  # "" is no namespace, as in Flux inventories
    with pytest.raises(ValueError, match="needs a namespace"):
        CANARY.path(None, "x")
    with pytest.raises(ValueError, match=r"metadata\.namespace is required"):
        await kube_api.create(CONFIGMAP, {"metadata": {"name": "c"}})


async def test_discover_finds_served_kinds_and_caches_them(kube_emulator: RunningEmulator, kube_api: KubeApi) -> None:
    assert await kube_api.discover("flagger.app/v1beta1", "Canary") == CANARY
    peering = await kube_api.discover("kopf.dev/v1", "ClusterKopfPeering")
    assert peering == Kind("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False)
    assert await kube_api.discover("v1", "ConfigMap") == CONFIGMAP
    before = len(kube_emulator.requests)
    assert await kube_api.discover("flagger.app/v1beta1", "MetricTemplate") is not None
    assert len(kube_emulator.requests) == before  # the group version was read once
    with pytest.raises(NotFound, match="serves no kind Nope"):
        await kube_api.discover("flagger.app/v1beta1", "Nope")
    with pytest.raises(NotFound, match="not served"):
        await kube_api.discover("example.com/v1", "Thing")


# --- retries -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_retried_with_capped_backoff(
    kube_emulator: RunningEmulator, status: int
) -> None:
    sleeps = InstantClock()
    api = KubeApi.for_url(kube_emulator.url, retry=Retry(attempts=5, backoff=Backoff(0.5, 1.5)), clock=sleeps)
    kube_emulator.fail_next("POST", CANARIES, status, times=3)
    try:
        created = await api.create(CANARY, canary())
    finally:
        await api.close()
    assert created["metadata"]["name"] == "podinfo"
    assert len([r for r in kube_emulator.requests if r.method == "POST"]) == 4
    # 429 carries Retry-After: 1 (capped); otherwise 0.5 * 2**n, capped at 1.5
    assert sleeps.waits == ([1.0, 1.0, 1.0] if status == 429 else [0.5, 1.0, 1.5])


async def test_retries_give_up_after_the_attempts(kube_emulator: RunningEmulator) -> None:
    api = KubeApi.for_url(kube_emulator.url, retry=Retry(attempts=3, backoff=Backoff(0.1, 1)), clock=InstantClock())
    kube_emulator.fail_next("GET", CANARIES, 500, times=5)
    try:
        with pytest.raises(ApiError) as failed:
            await api.list(CANARY, "ns")
    finally:
        await api.close()
    assert failed.value.status == 500 and "injected failure" in failed.value.message
    assert len([r for r in kube_emulator.requests if r.method == "GET"]) == 3


async def test_conflicts_are_not_retried(kube_emulator: RunningEmulator) -> None:
    sleeps = InstantClock()
    api = KubeApi.for_url(kube_emulator.url, clock=sleeps)
    kube_emulator.fail_next("POST", CANARIES, 409)
    try:
        with pytest.raises(Conflict):
            await api.create(CANARY, canary())
    finally:
        await api.close()
    assert sleeps.waits == [] and len([r for r in kube_emulator.requests if r.method == "POST"]) == 1


async def test_dropped_connections_are_retried(kube_emulator: RunningEmulator) -> None:
    sleeps = InstantClock()
    kube_emulator.fail_next("GET", CANARIES, 0, times=2)
    async with KubeApi.for_url(
        kube_emulator.url, retry=Retry(attempts=3, backoff=Backoff(0.1, 1)), clock=sleeps
    ) as api:
        assert await api.list(CANARY, "ns") == []
    assert len([r for r in kube_emulator.requests if r.method == "GET"]) == 3
    # aiohttp itself retries an idempotent request once when a kept-alive connection drops; ours do the rest
    assert sleeps.waits[:1] == [0.1]


async def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    sleeps = InstantClock()
    api = KubeApi.for_url(f"http://127.0.0.1:{port}", retry=Retry(attempts=3, backoff=Backoff(0.2, 5)), clock=sleeps)
    try:
        with pytest.raises(ApiError) as failed:
            await api.get(CANARY, "ns", "podinfo")
    finally:
        await api.close()
    assert failed.value.status == 0 and failed.value.reason == "ConnectionError"
    assert sleeps.waits == [0.2, 0.4]


# --- watch -------------------------------------------------------------------------------------------------------


async def _collect(events: AsyncIterator[WatchEvent], into: list[tuple[str, str]]) -> None:
    async for event in events:
        into.append((event.type, event.object["metadata"]["name"]))


async def test_watch_lists_then_streams_changes(kube_api: KubeApi) -> None:
    await kube_api.create(CANARY, canary("a", app="web"))
    events: list[tuple[str, str]] = []
    task = asyncio.create_task(_collect(kube_api.watch(CANARY, "ns", labels="app=web"), events))
    try:
        await until(lambda: events == [("ADDED", "a")], "the initial list")
        await kube_api.create(CANARY, canary("ignored", app="db"))
        await kube_api.create(CANARY, canary("b", app="web"))
        await kube_api.patch(CANARY, "ns", "a", {"spec": {"stepWeight": 1}})
        await kube_api.delete(CANARY, "ns", "b")
        await until(lambda: len(events) == 4, "four events")
        assert events == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    finally:
        task.cancel()


async def test_watch_resumes_after_a_broken_stream_without_repeating_events(
    kube_emulator: RunningEmulator, kube_api: KubeApi
) -> None:
    events: list[tuple[str, str]] = []
    task = asyncio.create_task(_collect(kube_api.watch(CANARY, "ns"), events))
    try:
        await kube_api.create(CANARY, canary("a"))
        await until(lambda: events == [("ADDED", "a")], "the first event")
        kube_emulator.break_watches()
        await kube_api.create(CANARY, canary("b"))
        await until(lambda: len(events) == 2, "the event after the break")
        assert events == [("ADDED", "a"), ("ADDED", "b")]
        watches = [r.query for r in kube_emulator.requests if r.query.get("watch") == "true"]
        assert len(watches) >= 2 and int(watches[-1]["resourceVersion"]) >= int(watches[0]["resourceVersion"])
        lists = [r for r in kube_emulator.requests if r.method == "GET" and "watch" not in r.query]
        assert len(lists) == 1  # resumed from the last version, not relisted
    finally:
        task.cancel()


async def test_watch_resumes_from_the_bookmark_when_the_server_ends_the_stream(kube_emulator: RunningEmulator) -> None:
    api = KubeApi.for_url(kube_emulator.url, watch_timeout=1)
    events: list[tuple[str, str]] = []
    task = asyncio.create_task(_collect(api.watch(CANARY, "ns"), events))
    try:
        await until(lambda: _watches(kube_emulator), "the first watch")
        other = await api.create(CONFIGMAP, {"metadata": {"name": "c", "namespace": "ns"}})  # moves the cluster on
        await until(lambda: len(_watches(kube_emulator)) >= 2, "the watch to be renewed")
        await api.create(CANARY, canary("after"))
        await until(lambda: events == [("ADDED", "after")], "the event on the renewed watch")
        first, second = _watches(kube_emulator)[:2]
        assert first["timeoutSeconds"] == "1" and first["allowWatchBookmarks"] == "true"
        # the server's closing BOOKMARK carried the cluster's version: the next watch starts there, not earlier
        assert (
            int(first["resourceVersion"]) < int(second["resourceVersion"]) == int(other["metadata"]["resourceVersion"])
        )
    finally:
        task.cancel()
        await api.close()


def _watches(kube_emulator: RunningEmulator) -> list[dict[str, str]]:
    return [r.query for r in kube_emulator.requests if r.query.get("watch") == "true"]


async def test_watch_relists_on_410_gone_and_reports_only_what_changed(kube_emulator: RunningEmulator) -> None:
    sleeps = InstantClock(hold=True)
    api = KubeApi.for_url(kube_emulator.url, clock=sleeps)
    events: list[tuple[str, str]] = []
    try:
        for name in ("kept", "changed", "deleted"):
            await api.create(CANARY, canary(name))
        task = asyncio.create_task(_collect(api.watch(CANARY, "ns"), events))
        await until(lambda: len(events) == 3, "the initial list")
        kube_emulator.fail_next("GET", f"{CANARIES}?watch", 500)  # the reconnect fails: the client backs off...
        kube_emulator.break_watches()
        await asyncio.wait_for(sleeps.called.wait(), 5)
        await api.patch(CANARY, "ns", "changed", {"spec": {"stepWeight": 2}})  # ...while the world moves on
        await api.delete(CANARY, "ns", "deleted")
        await api.create(CANARY, canary("new"))
        kube_emulator.compact()
        sleeps.release()
        await until(lambda: len(events) == 6, "the changes after the relist")
        assert sorted(events[3:]) == [("ADDED", "new"), ("DELETED", "deleted"), ("MODIFIED", "changed")]
        assert len([r for r in kube_emulator.requests if r.method == "GET" and "watch" not in r.query]) == 2
        task.cancel()
    finally:
        await api.close()


# --- configuration -----------------------------------------------------------------------------------------------


async def test_connect_reads_kubeconfig_at_connect_time(
    kube_emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": kube_emulator.url}}],
        "users": [{"name": "tester", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))  # set after kubernetes_asyncio was imported
    api = await KubeApi.connect()
    try:
        await api.create(CANARY, canary())
    finally:
        await api.close()
    assert kube_emulator.requests[-1].path == CANARIES
    assert kube_emulator.requests[-1].headers["Authorization"] == "Bearer t0ken"


async def test_exec_plugin_tokens_are_renewed(
    kube_emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("one")
    plugin = tmp_path / "credential-plugin"
    credential = '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"%s"}}'
    plugin.write_text(f"#!/bin/sh\nprintf '{credential}' \"$(cat {token})\"\n")
    plugin.chmod(0o755)
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": kube_emulator.url}}],
        "users": [{"name": "plugin", "user": exec_user}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "plugin"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    api = await KubeApi.connect(credential_refresh=0)
    try:
        await api.get(CANARY, "ns", "podinfo")
        token.write_text("two")
        await api.get(CANARY, "ns", "podinfo")
    finally:
        await api.close()
    assert [r.headers["Authorization"] for r in kube_emulator.requests] == ["Bearer one", "Bearer two"]


async def test_connect_without_kubeconfig_or_cluster_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="not running in a cluster"):
        await KubeApi.connect()
