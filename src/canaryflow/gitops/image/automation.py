"""ImageUpdateAutomation: check out the branch, rewrite markers, commit with the template, push.

The git work (clone or fetch into a kept workdir, commit as the author, push, and on a non-fast-forward
fetch the new tip and redo the update rather than force over someone else's commit) is
``canaryflow.gitops.source.commit_and_push``; this module supplies what is image-specific: which files
change (``setters.update_tree_result`` under ``spec.update.path``) and the message (``template``).

The message template is compiled before anything is cloned, so a broken template stops the automation
with a clear error instead of producing a commit with a wrong message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from canaryflow.gitops.image.setters import Result, update_tree_result
from canaryflow.gitops.image.template import MessageTemplate
from canaryflow.gitops.source import Author, GitAuth, commit_and_push

__all__ = ["AutomationSpec", "run_automation"]


@dataclasses.dataclass(frozen=True)
class AutomationSpec:
    """What one ImageUpdateAutomation run needs, resolved from it and its GitRepository.

    ``branch`` is ``spec.git.checkout.ref.branch`` or the GitRepository's branch; ``push_branch`` is
    ``spec.git.push.branch`` (None: push to ``branch``); ``path`` is ``spec.update.path``.
    """

    namespace: str
    name: str
    url: str
    branch: str
    author: Author
    path: str = "./"
    push_branch: str | None = None
    message_template: str | None = None
    template_values: Mapping[str, str] = dataclasses.field(default_factory=dict)
    attempts: int = 3
    timeout: float = 60.0


async def run_automation(
    spec: AutomationSpec, images: Mapping[str, str], *, workdir: Path, auth: GitAuth | None = None
) -> str | None:
    """Apply ``images`` (``"ns:policy" -> "repo:tag"``) to the repository; the pushed sha, or None when
    every marker already had its value (nothing is committed then).

    Raises TemplateError for a bad message template, SetterError for a bad update path, and
    SourceError (credentials scrubbed) for git failures.
    """
    template = MessageTemplate.compile(spec.message_template)
    outcome = Result()

    def update(worktree: Path) -> list[str]:
        nonlocal outcome
        changed, outcome = update_tree_result(worktree, spec.path, images)
        return changed

    def message(changed: list[str]) -> str:
        return template.render(namespace=spec.namespace, name=spec.name, result=outcome, values=spec.template_values)

    return await commit_and_push(
        spec.url,
        spec.branch,
        workdir=workdir,
        update=update,
        message=message,
        author=spec.author,
        auth=auth,
        push_branch=spec.push_branch,
        attempts=spec.attempts,
        timeout=spec.timeout,
    )
