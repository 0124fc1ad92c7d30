"""Bounded waits: how long one adapter call, and a whole tick, may take.

A hung adapter (a metrics server that accepts the connection and never answers, an API server that stalls, a
webhook runner that ignores its own timeout) must never hang a canary: the executor runs every call under
``Deadlines.for_effect`` and the whole tick under ``Deadlines.for_tick``, enforced by ``control/watchdog.py``.
What a missed deadline means depends on the call, as in Flagger: a metric query or a webhook that does not
answer is a failed check (it counts towards the threshold); an alert that is not delivered is a warning event
(alerts are best effort); anything else (routes, workloads, the store) abandons the tick with a warning event
naming the call, and the next tick starts again from the last saved status.

A webhook's own ``timeout`` (and ``retries``) are part of its deadline: a ``pre-rollout`` test allowed five
minutes gets five minutes, and the executor's deadline is only the backstop behind the hook runner's own.
"""

from __future__ import annotations

import dataclasses

from canaryflow.api.canary import Canary, CanaryWebhook, HookType
from canaryflow.engine import effects as fx

#: The effects whose deadline includes webhooks' timeouts; every other call's is ``Deadlines.call`` (the executor
#: asks ``for_effect`` only for these: it runs for every effect of every tick).
WEBHOOK_TIMED = frozenset({fx.CallHook, fx.Emit})


@dataclasses.dataclass(frozen=True, slots=True)
class Deadlines:
    #: Seconds any single adapter call may take (on top of a webhook's own timeouts).
    call: float = 30.0
    #: Seconds a whole tick may take, on top of the timeouts of the webhooks it may call.
    tick: float = 120.0

    @property
    def period(self) -> float:
        """How often the watchdog looks: a hung call is cut at most this long after its deadline."""
        return min(self.call, self.tick) / 10

    def __post_init__(self) -> None:
        if self.call <= 0 or self.tick <= 0:
            raise ValueError(f"deadlines must be positive (call={self.call}, tick={self.tick})")

    def for_effect(self, canary: Canary, effect: object) -> float:
        kind = type(effect)  # (on every call of every tick: no isinstance walk)
        if kind is fx.CallHook:
            return self.call + hook_seconds(effect.webhook)  # type: ignore[attr-defined]
        if kind is fx.Emit:  # the event, then every event webhook in turn
            hooks = canary.spec.effective_analysis.hooks(HookType.EVENT)
            return self.call + sum(hook_seconds(hook) for hook in hooks) if hooks else self.call
        return self.call

    def for_tick(self, canary: Canary) -> float:
        """A tick calls each webhook at most once, but emits events that call the event webhooks each time: the
        budget allows every webhook once and leaves the rest to ``tick``."""
        hooks = canary.spec.effective_analysis.webhooks or ()
        return self.tick + sum(hook_seconds(hook) for hook in hooks)


def hook_seconds(webhook: CanaryWebhook) -> float:
    """The longest a webhook runner may legitimately take: every attempt at the webhook's timeout."""
    return (1 + (webhook.retries or 0)) * webhook.timeout_seconds
