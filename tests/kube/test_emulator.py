"""The emulator keeps the API server's documented semantics, checked over plain HTTP (no canaryflow client).

Each test names the kubernetes.io section it follows. The emulator runs in its own thread, so these tests use a
synchronous HTTP client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.kube.emulator import RealisticEmulator, RunningEmulator

Json = dict[str, Any]
PODS = "/api/v1/namespaces/ns/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/ns/deployments"
CANARIES = "/apis/flagger.app/v1beta1/namespaces/ns/canaries"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


@pytest.fixture
def http(kube_emulator: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kube_emulator.url, timeout=10) as client:
        yield client


def canary(name: str = "podinfo", **extra: Any) -> Json:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {"a": 1},
        **extra,
    }


def pod(name: str, labels: dict[str, str] | None = None) -> Json:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": {}}


def ok(response: httpx.Response, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    return body


def error(response: httpx.Response, status: int) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    assert body["kind"] == "Status" and body["code"] == status
    return body


# --- object metadata ---------------------------------------------------------------------------------------------


def test_the_server_sets_uid_resource_version_generation_and_creation_time(http: httpx.Client) -> None:
    # "Object Names and IDs" (uid), "API concepts" > Resource versions (one cluster-wide, opaque string that
    # changes on every write), "Object Meta" (generation starts at 1; creationTimestamp is RFC 3339).
    first = ok(http.post(CANARIES, json=canary("a")), 201)["metadata"]
    second = ok(http.post(PODS, json=pod("b")), 201)["metadata"]
    assert isinstance(first["resourceVersion"], str) and int(second["resourceVersion"]) > int(first["resourceVersion"])
    assert first["uid"] != second["uid"] and re.fullmatch(r"[0-9a-f-]{36}", first["uid"])
    assert first["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["creationTimestamp"])


def test_generation_counts_spec_changes_not_metadata_or_status(http: httpx.Client) -> None:
    # "Object Meta": generation is "a sequence number representing a specific generation of the desired state";
    # with the status subresource, status writes never change it ("Custom resources" > Status subresource).
    ok(http.post(CANARIES, json=canary()), 201)
    spec = ok(http.patch(f"{CANARIES}/podinfo", json={"spec": {"a": 2}}, headers=MERGE))["metadata"]
    labels = ok(http.patch(f"{CANARIES}/podinfo", json={"metadata": {"labels": {"x": "1"}}}, headers=MERGE))
    status = ok(http.patch(f"{CANARIES}/podinfo/status", json={"status": {"phase": "Progressing"}}, headers=MERGE))
    assert [spec["generation"], labels["metadata"]["generation"], status["metadata"]["generation"]] == [2, 2, 2]
    versions = [spec["resourceVersion"], labels["metadata"]["resourceVersion"], status["metadata"]["resourceVersion"]]
    assert len(set(versions)) == 3


def test_a_write_that_changes_nothing_keeps_the_resource_version(http: httpx.Client) -> None:
    # "API concepts" > Resource versions: the version changes when the object is written; the API server skips
    # updates that change nothing, so no version bump and no watch event.
    created = ok(http.post(CANARIES, json=canary()), 201)
    same = ok(http.patch(f"{CANARIES}/podinfo", json={"spec": {"a": 1}}, headers=MERGE))
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# --- concurrency control and errors ------------------------------------------------------------------------------


def test_a_stale_resource_version_is_409_for_put_and_for_a_patch_that_carries_one(http: httpx.Client) -> None:
    # "API concepts" > Resource versions / Conflicts (optimistic concurrency on metadata.resourceVersion).
    created = ok(http.post(CANARIES, json=canary()), 201)
    ok(http.patch(f"{CANARIES}/podinfo", json={"spec": {"a": 2}}, headers=MERGE))
    stale = {**created, "spec": {"a": 3}}
    assert error(http.put(f"{CANARIES}/podinfo", json=stale), 409)["reason"] == "Conflict"
    stale_patch = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"a": 4}}
    error(http.patch(f"{CANARIES}/podinfo", json=stale_patch, headers=MERGE), 409)
    assert ok(http.get(f"{CANARIES}/podinfo"))["spec"] == {"a": 2}


def test_creating_an_existing_name_is_409_already_exists(http: httpx.Client) -> None:
    # "API concepts" > Create: names are unique per kind and namespace; the Status reason is AlreadyExists.
    ok(http.post(CANARIES, json=canary()), 201)
    body = error(http.post(CANARIES, json=canary()), 409)
    assert body["reason"] == "AlreadyExists" and 'canaries.flagger.app "podinfo" already exists' in body["message"]


def test_a_failing_json_patch_test_is_422_and_changes_nothing(http: httpx.Client) -> None:
    # RFC 6902 section 5 (a failed "test" fails the whole patch), served by Kubernetes as 422 ("API concepts" >
    # Patch); kopf relies on it with a test of /metadata/resourceVersion.
    created = ok(http.post(CANARIES, json=canary()), 201)
    patch = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "999"},
        {"op": "replace", "path": "/spec/a", "value": 5},
    ]
    error(http.patch(f"{CANARIES}/podinfo", json=patch, headers=JSON_PATCH), 422)
    assert ok(http.get(f"{CANARIES}/podinfo"))["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    patch[0]["value"] = created["metadata"]["resourceVersion"]
    assert ok(http.patch(f"{CANARIES}/podinfo", json=patch, headers=JSON_PATCH))["spec"] == {"a": 5}


def test_put_replaces_the_object_but_keeps_what_the_server_owns(http: httpx.Client) -> None:
    # "API concepts" > Update (PUT replaces the whole object); uid and creationTimestamp are read-only.
    created = ok(http.post(CANARIES, json={**canary(), "metadata": {"name": "podinfo", "labels": {"a": "1"}}}), 201)
    body = {
        **canary(),
        "spec": {"b": 2},
        "metadata": {"name": "podinfo", "uid": "forged", "resourceVersion": created["metadata"]["resourceVersion"]},
    }
    replaced = ok(http.put(f"{CANARIES}/podinfo", json=body))
    assert replaced["spec"] == {"b": 2} and "labels" not in replaced["metadata"]
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_custom_resources_refuse_an_unconditional_put_built_ins_allow_it(http: httpx.Client) -> None:
    # "API concepts" > Resource versions: custom resources must name the version they update (422 otherwise);
    # most built-in kinds allow unconditional updates.
    ok(http.post(CANARIES, json=canary()), 201)
    assert "must be specified for an update" in error(http.put(f"{CANARIES}/podinfo", json=canary()), 422)["message"]
    ok(http.post(PODS, json=pod("p")), 201)
    assert ok(http.put(f"{PODS}/p", json=pod("p", {"x": "y"})))["metadata"]["labels"] == {"x": "y"}


def test_dry_run_answers_without_storing(http: httpx.Client) -> None:
    # "API concepts" > Dry-run: dryRun=All runs the request through the server's logic but persists nothing.
    dry = ok(http.post(CANARIES, json=canary(), params={"dryRun": "All"}), 201)
    assert dry["metadata"]["uid"] and "resourceVersion" not in dry["metadata"]
    error(http.get(f"{CANARIES}/podinfo"), 404)
    created = ok(http.post(CANARIES, json=canary()), 201)
    patched = ok(http.patch(f"{CANARIES}/podinfo", json={"spec": {"a": 9}}, headers=MERGE, params={"dryRun": "All"}))
    assert patched["spec"] == {"a": 9} and patched["metadata"]["generation"] == 2
    assert ok(http.get(f"{CANARIES}/podinfo")) == created


# --- status subresource ------------------------------------------------------------------------------------------


def test_the_status_subresource_splits_writes(http: httpx.Client) -> None:
    # "Custom resources" > Status subresource: the main endpoint ignores .status (also on create); the /status
    # endpoint changes only .status.
    created = ok(http.post(CANARIES, json=canary(status={"phase": "Forged"})), 201)
    assert "status" not in created
    version = created["metadata"]["resourceVersion"]
    put_main = {**canary(), "metadata": {"name": "podinfo", "resourceVersion": version}, "status": {"phase": "X"}}
    assert "status" not in ok(http.put(f"{CANARIES}/podinfo", json=put_main))
    current = ok(http.get(f"{CANARIES}/podinfo"))
    put_status = {
        **current,
        "spec": {"a": 99},
        "metadata": {**current["metadata"], "labels": {"l": "1"}},
        "status": {"phase": "Progressing"},
    }
    written = ok(http.put(f"{CANARIES}/podinfo/status", json=put_status))
    assert written["status"] == {"phase": "Progressing"} and written["spec"] == {"a": 1}
    assert "labels" not in written["metadata"]


def test_deployments_have_a_status_subresource_config_maps_do_not(http: httpx.Client) -> None:
    # "API concepts" > Subresources: only resources that declare status serve /status.
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}
    ok(http.post(DEPLOYMENTS, json=deployment), 201)
    status = ok(http.patch(f"{DEPLOYMENTS}/d/status", json={"status": {"readyReplicas": 1}}, headers=MERGE))
    assert status["status"] == {"readyReplicas": 1}
    ok(http.post("/api/v1/namespaces/ns/configmaps", json={"metadata": {"name": "c"}, "data": {}}), 201)
    error(http.get("/api/v1/namespaces/ns/configmaps/c/status"), 404)


# --- selectors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),  # also matches objects without the label
        ("app in (web, db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
        ("app=web,tier=front", ["a"]),
        ("app in (web,db),!tier", ["b"]),
    ],
)
def test_label_selectors_filter_lists(http: httpx.Client, selector: str, names: list[str]) -> None:
    # "Labels and Selectors": equality-based and set-based requirements, comma-separated and ANDed.
    labelled = {"a": {"app": "web", "tier": "front"}, "b": {"app": "web"}, "c": {"app": "db", "tier": "x"}, "d": {}}
    for name, labels in labelled.items():
        ok(http.post(PODS, json=pod(name, labels)), 201)
    items = ok(http.get(PODS, params={"labelSelector": selector}))["items"]
    assert [item["metadata"]["name"] for item in items] == names


def test_malformed_selectors_and_unsupported_fields_are_400(http: httpx.Client) -> None:
    # "Labels and Selectors" / "Field Selectors": an invalid selector or an unsupported field is a BadRequest.
    error(http.get(PODS, params={"labelSelector": "app in web"}), 400)
    assert "field label not supported" in error(http.get(PODS, params={"fieldSelector": "spec.x=1"}), 400)["message"]


def test_field_selectors_on_name_and_namespace(http: httpx.Client) -> None:
    # "Field Selectors": metadata.name and metadata.namespace are supported by every resource; = == !=.
    ok(http.post(PODS, json=pod("a")), 201)
    ok(http.post(PODS, json=pod("b")), 201)
    ok(http.post("/api/v1/namespaces/other/pods", json=pod("a")), 201)
    everywhere = ok(http.get("/api/v1/pods", params={"fieldSelector": "metadata.name=a"}))["items"]
    assert sorted(i["metadata"]["namespace"] for i in everywhere) == ["ns", "other"]
    names = ok(http.get("/api/v1/pods", params={"fieldSelector": "metadata.namespace==ns,metadata.name!=a"}))
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in names["items"]] == [("ns", "b")]


# --- watch -------------------------------------------------------------------------------------------------------


def watch_events(http: httpx.Client, path: str, count: int, **params: str) -> list[tuple[str, str]]:
    """The first ``count`` events of a watch, as (type, name) (or (ERROR, reason))."""
    events: list[tuple[str, str]] = []
    with http.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.strip():
                event = json.loads(line)
                obj = event["object"]
                events.append(
                    (event["type"], obj.get("reason") if event["type"] == "ERROR" else obj["metadata"]["name"])
                )
                if len(events) == count:
                    break
    return events


def test_a_watch_streams_every_change_after_the_resource_version_it_starts_from(http: httpx.Client) -> None:
    # "API concepts" > Efficient detection of changes: a watch from a list's resourceVersion streams the later
    # changes as ADDED, MODIFIED, DELETED.
    ok(http.post(CANARIES, json=canary("before")), 201)
    start = ok(http.get(CANARIES))["metadata"]["resourceVersion"]
    ok(http.post(CANARIES, json=canary("a")), 201)
    ok(http.patch(f"{CANARIES}/a", json={"spec": {"a": 2}}, headers=MERGE))
    ok(http.delete(f"{CANARIES}/a"))
    events = watch_events(http, CANARIES, 3, resourceVersion=start)
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_a_watch_without_a_version_starts_with_the_current_objects(http: httpx.Client) -> None:
    # "API concepts" > Semantics for watch: resourceVersion unset or "0" first sends synthetic ADDED events.
    ok(http.post(CANARIES, json=canary("a")), 201)
    ok(http.post(CANARIES, json=canary("b")), 201)
    assert watch_events(http, CANARIES, 2, watch="1") == [("ADDED", "a"), ("ADDED", "b")]


def test_a_watch_with_a_selector_sees_objects_enter_and_leave_it(http: httpx.Client) -> None:
    # "API concepts" > Efficient detection of changes with selectors: an object that stops matching is reported
    # as DELETED to that watch, one that starts matching as ADDED; "Field Selectors" apply to watches too.
    start = ok(http.get(PODS))["metadata"]["resourceVersion"]
    ok(http.post(PODS, json=pod("p", {"app": "web"})), 201)
    ok(http.post(PODS, json=pod("other")), 201)
    ok(http.patch(f"{PODS}/p", json={"metadata": {"labels": {"app": "db"}}}, headers=MERGE))
    ok(http.patch(f"{PODS}/p", json={"metadata": {"labels": {"app": "web"}}}, headers=MERGE))
    events = watch_events(http, PODS, 3, resourceVersion=start, labelSelector="app=web")
    assert events == [("ADDED", "p"), ("DELETED", "p"), ("ADDED", "p")]
    # p's events come first in the log; a field selector on the name skips them
    assert watch_events(http, PODS, 1, resourceVersion=start, fieldSelector="metadata.name=other") == [
        ("ADDED", "other")
    ]


def test_a_watch_from_a_compacted_version_gets_410_gone(http: httpx.Client, kube_emulator: RunningEmulator) -> None:
    # "API concepts" > Resource versions / 410 Gone responses: history is compacted; the client must relist.
    start = ok(http.get(CANARIES))["metadata"]["resourceVersion"]
    ok(http.post(CANARIES, json=canary("a")), 201)
    kube_emulator.compact()
    assert watch_events(http, CANARIES, 1, resourceVersion=start) == [("ERROR", "Expired")]


def test_break_watches_cuts_open_streams(http: httpx.Client, kube_emulator: RunningEmulator) -> None:
    # A test control: the connection drops mid-stream without the final chunk, as when an API server restarts.
    ok(http.post(CANARIES, json=canary("a")), 201)
    with http.stream("GET", CANARIES, params={"watch": "true"}) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["type"] == "ADDED"
        kube_emulator.break_watches()
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in lines:
                pass


def test_a_watch_ends_at_its_timeout_with_a_bookmark(http: httpx.Client) -> None:
    # "API concepts" > Watch bookmarks: with allowWatchBookmarks the server may send a BOOKMARK carrying the
    # current resourceVersion; timeoutSeconds ends the stream cleanly.
    ok(http.post(CANARIES, json=canary("a")), 201)
    current = ok(http.get(CANARIES))["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": current, "timeoutSeconds": "1", "allowWatchBookmarks": "true"}
    with http.stream("GET", CANARIES, params=params) as response:
        events = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [("BOOKMARK", current)]


# --- server-side apply -------------------------------------------------------------------------------------------


def test_apply_needs_a_field_manager_creates_and_records_ownership(http: httpx.Client) -> None:
    # "Server-Side Apply": fieldManager is required for apply patches (400); applying an absent object creates
    # it; managedFields records the manager with operation Apply and the fields it set.
    error(http.patch(f"{CANARIES}/podinfo", json=canary(), headers=APPLY), 400)
    created = ok(http.patch(f"{CANARIES}/podinfo", json=canary(), headers=APPLY, params={"fieldManager": "flux"}), 201)
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsV1"]) == ("flux", "Apply", {"f:spec": {"f:a": {}}})


def test_apply_merges_into_the_live_object_and_removes_what_it_stopped_applying(http: httpx.Client) -> None:
    # "Server-Side Apply" > Merge strategy and field removal: fields other managers set are kept; a field this
    # manager applied before and no longer applies is removed.
    params = {"fieldManager": "flux"}
    ok(
        http.patch(f"{CANARIES}/podinfo", json={**canary(), "spec": {"a": 1, "b": 2}}, headers=APPLY, params=params),
        201,
    )
    ok(http.patch(f"{CANARIES}/podinfo", json={"spec": {"mine": True}}, headers=MERGE))
    applied = ok(http.patch(f"{CANARIES}/podinfo", json={**canary(), "spec": {"a": 3}}, headers=APPLY, params=params))
    assert applied["spec"] == {"a": 3, "mine": True}
    managers = {(m["manager"], m["operation"]) for m in applied["metadata"]["managedFields"]}
    assert ("flux", "Apply") in managers and len(managers) == 2


def test_apply_conflicts_with_another_manager_unless_forced(http: httpx.Client) -> None:
    # "Server-Side Apply" > Conflicts: a different value for a field another manager owns is a 409 unless
    # force=true, which transfers ownership.
    ok(http.patch(f"{CANARIES}/podinfo", json=canary(), headers=APPLY, params={"fieldManager": "a"}), 201)
    other = {**canary(), "spec": {"a": 2}}
    body = error(http.patch(f"{CANARIES}/podinfo", json=other, headers=APPLY, params={"fieldManager": "b"}), 409)
    assert 'conflict with "a": .spec.a' in body["message"]
    forced = ok(
        http.patch(f"{CANARIES}/podinfo", json=other, headers=APPLY, params={"fieldManager": "b", "force": "true"})
    )
    assert forced["spec"] == {"a": 2}
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert owners == {"b": {"f:spec": {"f:a": {}}}}


# --- names, deletion, namespaces, versions -----------------------------------------------------------------------


def test_generate_name_appends_a_random_suffix(http: httpx.Client) -> None:
    # "Object Names and IDs" / ObjectMeta.generateName: the server appends a unique suffix.
    body = {"metadata": {"generateName": "canaryflow-"}, "involvedObject": {}, "reason": "Synced"}
    names = {ok(http.post("/api/v1/namespaces/ns/events", json=body), 201)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(re.fullmatch(r"canaryflow-[a-z0-9]{5}", name) for name in names)


def test_finalizers_hold_deletion_until_they_are_removed(http: httpx.Client) -> None:
    # "Finalizers": delete sets deletionTimestamp while finalizers remain; removing the last one deletes.
    ok(http.post(CANARIES, json={**canary(), "metadata": {"name": "podinfo", "finalizers": ["canaryflow.dev/x"]}}), 201)
    deleting = ok(http.delete(f"{CANARIES}/podinfo"))
    assert deleting["metadata"]["deletionTimestamp"]
    assert ok(http.get(f"{CANARIES}/podinfo"))["metadata"]["finalizers"] == ["canaryflow.dev/x"]
    ok(http.patch(f"{CANARIES}/podinfo", json={"metadata": {"finalizers": None}}, headers=MERGE))
    error(http.get(f"{CANARIES}/podinfo"), 404)
    start = ok(http.get(CANARIES))["metadata"]["resourceVersion"]
    ok(http.post(CANARIES, json={**canary(), "metadata": {"name": "podinfo", "finalizers": ["canaryflow.dev/x"]}}), 201)
    ok(http.delete(f"{CANARIES}/podinfo"))
    ok(http.patch(f"{CANARIES}/podinfo", json={"metadata": {"finalizers": []}}, headers=MERGE))
    # watches see the deletion mark, then DELETED (the write that empties the finalizers is the deletion)
    events = watch_events(http, CANARIES, 3, resourceVersion=start)
    assert events == [("ADDED", "podinfo"), ("MODIFIED", "podinfo"), ("DELETED", "podinfo")]


def test_names_and_labels_are_validated(http: httpx.Client) -> None:
    # "Object Names and IDs" (DNS subdomain names) and "Labels and Selectors" > Syntax and character set.
    error(http.post(CANARIES, json=canary("Not_A_Name")), 422)
    bad_label = {**canary(), "metadata": {"name": "podinfo", "labels": {"app": "no spaces"}}}
    assert "metadata.labels[app]" in error(http.post(CANARIES, json=bad_label), 422)["message"]
    error(http.post(CANARIES, json={**canary(), "metadata": {"name": "podinfo", "annotations": {"n": 1}}}), 422)


def test_no_finalizer_can_be_added_while_deleting(http: httpx.Client) -> None:
    # "Finalizers": once deletionTimestamp is set, finalizers can only be removed.
    ok(http.post(CANARIES, json={**canary(), "metadata": {"name": "podinfo", "finalizers": ["a"]}}), 201)
    ok(http.delete(f"{CANARIES}/podinfo"))
    patch = {"metadata": {"finalizers": ["a", "b"]}}
    assert "no new finalizers" in error(http.patch(f"{CANARIES}/podinfo", json=patch, headers=MERGE), 422)["message"]


def test_namespaces_are_served_and_deleting_one_deletes_its_objects(http: httpx.Client) -> None:
    # "Namespaces": a cluster-scoped kind at /api/v1/namespaces, labelled kubernetes.io/metadata.name and Active;
    # deleting a namespace deletes everything in it.
    namespace = ok(http.post("/api/v1/namespaces", json={"metadata": {"name": "ns"}}), 201)
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ns"}
    assert namespace["status"] == {"phase": "Active"}
    ok(http.post(CANARIES, json=canary()), 201)
    assert [n["metadata"]["name"] for n in ok(http.get("/api/v1/namespaces"))["items"]] == ["ns"]
    ok(http.delete("/api/v1/namespaces/ns"))
    error(http.get(f"{CANARIES}/podinfo"), 404)


def test_deleting_an_owner_deletes_its_dependents_unless_orphaned(http: httpx.Client) -> None:
    # "Garbage Collection" > Owners and dependents / Cascading deletion: the garbage collector deletes objects
    # whose owners are all gone; propagationPolicy=Orphan leaves them.
    owner = ok(http.post(CANARIES, json=canary()), 201)["metadata"]
    reference = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo", "uid": owner["uid"]}
    other = ok(http.post(CANARIES, json=canary("other")), 201)["metadata"]
    second = {**reference, "name": "other", "uid": other["uid"]}
    for name, refs in [("only", [reference]), ("shared", [reference, second]), ("free", [])]:
        ok(http.post(PODS, json={**pod(name), "metadata": {"name": name, "ownerReferences": refs}}), 201)
    ok(http.delete(f"{CANARIES}/podinfo"))
    assert [p["metadata"]["name"] for p in ok(http.get(PODS))["items"]] == ["free", "shared"]
    ok(http.delete(f"{CANARIES}/other", params={"propagationPolicy": "Orphan"}))
    assert [p["metadata"]["name"] for p in ok(http.get(PODS))["items"]] == ["free", "shared"]


def test_strict_namespaces_refuse_objects_in_a_missing_namespace() -> None:
    # "Namespaces": on a cluster, creating in a namespace that does not exist is 404 NotFound (the emulator is
    # lenient by default so tests need not create namespaces first).
    with (
        RunningEmulator(RealisticEmulator(strict_namespaces=True)) as strict,
        httpx.Client(base_url=strict.url) as http,
    ):
        assert error(http.post(CANARIES, json=canary()), 404)["message"] == 'namespaces "ns" not found'
        ok(http.post("/api/v1/namespaces", json={"metadata": {"name": "ns"}}), 201)
        ok(http.post(CANARIES, json=canary()), 201)


def test_the_served_versions_of_a_resource_share_its_objects(http: httpx.Client) -> None:
    # "Custom resources" > Versions: every served version reads the same stored objects.
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": {"name": "v"}, "spec": {}}
    ok(http.post("/apis/networking.istio.io/v1beta1/namespaces/ns/virtualservices", json=vs), 201)
    assert (
        ok(http.get("/apis/networking.istio.io/v1/namespaces/ns/virtualservices/v"))["apiVersion"]
        == "networking.istio.io/v1"
    )


def test_strategic_merge_merges_named_list_items_and_is_refused_for_custom_resources(http: httpx.Client) -> None:
    # "Update API Objects in Place": strategic merge patches merge containers by name; custom resources do not
    # support them (415).
    containers = [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]
    deployment = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": containers}}}}
    ok(http.post(DEPLOYMENTS, json=deployment), 201)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    patched = ok(http.patch(f"{DEPLOYMENTS}/d", json=patch, headers=strategic))
    assert patched["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "a:2"}, containers[1]]
    selector = {"spec": {"selector": {"$patch": "replace", "matchLabels": {"app": "d"}}}}
    assert ok(http.patch(f"{DEPLOYMENTS}/d", json=selector, headers=strategic))["spec"]["selector"] == {
        "matchLabels": {"app": "d"}
    }
    error(http.patch(f"{DEPLOYMENTS}/d", json={"spec": {"$retainKeys": ["x"]}}, headers=strategic), 400)
    ok(http.post(CANARIES, json=canary()), 201)
    error(http.patch(f"{CANARIES}/podinfo", json={"spec": {}}, headers=strategic), 415)


# --- discovery ---------------------------------------------------------------------------------------------------


def test_discovery_lists_groups_versions_and_resources(http: httpx.Client) -> None:
    # "API concepts" > Discovery API: /api, /apis (preferred version = highest priority), and resource lists
    # with kind, plural name, scope, verbs and subresources.
    assert ok(http.get("/api"))["versions"] == ["v1"]
    groups = {g["name"]: g for g in ok(http.get("/apis"))["groups"]}
    assert groups["networking.istio.io"]["preferredVersion"]["version"] == "v1"
    assert {"flagger.app", "kopf.dev", "source.toolkit.fluxcd.io", "apps", "autoscaling"} <= groups.keys()
    resources = {r["name"]: r for r in ok(http.get("/apis/flagger.app/v1beta1"))["resources"]}
    assert resources["canaries"]["kind"] == "Canary" and resources["canaries"]["namespaced"] is True
    assert {"get", "list", "watch", "patch", "update"} <= set(resources["canaries"]["verbs"])
    assert "canaries/status" in resources
    peering = {r["name"]: r for r in ok(http.get("/apis/kopf.dev/v1"))["resources"]}
    assert peering["clusterkopfpeerings"]["namespaced"] is False and peering["kopfpeerings"]["namespaced"] is True
    assert "pods/status" in {r["name"] for r in ok(http.get("/api/v1"))["resources"]}
    error(http.get("/apis/nope.example.com/v1"), 404)
    error(http.get("/apis/flagger.app/v1beta1/namespaces/ns/nothings"), 404)


# --- test controls -----------------------------------------------------------------------------------------------


def test_requests_are_recorded_and_failures_injected(http: httpx.Client, kube_emulator: RunningEmulator) -> None:
    kube_emulator.fail_next("POST", CANARIES, 500)
    error(http.post(CANARIES, json=canary()), 500)
    ok(http.post(CANARIES, json=canary()), 201)
    posts = [r for r in kube_emulator.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[1].content_type == "application/json" and posts[1].body == canary()
