"""The in-memory hook runner: what engine tests rely on to play gates and load tests."""

from __future__ import annotations

import pytest

from canaryflow.api.canary import CanaryWebhook
from canaryflow.hooks.base import HookCall, HookResult
from canaryflow.hooks.memory import MemoryHookRunner


def call_to(hook: str, phase: str = "Progressing") -> HookCall:
    webhook = CanaryWebhook(name=hook, url=f"http://{hook}.test/", type="confirm-promotion")
    return HookCall(name="podinfo", namespace="test", phase=phase, checksum="c0ffee", webhook=webhook)


async def test_an_unscripted_hook_passes() -> None:
    runner = MemoryHookRunner()

    assert (await runner.call(call_to("load-test"))).ok


async def test_a_gate_that_refuses_twice_then_opens_and_stays_open() -> None:
    runner = MemoryHookRunner()
    runner.script("gate", False, False, True)

    answers = [(await runner.call(call_to("gate"))).ok for _ in range(5)]

    assert answers == [False, False, True, True, True]


async def test_scripts_are_per_hook_name() -> None:
    runner = MemoryHookRunner()
    runner.failing("gate", "gate closed by on-call")
    runner.passing("smoke")

    gate = await runner.call(call_to("gate"))
    smoke = await runner.call(call_to("smoke"))

    assert gate == HookResult(ok=False, message="gate closed by on-call")
    assert smoke.ok


async def test_records_every_call_in_order() -> None:
    runner = MemoryHookRunner()

    await runner.call(call_to("gate", phase="Progressing"))
    await runner.call(call_to("smoke"))
    await runner.call(call_to("gate", phase="WaitingPromotion"))

    assert [c.phase for c in runner.calls_to("gate")] == ["Progressing", "WaitingPromotion"]
    assert [c.webhook.name for c in runner.calls] == ["gate", "smoke", "gate"]


def test_a_script_needs_an_answer() -> None:
    with pytest.raises(ValueError, match="at least one answer"):
        MemoryHookRunner().script("gate")
