"""Which files of a checkout go into an artifact: Flux's ``.sourceignore`` rules.

Flux (fluxcd/pkg ``sourceignore`` and source-controller's archive filter) works like this, and so does this module:

- patterns use .gitignore syntax (matched with ``pathspec``'s git implementation); a ``.sourceignore`` file in a
  sub-directory applies to paths below that directory only;
- the order is: the root ``.sourceignore``, nested ``.sourceignore`` files (depth first), then ``spec.ignore``;
  the last pattern that matches a file decides (so ``!keep.yaml`` in ``spec.ignore`` can re-include a file);
- the VCS patterns (``.git/``, ``.gitignore``, ``.gitmodules``, ``.gitattributes``) always apply;
- the other defaults (media and archives, CI configs, ``.sops.yaml``...) apply only when there are no user
  patterns at all: a ``spec.ignore`` or any ``.sourceignore`` replaces them.

Unlike git, an excluded directory does not hide a later ``!`` re-inclusion of a file inside it: Flux matches each
file on its own, and so does this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pathspec

IGNORE_FILE = ".sourceignore"
VCS_PATTERNS = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
DEFAULT_PATTERNS = (
    # media and archives
    *("*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip"),
    # CI configuration
    *(".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml", "cloudbuild.yaml"),
    *("codeship-services.yml", "codeship-steps.yml"),
    # other tools' configuration
    *("**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"),
)


@dataclasses.dataclass(frozen=True)
class _Layer:
    domain: PurePosixPath  # the directory the patterns are relative to ("." for the root)
    spec: pathspec.GitIgnoreSpec


@dataclasses.dataclass(frozen=True)
class IgnoreRules:
    layers: tuple[_Layer, ...]

    @classmethod
    def load(cls, root: Path, ignore: str | None) -> IgnoreRules:
        """Rules for the tree at ``root``: its ``.sourceignore`` files plus ``ignore`` (``spec.ignore``)."""
        user: list[_Layer] = []
        for file in _ignore_files(root):
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
            domain = PurePosixPath(file.parent.relative_to(root).as_posix())
            user.extend(_layer(domain, lines))
        if ignore is not None:
            user.extend(_layer(PurePosixPath("."), ignore.splitlines()))
        defaults = [] if user else list(_layer(PurePosixPath("."), DEFAULT_PATTERNS))
        return cls((*_layer(PurePosixPath("."), VCS_PATTERNS), *defaults, *user))

    def excluded(self, path: str) -> bool:
        """Whether the file at ``path`` (relative, ``/``-separated) is left out of the artifact."""
        file = PurePosixPath(path)
        for layer in reversed(self.layers):
            if layer.domain != PurePosixPath(".") and layer.domain not in file.parents:
                continue
            result = layer.spec.check_file(file.relative_to(layer.domain).as_posix())
            if result.include is not None:
                return result.include
        return False


def _layer(domain: PurePosixPath, lines: Iterable[str]) -> Iterable[_Layer]:
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    if patterns:
        yield _Layer(domain, pathspec.GitIgnoreSpec.from_lines(patterns))


def _ignore_files(root: Path) -> list[Path]:
    """``.sourceignore`` files, the root's first, then each directory's, depth first in name order."""
    found: list[Path] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        if (directory / IGNORE_FILE).is_file():
            found.append(directory / IGNORE_FILE)
        children = sorted((p for p in directory.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True)
        stack.extend(c for c in children if c.name != ".git")
    return found
