"""An in-memory HookRunner: records every call and answers from a script, per hook name.

Engine and scenario tests use it to play gates and load tests without a network: a confirm-promotion gate
that refuses twice and then opens is ``runner.script("gate", False, False, True)``.
"""

from __future__ import annotations

from collections import deque

from canaryflow.hooks.base import HookCall, HookResult

Answer = bool | HookResult
_UNSCRIPTED = HookResult(ok=True, message="no script: passes")


class MemoryHookRunner:
    """Hooks without a script pass; a script's answers are used in order and the last one repeats."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._scripts: dict[str, deque[HookResult]] = {}

    def script(self, hook: str, *answers: Answer) -> None:
        """Answer calls to the webhook named ``hook`` with ``answers``, in order; the last one sticks."""
        if not answers:
            raise ValueError(f"script for hook {hook!r} needs at least one answer")
        self._scripts[hook] = deque(_result(hook, a) for a in answers)

    def passing(self, hook: str) -> None:
        self.script(hook, True)

    def failing(self, hook: str, message: str = "") -> None:
        self.script(hook, HookResult(ok=False, message=message or f"hook {hook} refused"))

    def calls_to(self, hook: str) -> list[HookCall]:
        return [c for c in self.calls if c.webhook.name == hook]

    async def call(self, call: HookCall) -> HookResult:
        self.calls.append(call)
        answers = self._scripts.get(call.webhook.name)
        if not answers:
            return _UNSCRIPTED
        return answers.popleft() if len(answers) > 1 else answers[0]


def _result(hook: str, answer: Answer) -> HookResult:
    if isinstance(answer, HookResult):
        return answer
    return HookResult(ok=answer, message=f"hook {hook} " + ("passed" if answer else "refused"))
