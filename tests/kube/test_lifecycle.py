"""The operator's whole lifecycle against the emulated API server: kopf, the real client, KubeWorkload and
KubeRouter, the engine and the scheduler on 0.1 s intervals. Deployments become ready through ``Rollouts``
(the Deployment controller's part); metric values come from a table the test sets."""

from __future__ import annotations

from typing import Any

from canaryflow.clock.backoff import Backoff
from canaryflow.kube.client import CANARY, DEPLOYMENT, DESTINATION_RULE, SERVICE, VIRTUAL_SERVICE, Retry
from canaryflow.kube.store import OPERATION_ANNOTATION
from tests.kube import lifecycle_support as s

NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"


async def _setup(api: Any, canary: dict[str, Any] | None = None, namespace: str = "test") -> None:
    await s.ensure_namespace(api, namespace)
    await api.create(DEPLOYMENT, s.deployment_doc(namespace=namespace))
    await api.create(CANARY, canary or s.canary_doc(namespace=namespace))


def _image(deployment: dict[str, Any]) -> str:
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def _weights(vs: dict[str, Any]) -> list[dict[str, int]]:
    return [{d["destination"]["host"]: d.get("weight", 100) for d in r["route"]} for r in vs["spec"]["http"]]


async def test_init_creates_the_primary_and_scales_the_target_to_zero(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        canary = await s.reaches(kube_api, "Initialized")
        target = await s.until(
            lambda: _scaled_to_zero(kube_api), "the target scaled to zero"
        )  # the engine scales it once the primary is ready
    status = canary["status"]
    [promoted] = status["conditions"]
    assert (promoted["type"], promoted["status"], promoted["reason"]) == ("Promoted", "True", "Initialized")
    assert promoted["message"] == "Deployment initialization completed."
    s.validate_canary_status(status)
    primary = await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")
    assert primary is not None and _image(primary) == _image(target)
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        service = await kube_api.get(SERVICE, "test", name)
        assert service is not None, f"Service {name} missing"
    vs = await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")
    assert vs is not None and _weights(vs) == [{"podinfo-primary": 100, "podinfo-canary": 0}]
    for obj in (primary, vs):
        s.validate(_clean(obj))
    assert "Initialization done! podinfo.test" in await s.messages(kube_api)


async def _scaled_to_zero(api: Any) -> dict[str, Any] | None:
    target = await api.get(DEPLOYMENT, "test", "podinfo")
    return target if target and target["spec"].get("replicas") == 0 else None


async def test_a_new_revision_is_analysed_step_by_step_and_promoted(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")
        await s.bump_image(kube_api, NEW_IMAGE)
        await s.reaches(kube_api, "Progressing")
        canary = await s.reaches(kube_api, "Succeeded")
    assert canary["status"]["conditions"][0]["status"] == "True"
    s.validate_canary_status(canary["status"])
    primary = await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")
    assert _image(primary) == NEW_IMAGE
    target = await kube_api.get(DEPLOYMENT, "test", "podinfo")
    assert target["spec"]["replicas"] == 0
    vs = await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")
    assert _weights(vs) == [{"podinfo-primary": 100, "podinfo-canary": 0}]
    for kind in (DEPLOYMENT, SERVICE, VIRTUAL_SERVICE, DESTINATION_RULE):
        for obj in await kube_api.list(kind, "test"):
            s.validate(_clean(obj))  # everything the operator wrote, as the API server's schemas see it
    seen = await s.messages(kube_api)
    for expected in ("New revision detected! Scaling up podinfo.test", "Advance podinfo.test canary weight 10",
                     "Advance podinfo.test canary weight 20", "Advance podinfo.test canary weight 30",
                     "Copying podinfo.test template spec to podinfo-primary.test",
                     "Promotion completed! Scaling down podinfo.test"):  # fmt: skip
        assert expected in seen, f"missing event {expected!r}; got {seen}"


async def test_failed_checks_roll_the_canary_back(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    metrics = s.FixedMetrics()
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url, metrics=metrics):
        await s.reaches(kube_api, "Initialized")
        metrics.values["request-success-rate"] = 80.0
        await s.bump_image(kube_api, NEW_IMAGE)
        canary = await s.reaches(kube_api, "Failed")
    [promoted] = canary["status"]["conditions"]
    assert (promoted["status"], promoted["reason"]) == ("False", "Failed")
    assert "failed checks threshold reached 2" in promoted["message"]
    s.validate_canary_status(canary["status"])
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) != NEW_IMAGE
    assert (await kube_api.get(DEPLOYMENT, "test", "podinfo"))["spec"]["replicas"] == 0
    vs = await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")
    assert _weights(vs) == [{"podinfo-primary": 100, "podinfo-canary": 0}]
    assert "Canary failed! Scaling down podinfo.test" in await s.messages(kube_api)


async def test_a_bad_release_is_rolled_back_while_the_api_server_refuses_events(
    kube_emulator: Any, kube_api: Any
) -> None:
    await _setup(kube_api)
    metrics = s.FixedMetrics()
    quick = Retry(attempts=2, backoff=Backoff(0.01, 0.02))
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url, metrics=metrics, retry=quick) as runtime:
        await s.reaches(kube_api, "Initialized")
        metrics.values["request-success-rate"] = 80.0
        for method in ("POST", "PATCH"):  # an admission webhook or a quota refuses every Event from now on
            kube_emulator.fail_next(method, "/api/v1/namespaces/test/events", 500, times=10_000)
        await s.bump_image(kube_api, NEW_IMAGE)
        canary = await s.reaches(kube_api, "Failed")
        dropped = runtime.events.dropped
    assert "failed checks threshold reached 2" in canary["status"]["conditions"][0]["message"]
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) != NEW_IMAGE
    assert _weights(await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")) == [
        {"podinfo-primary": 100, "podinfo-canary": 0}
    ]
    assert "Canary failed! Scaling down podinfo.test" not in await s.messages(kube_api)
    assert dropped >= 3, "the refused events are counted (logged and dropped), not retried forever"


async def test_ab_testing_sends_matching_requests_to_the_canary(kube_emulator: Any, kube_api: Any) -> None:
    canary = s.canary_doc(iterations=30, match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    for key in ("maxWeight", "stepWeight"):
        canary["spec"]["analysis"].pop(key)
    await _setup(kube_api, canary)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")
        await s.bump_image(kube_api, NEW_IMAGE)

        async def ab_route() -> dict[str, Any] | None:
            vs = await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")
            return vs if vs and _weights(vs)[0].get("podinfo-canary") == 100 else None

        vs = await s.until(ab_route, "the A/B route")
        await kube_api.patch(
            CANARY, "test", "podinfo", {"metadata": {"annotations": {OPERATION_ANNOTATION: "promote"}}}
        )
        await s.reaches(kube_api, "Succeeded")
    matched, default = vs["spec"]["http"]
    assert matched["match"] == [{"headers": {"x-canary": {"exact": "insider"}}}]
    assert _weights(vs)[0] == {"podinfo-primary": 0, "podinfo-canary": 100}
    # Everyone else stays on the primary (Flagger writes the primary's weight there, 0, which Istio ignores for
    # a route with a single destination).
    assert "match" not in default and [d["destination"]["host"] for d in default["route"]] == ["podinfo-primary"]
    s.validate(_clean(vs))
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert OPERATION_ANNOTATION not in (live["metadata"].get("annotations") or {}), "a done operation is cleared"
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) == NEW_IMAGE


async def test_blue_green_with_mirroring_mirrors_then_promotes(kube_emulator: Any, kube_api: Any) -> None:
    canary = s.canary_doc(iterations=3, mirror=True)
    for key in ("maxWeight", "stepWeight"):
        canary["spec"]["analysis"].pop(key)
    await _setup(kube_api, canary)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")
        await s.bump_image(kube_api, NEW_IMAGE)

        async def mirrored() -> dict[str, Any] | None:
            vs = await kube_api.get(VIRTUAL_SERVICE, "test", "podinfo")
            return vs if vs and vs["spec"]["http"][0].get("mirror") else None

        vs = await s.until(mirrored, "the mirror route")
        await s.reaches(kube_api, "Succeeded")
    assert vs["spec"]["http"][0]["mirror"]["host"] == "podinfo-canary"
    assert _weights(vs) == [{"podinfo-primary": 100, "podinfo-canary": 0}], "mirroring serves from the primary"
    s.validate(_clean(vs))
    seen = await s.messages(kube_api)
    assert "Advance podinfo.test canary iteration 3/3" in seen
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) == NEW_IMAGE


async def test_a_restarted_operator_resumes_without_a_second_promotion(kube_emulator: Any, kube_api: Any) -> None:
    canary = s.canary_doc(maxWeight=50)
    await _setup(kube_api, canary)
    async with s.Rollouts(kube_api, "test"):
        async with s.operator(kube_emulator.url):
            await s.reaches(kube_api, "Initialized")
            await s.bump_image(kube_api, NEW_IMAGE)

            async def halfway() -> bool:
                obj = await kube_api.get(CANARY, "test", "podinfo")
                return (obj.get("status") or {}).get("canaryWeight", 0) >= 20

            await s.until(halfway, "weight 20")
        stopped_at = (await kube_api.get(CANARY, "test", "podinfo"))["status"]
        assert stopped_at["phase"] == "Progressing"
        async with s.operator(kube_emulator.url):
            await s.reaches(kube_api, "Succeeded")
    seen = await s.messages(kube_api)
    assert "Initialization done! podinfo.test" in seen
    assert await s.event_count(kube_api, "Initialization done! podinfo.test") == 1, "initialized twice"
    assert await s.event_count(kube_api, "Copying podinfo.test template spec to podinfo-primary.test") == 1
    assert await s.event_count(kube_api, "Advance podinfo.test canary weight 10") == 1, "restarted the analysis"
    assert "Advance podinfo.test canary weight 50" in seen


async def test_a_canary_without_target_is_reported_while_others_proceed(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    await kube_api.create(CANARY, s.canary_doc(name="orphan", target="missing"))
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")

        async def reported() -> dict[str, Any] | None:
            obj = await kube_api.get(CANARY, "test", "orphan")
            message = ((obj.get("status") or {}).get("conditions") or [{}])[0].get("message", "")
            return obj if "missing" in message else None

        orphan = await s.until(reported, "the orphan's status message")
    assert orphan["status"]["phase"] == "Initializing"
    assert any("missing" in m for m in await s.messages(kube_api, "orphan")), "no warning event about the target"


async def test_revert_on_deletion_gives_the_target_its_replicas_back(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api, s.canary_doc(spec={"revertOnDeletion": True}))
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")
        await s.until(lambda: _scaled_to_zero(kube_api), "the target scaled to zero")
        live = await kube_api.get(CANARY, "test", "podinfo")
        assert "canaryflow.dev/finalizer" in live["metadata"]["finalizers"]
        await kube_api.delete(CANARY, "test", "podinfo")

        async def gone() -> bool:
            return await kube_api.get(CANARY, "test", "podinfo") is None

        await s.until(gone, "the Canary to be deleted")
    target = await kube_api.get(DEPLOYMENT, "test", "podinfo")
    assert target["spec"]["replicas"] >= 1, "the target did not get its replicas back"


async def test_of_two_peered_operators_only_the_leader_drives(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    async with (
        s.Rollouts(kube_api, "test"),
        s.operator(kube_emulator.url, peering="canaryflow", priority=200) as leader,
    ):
        await s.reaches(kube_api, "Initialized")
        async with s.OperatorThread(kube_emulator.url, peering="canaryflow", priority=100) as follower:
            await s.bump_image(kube_api, NEW_IMAGE)
            await s.reaches(kube_api, "Succeeded")
            assert follower.scheduler.ticks == 0 and not follower.handlers.driving
        assert leader.scheduler.ticks > 0 and leader.handlers.driving == {"test/podinfo"}
    assert await s.event_count(kube_api, "Copying podinfo.test template spec to podinfo-primary.test") == 1


async def test_when_the_leader_leaves_the_follower_takes_over(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    replica = s.OperatorThread(kube_emulator.url, peering="canaryflow", priority=200)
    async with s.Rollouts(kube_api, "test"):
        leader = await replica.__aenter__()
        try:
            await s.reaches(kube_api, "Initialized")
            async with s.operator(kube_emulator.url, peering="canaryflow", priority=100) as follower:
                await s.until(lambda: _true(leader.scheduler.ticks >= 3), "the leader to tick")
                assert follower.scheduler.ticks == 0, "the follower drove while the leader was alive"
                await replica.__aexit__(None, None, None)
                await s.bump_image(kube_api, NEW_IMAGE)
                await s.reaches(kube_api, "Succeeded")
                assert follower.scheduler.ticks > 0 and follower.handlers.driving == {"test/podinfo"}
        finally:
            await replica.__aexit__(None, None, None)
    assert await s.event_count(kube_api, "Initialization done! podinfo.test") == 1, "the follower initialized again"


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a user would apply it: without the fields the API server adds."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields",)}
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


async def test_conflicts_and_server_errors_are_retried_and_promote_once(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    status_path = "/apis/flagger.app/v1beta1/namespaces/test/canaries/podinfo/status"
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url):
        await s.reaches(kube_api, "Initialized")
        # A user labels the Canary while ticks run (their write moves the resourceVersion on), the API server
        # refuses status writes now and then, and the target cannot be read for a moment.
        kube_emulator.fail_next("PUT", status_path, 409, times=2)
        kube_emulator.fail_next("PUT", status_path, 503, times=2)
        kube_emulator.fail_next("GET", "/apis/apps/v1/namespaces/test/deployments/podinfo", 500, times=3)
        await s.bump_image(kube_api, NEW_IMAGE)
        await kube_api.patch(CANARY, "test", "podinfo", {"metadata": {"labels": {"team": "checkout"}}})
        await s.reaches(kube_api, "Succeeded")
    assert await s.event_count(kube_api, "Copying podinfo.test template spec to podinfo-primary.test") == 1
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) == NEW_IMAGE
    assert (await kube_api.get(CANARY, "test", "podinfo"))["metadata"]["labels"] == {"team": "checkout"}


async def test_an_idle_canary_costs_no_writes(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url) as runtime:
        await s.reaches(kube_api, "Initialized")
        await s.until(lambda: _scaled_to_zero(kube_api), "the target scaled to zero")

        async def ticks(n: int) -> None:
            start = runtime.scheduler.ticks
            await s.until(lambda: _true(runtime.scheduler.ticks >= start + n), f"{n} ticks")

        await ticks(3)  # settled: the last status and event writes of initialization are done
        before = len(kube_emulator.requests)
        await ticks(10)
        writes = [r for r in kube_emulator.requests[before:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert [f"{r.method} {r.path}" for r in writes] == []


async def test_a_broken_watch_is_resumed(kube_emulator: Any, kube_api: Any) -> None:
    await _setup(kube_api)
    async with s.Rollouts(kube_api, "test"), s.operator(kube_emulator.url) as runtime:
        await s.reaches(kube_api, "Initialized")
        await s.until(lambda: _scaled_to_zero(kube_api), "the target scaled to zero")
        kube_emulator.break_watches()
        await kube_api.delete(CANARY, "test", "podinfo")

        async def released() -> bool:
            return not runtime.handlers.driving and await kube_api.get(CANARY, "test", "podinfo") is None

        await s.until(released, "the operator to see the deletion and let the Canary go")
    # Without revertOnDeletion the target is left as the canary left it (Flagger's behaviour).
    target = await kube_api.get(DEPLOYMENT, "test", "podinfo")
    assert target is not None and target["spec"]["replicas"] == 0


async def _true(value: bool) -> bool:
    return value
