"""More of the operator's lifecycle against the emulated API server, for the strategies and targets
``test_lifecycle`` does not drive: blue/green without mirroring, a weighted canary that mirrors first, session
affinity, a DaemonSet target, an HPA-scaled target and provider ``kubernetes`` (Services only).

Each run is watched (``History``), so the assertions are on every version of the VirtualService, Services and
workloads a user running ``kubectl get -w`` would have seen, not only on where the run ended."""

from __future__ import annotations

import re
from typing import Any

from canaryflow.kube.client import (
    CANARY,
    DAEMONSET,
    DEPLOYMENT,
    DESTINATION_RULE,
    HPA,
    SERVICE,
    VIRTUAL_SERVICE,
)
from tests.kube import lifecycle_support as s

Json = dict[str, Any]
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"
PRIMARY_ONLY = [{"podinfo-primary": 100, "podinfo-canary": 0}]
SCALE_TO_ZERO = {"flagger.app/scale-to-zero": "true"}


# -- helpers ----------------------------------------------------------------------------------------------------
def _blue_green(**analysis: Any) -> Json:
    canary = s.canary_doc(**analysis)
    for key in ("maxWeight", "stepWeight"):
        canary["spec"]["analysis"].pop(key)
    return canary


def _weights(vs: Json) -> list[dict[str, int]]:
    return [{d["destination"]["host"]: d.get("weight", 100) for d in r["route"]} for r in vs["spec"]["http"]]


def _image(workload: Json) -> str:
    image: str = workload["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def _clean(obj: Json) -> Json:
    """The object as a user would apply it: without the fields the API server adds."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def _phase(canary: Json) -> str | None:
    phase: str | None = (canary.get("status") or {}).get("phase")
    return phase


def _in_order(seen: list[str], expected: list[str]) -> None:
    """Each expected event message was recorded, in this order (others may come between)."""
    at = 0
    for message in expected:
        assert message in seen[at:], f"missing event {message!r} after {seen[at - 1]!r}; got {seen}"
        at = seen.index(message, at) + 1


async def _run_to_success(api: Any, url: str, kind: Any = DEPLOYMENT) -> Json:
    """Initialize, release NEW_IMAGE in the target (a ``kind``), and return the Canary once it has succeeded."""
    async with s.operator(url):
        await s.reaches(api, "Initialized")
        await s.set_image(api, kind, NEW_IMAGE)
        await s.reaches(api, "Progressing")
        return await s.reaches(api, "Succeeded")


# -- blue/green without mirroring -------------------------------------------------------------------------------
async def test_blue_green_tests_the_canary_apart_then_switches_all_traffic_at_once(
    kube_emulator: Any, kube_api: Any
) -> None:
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, _blue_green(iterations=3))
    async with (
        s.History(kube_api, VIRTUAL_SERVICE, "test") as routing,
        s.History(kube_api, CANARY, "test") as canaries,
        s.Rollouts(kube_api, "test"),
    ):
        canary = await _run_to_success(kube_api, kube_emulator.url)
    versions = routing.of("podinfo")
    # Users stay on the primary through the iterations (no mirror, no weight to the canary), then the switch
    # to the canary while the primary rolls out the new revision, then back to the promoted primary.
    assert [_weights(vs) for vs in versions] == [
        PRIMARY_ONLY,
        [{"podinfo-primary": 0, "podinfo-canary": 100}],
        PRIMARY_ONLY,
    ]
    for vs in versions:
        assert all("mirror" not in route for route in vs["spec"]["http"]), "blue/green without mirror mirrored"
        s.validate(_clean(vs))
    phases = canaries.changes("podinfo", _phase)
    assert phases[phases.index("Progressing") :] == ["Progressing", "Promoting", "Finalising", "Succeeded"]
    assert (canary["status"]["canaryWeight"], canary["status"]["iterations"]) == (0, 0)
    s.validate_canary_status(canary["status"])
    _in_order(
        await s.messages(kube_api),
        [
            "New revision detected! Scaling up podinfo.test",
            "Starting canary analysis for podinfo.test",
            "Advance podinfo.test canary iteration 1/3",
            "Advance podinfo.test canary iteration 2/3",
            "Advance podinfo.test canary iteration 3/3",
            "Routing all traffic to canary",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Routing all traffic to primary",
            "Promotion completed! Scaling down podinfo.test",
        ],
    )
    primary = await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")
    assert _image(primary) == NEW_IMAGE
    assert (await kube_api.get(DEPLOYMENT, "test", "podinfo"))["spec"]["replicas"] == 0


# -- a weighted canary that mirrors first -----------------------------------------------------------------------
async def test_a_mirrored_canary_mirrors_one_step_then_shifts_weight(kube_emulator: Any, kube_api: Any) -> None:
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, s.canary_doc(mirror=True, mirrorWeight=50))
    async with s.History(kube_api, VIRTUAL_SERVICE, "test") as routing, s.Rollouts(kube_api, "test"):
        await _run_to_success(kube_api, kube_emulator.url)
    versions = routing.of("podinfo")
    shapes = [(_weights(vs), vs["spec"]["http"][0].get("mirror"), vs["spec"]["http"][0].get("mirrorPercentage"))
              for vs in versions]  # fmt: skip
    mirrored = ({"host": "podinfo-canary"}, {"value": 50})
    assert shapes == [
        (PRIMARY_ONLY, None, None),
        (PRIMARY_ONLY, *mirrored),  # half the requests copied to the canary; users get the primary's answers
        ([{"podinfo-primary": 90, "podinfo-canary": 10}], None, None),
        ([{"podinfo-primary": 80, "podinfo-canary": 20}], None, None),
        ([{"podinfo-primary": 70, "podinfo-canary": 30}], None, None),
        (PRIMARY_ONLY, None, None),
    ]
    for vs in versions:
        s.validate(_clean(vs))
    _in_order(
        await s.messages(kube_api),
        [
            "Starting canary analysis for podinfo.test",
            "Advance podinfo.test canary weight 0",
            "Advance podinfo.test canary weight 10",
            "Advance podinfo.test canary weight 30",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Promotion completed! Scaling down podinfo.test",
        ],
    )
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) == NEW_IMAGE


# -- session affinity -------------------------------------------------------------------------------------------
async def test_session_affinity_keeps_a_visitor_on_the_canary_then_expires_the_cookie(
    kube_emulator: Any, kube_api: Any
) -> None:
    affinity = {"cookieName": "flagger-cookie", "maxAge": 21600}
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, s.canary_doc(sessionAffinity=affinity))
    async with s.History(kube_api, VIRTUAL_SERVICE, "test") as routing, s.Rollouts(kube_api, "test"):
        await _run_to_success(kube_api, kube_emulator.url)
    versions = routing.of("podinfo")
    for vs in versions:
        s.validate(_clean(vs))
    assert _weights(versions[0]) == PRIMARY_ONLY and len(versions[0]["spec"]["http"]) == 1
    during = [vs for vs in versions if _weights(vs)[-1]["podinfo-canary"] > 0]
    assert [_weights(vs)[-1]["podinfo-canary"] for vs in during] == [10, 20, 30]
    cookies = set()
    for vs in during:
        sticky, weighted = vs["spec"]["http"]
        # The canary's answers hand out the cookie; a request carrying it goes to the canary whatever the weights.
        [set_cookie] = [
            d["headers"]["response"]["add"]["Set-Cookie"]
            for d in weighted["route"]
            if d["destination"]["host"] == "podinfo-canary"
        ]
        cookie, _, attributes = set_cookie.partition("; ")
        assert re.fullmatch(r"flagger-cookie=[A-Za-z]{10}", cookie) and attributes == "Max-Age=21600"
        assert not any("headers" in d for d in weighted["route"] if d["destination"]["host"] == "podinfo-primary")
        assert _weights({"spec": {"http": [sticky]}}) == [{"podinfo-primary": 0, "podinfo-canary": 100}]
        [match] = sticky["match"]
        regex = match["headers"]["Cookie"]["regex"]
        assert re.fullmatch(regex, f"theme=dark; {cookie}"), "the sticky route misses a visitor with the cookie"
        assert not re.fullmatch(regex, "theme=dark; flagger-cookie=someoneelse")
        cookies.add(cookie)
    assert len(cookies) == 1, f"the cookie changed between steps: {cookies}"
    # Promoted: everyone is back on the primary, and a visitor still holding the canary's cookie gets it expired.
    expiring, weighted = versions[-1]["spec"]["http"]
    assert _weights({"spec": {"http": [weighted]}}) == PRIMARY_ONLY and "match" not in weighted
    assert expiring["headers"]["response"]["add"]["Set-Cookie"] == f"{cookies.pop()}; Max-Age=-1"
    assert re.fullmatch(expiring["match"][0]["headers"]["Cookie"]["regex"], f"theme=dark; {cookie}")
    assert _weights({"spec": {"http": [expiring]}}) == PRIMARY_ONLY


async def test_a_primary_cookie_keeps_a_visitor_on_the_primary_during_the_analysis(
    kube_emulator: Any, kube_api: Any
) -> None:
    affinity = {"cookieName": "canary-cookie", "primaryCookieName": "primary-cookie"}
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, s.canary_doc(maxWeight=20, sessionAffinity=affinity))
    async with s.History(kube_api, VIRTUAL_SERVICE, "test") as routing, s.Rollouts(kube_api, "test"):
        await _run_to_success(kube_api, kube_emulator.url)
    versions = routing.of("podinfo")
    during = [vs for vs in versions if _weights(vs)[-1]["podinfo-canary"] > 0]
    assert [_weights(vs)[-1] for vs in during] == [
        {"podinfo-primary": 90, "podinfo-canary": 10},
        {"podinfo-primary": 80, "podinfo-canary": 20},
    ]
    for vs in during:
        s.validate(_clean(vs))
        to_canary, to_primary, weighted = vs["spec"]["http"]
        handed_out = {d["destination"]["host"]: d["headers"]["response"]["add"]["Set-Cookie"].split("; ")[0]
                      for d in weighted["route"]}  # fmt: skip
        canary_cookie, primary_cookie = handed_out["podinfo-canary"], handed_out["podinfo-primary"]
        assert canary_cookie.startswith("canary-cookie=") and primary_cookie.startswith("primary-cookie=")
        # A visitor first answered by the primary stays there while the weights move; one answered by the
        # canary stays on the canary.
        sticky = (
            (to_canary, canary_cookie, {"podinfo-primary": 0, "podinfo-canary": 100}),
            (to_primary, primary_cookie, {"podinfo-primary": 100, "podinfo-canary": 0}),
        )
        for route, cookie, weights in sticky:
            assert _weights({"spec": {"http": [route]}}) == [weights]
            regex = route["match"][0]["headers"]["Cookie"]["regex"]
            assert re.fullmatch(regex, f"a=b; {cookie}")
            other = canary_cookie if cookie == primary_cookie else primary_cookie
            assert not re.fullmatch(regex, f"a=b; {other}"), "one cookie routes both ways"
    # Promoted: nobody is held on either side any more; only the canary's cookie is expired.
    routes = versions[-1]["spec"]["http"]
    assert [_weights({"spec": {"http": [r]}}) for r in routes] == [PRIMARY_ONLY, PRIMARY_ONLY]
    assert routes[0]["headers"]["response"]["add"]["Set-Cookie"].startswith("canary-cookie=")
    assert not any("headers" in d for d in routes[1]["route"]), "the promoted primary still hands out cookies"


# -- a DaemonSet target -----------------------------------------------------------------------------------------
async def test_a_daemonset_is_canaried_by_moving_it_off_and_back_onto_the_nodes(
    kube_emulator: Any, kube_api: Any
) -> None:
    canary = s.canary_doc()
    canary["spec"]["targetRef"]["kind"] = "DaemonSet"
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DAEMONSET, s.daemonset_doc())
    await kube_api.create(CANARY, canary)
    async with (
        s.History(kube_api, DAEMONSET, "test") as daemonsets,
        s.History(kube_api, VIRTUAL_SERVICE, "test") as routing,
        s.DaemonSetRollouts(kube_api, "test", nodes=3),
    ):
        await _run_to_success(kube_api, kube_emulator.url, DAEMONSET)
    # The target leaves every node once the primary serves, comes back for the analysis, leaves again.
    # (An empty node selector reads as none: the API server omits an empty map, the emulator keeps it.)
    node_selectors = daemonsets.changes("podinfo", lambda d: d["spec"]["template"]["spec"].get("nodeSelector") or None)
    assert node_selectors == [None, SCALE_TO_ZERO, None, SCALE_TO_ZERO]
    primary = await kube_api.get(DAEMONSET, "test", "podinfo-primary")
    assert _image(primary) == NEW_IMAGE
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    assert "nodeSelector" not in primary["spec"]["template"]["spec"], "the primary was kept off the nodes"
    assert daemonsets.changes("podinfo-primary", _image) == ["ghcr.io/stefanprodan/podinfo:6.0.0", NEW_IMAGE]
    s.validate(_clean(primary))
    assert [_weights(vs)[0]["podinfo-canary"] for vs in routing.of("podinfo")] == [0, 10, 20, 30, 0]
    _in_order(
        await s.messages(kube_api),
        [
            "Initialization done! podinfo.test",
            "New revision detected! Scaling up podinfo.test",
            "Advance podinfo.test canary weight 30",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Promotion completed! Scaling down podinfo.test",
        ],
    )


# -- an HPA-scaled target ---------------------------------------------------------------------------------------
async def test_an_autoscaled_target_gets_a_primary_hpa_that_owns_the_primarys_scale(
    kube_emulator: Any, kube_api: Any
) -> None:
    canary = s.canary_doc(
        spec={"autoscalerRef": {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
                                "name": "podinfo"}}
    )  # fmt: skip
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc(replicas=1))
    await kube_api.create(HPA, s.hpa_doc(minimum=2, maximum=4))
    await kube_api.create(CANARY, canary)
    async with (
        s.History(kube_api, DEPLOYMENT, "test") as deployments,
        s.Rollouts(kube_api, "test"),
        s.operator(kube_emulator.url),
    ):
        await s.reaches(kube_api, "Initialized")
        primary_hpa = await kube_api.get(HPA, "test", "podinfo-primary")
        assert primary_hpa is not None, "no primary HPA after initialization"
        # The HPA controller scales the primary up under load; then the user raises the HPA's ceiling.
        await kube_api.patch(DEPLOYMENT, "test", "podinfo-primary", {"spec": {"replicas": 3}})
        await kube_api.patch(HPA, "test", "podinfo", {"spec": {"maxReplicas": 6}})

        async def follows() -> Json | None:
            live = await kube_api.get(HPA, "test", "podinfo-primary")
            return live if live["spec"]["maxReplicas"] == 6 else None

        followed = await s.until(follows, "the primary HPA to take the target HPA's new maxReplicas")
        await s.bump_image(kube_api, NEW_IMAGE)
        await s.reaches(kube_api, "Succeeded")
    assert primary_hpa["apiVersion"] == "autoscaling/v2"
    assert primary_hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": "podinfo-primary"}  # fmt: skip
    target_hpa = s.hpa_doc()["spec"]
    assert (primary_hpa["spec"]["minReplicas"], primary_hpa["spec"]["maxReplicas"]) == (2, 4)
    assert primary_hpa["spec"]["metrics"] == target_hpa["metrics"]
    assert followed["spec"]["minReplicas"] == 2 and followed["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    s.validate(_clean(followed))
    # The canary is scaled up to the HPA's minimum for the analysis (it was at zero), and back to zero.
    assert deployments.changes("podinfo", lambda d: d["spec"]["replicas"]) == [1, 0, 2, 0]
    # Promotion copies the new template but leaves the primary's scale to its autoscaler.
    primary = await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")
    assert _image(primary) == NEW_IMAGE
    assert primary["spec"]["replicas"] == 3, "promotion overwrote the replicas the HPA controller set"
    # The primary HPA belongs to the Canary (it goes with it); the user's HPA still scales the user's Deployment.
    assert [(o["kind"], o["name"]) for o in followed["metadata"]["ownerReferences"]] == [("Canary", "podinfo")]
    assert (await kube_api.get(HPA, "test", "podinfo"))["spec"]["scaleTargetRef"]["name"] == "podinfo"


# -- provider kubernetes: Services only -------------------------------------------------------------------------
async def test_provider_kubernetes_blue_green_switches_the_apex_service(kube_emulator: Any, kube_api: Any) -> None:
    canary = _blue_green(iterations=2)
    canary["spec"]["provider"] = "kubernetes"
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, canary)
    async with s.History(kube_api, SERVICE, "test") as services, s.Rollouts(kube_api, "test"):
        await _run_to_success(kube_api, kube_emulator.url)
    selectors = services.changes("podinfo", lambda svc: svc["spec"]["selector"])
    # The apex serves the primary, then the tested canary while the primary rolls out, then the primary again.
    assert selectors == [{"app": "podinfo-primary"}, {"app": "podinfo"}, {"app": "podinfo-primary"}]
    assert services.changes("podinfo-canary", lambda svc: svc["spec"]["selector"]) == [{"app": "podinfo"}]
    assert services.changes("podinfo-primary", lambda svc: svc["spec"]["selector"]) == [{"app": "podinfo-primary"}]
    for name in ("podinfo", "podinfo-canary", "podinfo-primary"):
        s.validate(_clean(services.of(name)[-1]))
        assert services.of(name)[-1]["spec"]["ports"][0]["port"] == 9898
    assert await kube_api.list(VIRTUAL_SERVICE, "test") == [], "provider kubernetes wrote a VirtualService"
    assert await kube_api.list(DESTINATION_RULE, "test") == []
    _in_order(
        await s.messages(kube_api),
        [
            "Advance podinfo.test canary iteration 2/2",
            "Routing all traffic to canary",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Routing all traffic to primary",
            "Promotion completed! Scaling down podinfo.test",
        ],
    )
    assert _image(await kube_api.get(DEPLOYMENT, "test", "podinfo-primary")) == NEW_IMAGE


async def test_provider_kubernetes_with_weights_is_refused_before_anything_is_created(
    kube_emulator: Any, kube_api: Any
) -> None:
    """Services alone cannot split traffic 90/10: Flagger would run such a canary and shift nothing; canaryflow
    refuses the spec, says why and how out, and creates nothing for it."""
    canary = s.canary_doc()  # a progressive canary: 10 %, 20 %, 30 % ...
    canary["spec"]["provider"] = "kubernetes"
    await s.ensure_namespace(kube_api, "test")
    await kube_api.create(DEPLOYMENT, s.deployment_doc())
    await kube_api.create(CANARY, canary)

    async def refused() -> str | None:
        obj = await kube_api.get(CANARY, "test", "podinfo")
        message = ((obj.get("status") or {}).get("conditions") or [{}])[0].get("message", "")
        return message if "provider kubernetes" in message else None

    async with s.operator(kube_emulator.url):
        message = await s.until(refused, "the Canary's status to say why it is refused")
    assert message.startswith("invalid Canary, not driven until fixed: spec.analysis"), message
    assert "cannot honour stepWeight" in message and "istio" in message, f"no way out named: {message}"
    assert any("provider kubernetes" in m for m in await s.messages(kube_api)), "no event says why"
    assert await kube_api.get(DEPLOYMENT, "test", "podinfo-primary") is None
    assert await kube_api.get(SERVICE, "test", "podinfo") is None
