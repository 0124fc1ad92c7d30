"""Receivers: the secret path, signature checks (a bad one is refused and names nothing to reconcile), events."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from canaryflow.gitops import receiver

TOKEN = "s3cr3t-token"
PAYLOAD = b'{"ref": "refs/heads/main"}'


def make(kind: str, events: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": kind,
        "secretRef": {"name": "webhook-token"},
        "resources": [
            {"kind": "GitRepository", "name": "flux-system"},
            {"kind": "Kustomization", "name": "*", "namespace": "apps", "matchLabels": {"team": "a"}},
        ],
    }
    if events is not None:
        spec["events"] = events
    return {"kind": "Receiver", "metadata": {"name": "github-receiver", "namespace": "flux-system"}, "spec": spec}


def test_the_path_is_the_sha256_of_token_name_and_namespace() -> None:
    expected = hashlib.sha256(b"s3cr3t-tokengithub-receiverflux-system").hexdigest()
    assert receiver.webhook_path(TOKEN, "github-receiver", "flux-system") == f"/hook/{expected}"
    assert receiver.webhook_path("other", "github-receiver", "flux-system") != f"/hook/{expected}"


def test_github_push_with_a_valid_signature_names_the_resources() -> None:
    signature = "sha256=" + hmac.new(TOKEN.encode(), PAYLOAD, hashlib.sha256).hexdigest()
    verdict = receiver.judge(
        make("github", ["push"]), TOKEN, {"x-hub-signature-256": signature, "x-github-event": "push"}, PAYLOAD
    )
    assert verdict.status == 200
    assert verdict.resources == (
        ("GitRepository", "flux-system", "flux-system", ()),
        ("Kustomization", "apps", "*", (("team", "a"),)),
    )


def test_github_with_a_bad_or_missing_signature_is_refused_and_names_nothing() -> None:
    forged = "sha256=" + hmac.new(b"wrong", PAYLOAD, hashlib.sha256).hexdigest()
    for headers in ({"x-hub-signature-256": forged}, {}, {"x-hub-signature-256": "sha1=abc"}):
        verdict = receiver.judge(make("github"), TOKEN, {**headers, "x-github-event": "push"}, PAYLOAD)
        assert verdict.status == 401
        assert verdict.resources == ()


def test_a_signature_over_another_body_is_refused() -> None:
    signature = receiver.sign(TOKEN, PAYLOAD)
    verdict = receiver.judge(make("github"), TOKEN, {"x-hub-signature-256": signature}, PAYLOAD + b" ")
    assert verdict.status == 401


def test_github_ping_and_unlisted_events_reconcile_nothing() -> None:
    signature = receiver.sign(TOKEN, PAYLOAD)
    ping = receiver.judge(
        make("github", ["push"]), TOKEN, {"x-hub-signature-256": signature, "x-github-event": "ping"}, PAYLOAD
    )
    other = receiver.judge(
        make("github", ["push"]), TOKEN, {"x-hub-signature-256": signature, "x-github-event": "issues"}, PAYLOAD
    )
    assert (ping.status, ping.resources) == (200, ())
    assert (other.status, other.resources) == (200, ())


def test_generic_hmac_accepts_each_supported_hash_and_refuses_others() -> None:
    for algorithm in ("sha1", "sha256", "sha512"):
        verdict = receiver.judge(
            make("generic-hmac"), TOKEN, {"x-signature": receiver.sign(TOKEN, PAYLOAD, algorithm)}, PAYLOAD
        )
        assert verdict.status == 200 and len(verdict.resources) == 2
    md5 = "md5=" + hmac.new(TOKEN.encode(), PAYLOAD, hashlib.md5).hexdigest()
    assert receiver.judge(make("generic-hmac"), TOKEN, {"x-signature": md5}, PAYLOAD).status == 401


def test_generic_relies_on_the_path_and_gitlab_on_its_token_header() -> None:
    assert receiver.judge(make("generic"), TOKEN, {}, b"").status == 200
    assert receiver.judge(make("gitlab"), TOKEN, {"x-gitlab-token": TOKEN}, b"").status == 200
    assert receiver.judge(make("gitlab"), TOKEN, {"x-gitlab-token": "nope"}, b"").status == 401


def test_an_unknown_type_is_a_clear_error() -> None:
    verdict = receiver.judge(make("bitbucket-server"), TOKEN, {}, b"")
    assert verdict.status == 400 and "not supported" in verdict.message and "github" in verdict.message
