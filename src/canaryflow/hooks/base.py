"""The HookRunner seam."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from canaryflow.api.canary import CanaryWebhook


@dataclasses.dataclass(frozen=True, slots=True)
class HookCall:
    """One webhook call: Flagger's payload is ``{name, namespace, phase, checksum, metadata}``."""

    name: str
    namespace: str
    phase: str
    checksum: str
    webhook: CanaryWebhook
    extra_metadata: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class HookResult:
    ok: bool
    message: str = ""


class HookRunner(Protocol):
    async def call(self, call: HookCall) -> HookResult:
        """Never raises for a failing or unreachable hook: that is a result with ``ok=False`` and the reason."""
        ...
