"""Revision detection, decided once: the local runtime and the Kubernetes one see the same new revisions."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from canaryflow.kube.render import configs
from canaryflow.local import podspec
from canaryflow.workloads import revision

CONFIGS: dict[tuple[str, str], dict[str, Any]] = {
    ("configmap", "settings"): {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
    ("configmap", "bootstrap"): {"kind": "ConfigMap", "metadata": {"name": "bootstrap"}, "data": {"b": "<&>"}},
    ("configmap", "frozen"): {
        "kind": "ConfigMap",
        "metadata": {"name": "frozen", "annotations": {"flagger.app/config-tracking": "disabled"}},
        "data": {"c": "3"},
    },
    ("secret", "token"): {
        "kind": "Secret",
        "metadata": {"name": "token"},
        "type": "Opaque",
        "data": {"t": base64.b64encode(b"s3cret").decode()},
        "stringData": {"u": "plain"},
    },
    ("secret", "pull"): {"kind": "Secret", "metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson"},
}


def deployment() -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
        "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "token"}}],
        "env": [{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "frozen", "key": "c"}}}],
    }
    init = {"name": "init", "image": "busybox", "envFrom": [{"configMapRef": {"name": "bootstrap"}}]}
    spec = {
        "containers": [container],
        "initContainers": [init],
        "volumes": [{"name": "p", "secret": {"secretName": "pull"}}],
    }
    return {"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"metadata": {}, "spec": spec}}}


def local_revision(target: dict[str, Any]) -> revision.Revision:
    tracking = podspec.tracking(target, lambda kind, name: CONFIGS.get((kind, name)))
    return revision.revision(podspec.template_of(target), tracking)


def kube_revision(target: dict[str, Any]) -> revision.Revision:
    template = target["spec"]["template"]
    tracking = configs.track(template["spec"], lambda kind, name: CONFIGS.get((kind.lower(), name)))
    return revision.revision(template, tracking)


def test_both_runtimes_track_the_same_configs_with_flaggers_checksums() -> None:
    local, kube = local_revision(deployment()), kube_revision(deployment())
    assert local == kube
    # init containers count, opted-out and registry secrets do not
    assert [key for key, _ in local.configs] == ["configmap/bootstrap", "configmap/settings", "secret/token"]
    assert all(len(checksum) == 16 for _, checksum in local.configs)


@pytest.mark.parametrize(
    "change",
    ["image", "config", "secret", "untracked"],
)
def test_a_change_is_a_new_revision_for_both_or_for_neither(change: str) -> None:
    before = (local_revision(deployment()), kube_revision(deployment()))
    target, saved = deployment(), copy.deepcopy(CONFIGS)
    try:
        if change == "image":
            target["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.0.1"
        elif change == "config":
            CONFIGS[("configmap", "bootstrap")]["data"] = {"b": "2"}
        elif change == "secret":
            CONFIGS[("secret", "token")]["stringData"] = {"u": "rotated"}
        else:
            CONFIGS[("configmap", "frozen")]["data"] = {"c": "4"}
        after = (local_revision(target), kube_revision(target))
    finally:
        CONFIGS.clear()
        CONFIGS.update(saved)
    assert after[0] == after[1]
    assert (after[0] != before[0]) is (change != "untracked")


def test_a_secret_value_that_is_not_base64_is_each_runtimes_error() -> None:
    broken = {("secret", "token"): {"kind": "Secret", "metadata": {"name": "token"}, "data": {"t": "%%%"}}}
    spec = {"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "token"}}]}]}
    target = {"kind": "Deployment", "metadata": {"name": "app"}, "spec": {"template": {"spec": spec}}}
    with pytest.raises(podspec.PodError, match=r"Secret token: data.t is not base64"):
        podspec.tracking(target, lambda kind, name: broken.get((kind, name)))
    with pytest.raises(configs.meta.RenderError, match=r"Secret token: data.t is not base64"):
        configs.track(spec, lambda kind, name: broken.get((kind.lower(), name)))
