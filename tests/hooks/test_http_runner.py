"""Calling webhooks over HTTP: Flagger's payload, what counts as a pass, retries, timeouts and TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from canaryflow.api.canary import CanaryWebhook
from canaryflow.hooks.base import HookCall
from canaryflow.hooks.http import HttpHookConfig, HttpHookRunner
from tests.clocks import InstantClock
from tests.hooks.receiver import HANG, Answer, Receiver


@pytest.fixture
def sleep() -> InstantClock:
    return InstantClock()


@pytest.fixture
async def runner(sleep: InstantClock) -> AsyncIterator[HttpHookRunner]:
    async with HttpHookRunner(HttpHookConfig(clock=sleep)) as hook_runner:
        yield hook_runner


def hook_call(url: str, extra: tuple[tuple[str, str], ...] = (), **webhook: Any) -> HookCall:
    spec = {"name": "load-test", "url": url, **webhook}
    return HookCall(
        name="podinfo",
        namespace="test",
        phase="Progressing",
        checksum="6d8f7c9b",
        webhook=CanaryWebhook.model_validate(spec),
        extra_metadata=extra,
    )


async def test_posts_flaggers_payload_with_merged_metadata(runner: HttpHookRunner, receiver: Receiver) -> None:
    metadata = {"cmd": "hey -z 1m http://podinfo-canary.test:9898/", "eventType": "from-spec"}
    call = hook_call(receiver.url(), extra=(("eventType", "Normal"),), metadata=metadata)

    result = await runner.call(call)

    assert result.ok
    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "6d8f7c9b",
        # the call's own metadata (an event's type) wins over the webhook's
        "metadata": {"cmd": "hey -z 1m http://podinfo-canary.test:9898/", "eventType": "Normal"},
    }


async def test_sends_empty_metadata_when_the_webhook_has_none(runner: HttpHookRunner, receiver: Receiver) -> None:
    await runner.call(hook_call(receiver.url()))

    assert receiver.requests[0].json["metadata"] == {}


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (201, True), (202, True), (203, False), (204, False), (302, False), (403, False)],
    ids=lambda v: str(v),
)
async def test_any_status_above_202_fails(runner: HttpHookRunner, receiver: Receiver, status: int, ok: bool) -> None:
    receiver.answer(Answer(status, ""))

    result = await runner.call(hook_call(receiver.url()))

    assert result.ok is ok
    assert str(status) in result.message


async def test_failure_message_carries_status_and_shortened_body(runner: HttpHookRunner, receiver: Receiver) -> None:
    receiver.answer(Answer(500, "command failed:\n" + "x" * 5000))

    result = await runner.call(hook_call(receiver.url()))

    assert not result.ok
    assert "answered 500: command failed: xxx" in result.message
    assert len(result.message) < 500


async def test_retries_a_failing_hook_until_it_passes(
    runner: HttpHookRunner, receiver: Receiver, sleep: InstantClock
) -> None:
    receiver.answer(Answer(500, "warming up"), Answer(503, "warming up"), Answer(200, "ok"))

    result = await runner.call(hook_call(receiver.url(), retries=2))

    assert result.ok
    assert len(receiver.requests) == 3
    assert "3 attempts" in result.message
    assert len(sleep.waits) == 2
    assert sleep.waits[1] > sleep.waits[0], "backs off between attempts"


async def test_gives_up_after_its_retries(runner: HttpHookRunner, receiver: Receiver, sleep: InstantClock) -> None:
    receiver.answer(Answer(500, "still broken"))

    result = await runner.call(hook_call(receiver.url(), retries=2))

    assert not result.ok
    assert len(receiver.requests) == 3
    assert "500: still broken" in result.message


async def test_without_retries_calls_once(runner: HttpHookRunner, receiver: Receiver) -> None:
    receiver.answer(Answer(500, "broken"), Answer(200, "ok"))

    result = await runner.call(hook_call(receiver.url()))

    assert not result.ok
    assert len(receiver.requests) == 1


async def test_a_closed_gate_is_an_answer_not_retried(
    runner: HttpHookRunner, receiver: Receiver, sleep: InstantClock
) -> None:
    receiver.answer(Answer(403, "Forbidden"), Answer(200, "ok"))

    result = await runner.call(hook_call(receiver.url(), retries=3))

    assert not result.ok
    assert len(receiver.requests) == 1
    assert sleep.waits == []


async def test_a_hook_that_hangs_is_cut_at_its_timeout(runner: HttpHookRunner, receiver: Receiver) -> None:
    receiver.answer(HANG)

    result = await runner.call(hook_call(receiver.url(), timeout="200ms"))

    assert not result.ok
    assert "did not answer within 0.2s" in result.message


async def test_a_timed_out_hook_is_retried(runner: HttpHookRunner, receiver: Receiver, sleep: InstantClock) -> None:
    receiver.answer(HANG, Answer(200, "ok"))

    result = await runner.call(hook_call(receiver.url(), timeout="200ms", retries=1))

    assert result.ok
    assert len(receiver.requests) == 2


async def test_an_unreachable_hook_fails_with_the_connection_error(runner: HttpHookRunner, sleep: InstantClock) -> None:
    closed = Receiver()
    closed.stop()  # the port was just in use and is now closed

    result = await runner.call(hook_call(closed.url(), retries=1))

    assert not result.ok
    assert "unreachable: ConnectError" in result.message
    assert len(sleep.waits) == 1, "connection errors are retried"


async def test_messages_never_show_credentials_in_the_hook_url(runner: HttpHookRunner, receiver: Receiver) -> None:
    receiver.answer(Answer(401, "denied"))
    url = receiver.url().replace("http://", "http://admin:hunter2@") + "?token=s3cret"

    result = await runner.call(hook_call(url))

    assert not result.ok
    assert "hunter2" not in result.message
    assert "s3cret" not in result.message
    assert "127.0.0.1" in result.message


async def test_refuses_a_self_signed_certificate_by_default(runner: HttpHookRunner, tls_receiver: Receiver) -> None:
    result = await runner.call(hook_call(tls_receiver.url()))

    assert not result.ok
    assert "CERTIFICATE_VERIFY_FAILED" in result.message
    assert tls_receiver.requests == []


async def test_disable_tls_accepts_a_self_signed_certificate(runner: HttpHookRunner, tls_receiver: Receiver) -> None:
    result = await runner.call(hook_call(tls_receiver.url(), disableTLS=True))

    assert result.ok
    assert tls_receiver.requests[0].json["name"] == "podinfo"


async def test_a_configured_transport_replaces_the_network() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    config = HttpHookConfig(transport=httpx.MockTransport(answer))
    async with HttpHookRunner(config) as runner:
        result = await runner.call(hook_call("http://flagger-loadtester.test/"))

    assert result.ok
    assert seen[0].url.host == "flagger-loadtester.test"
