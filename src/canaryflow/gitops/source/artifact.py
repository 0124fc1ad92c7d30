"""Artifact storage: one immutable directory per (key, revision, ignore rules), written atomically, GC'd.

Layout under the source's root::

    artifacts/<quoted key>/<sha>[-<ignore hash>]/          the tree (files read-only)
    artifacts/<quoted key>/<sha>[-<ignore hash>].sha256     its digest; written last, so it marks completeness

A tree is prepared in a temporary sibling directory and renamed into place, so readers never see half a tree.
Reusing a finished directory rewrites nothing (its digest file's mtime is touched, which is what the garbage
collector orders by); the newest :data:`KEEP` artifacts per key are kept, which is enough for a consumer that
is still reading the previous revision while the next one is being fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from canaryflow.gitops.source.ignore import IgnoreRules

KEEP = 2
_SUFFIX = ".sha256"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, key: str) -> Path:
        return self.root / quote(key, safe="")

    def path(self, key: str, sha: str, ignore: str | None) -> Path:
        name = sha if ignore is None else f"{sha}-{hashlib.sha256(ignore.encode()).hexdigest()[:12]}"
        return self.directory(key) / name

    def existing(self, path: Path) -> str | None:
        """The digest of a finished artifact at ``path`` (touching it as most recently used), or None."""
        marker = path.with_name(path.name + _SUFFIX)
        if not (path.is_dir() and marker.is_file()):
            return None
        os.utime(marker)
        return marker.read_text().strip()

    async def create(self, path: Path, ignore: str | None, export: Callable[[Path], Awaitable[None]]) -> str:
        """Build the artifact at ``path``: ``export`` writes the raw tree into a temporary directory, then the
        ignore rules are applied, the tree is made read-only, renamed into place and its digest recorded."""
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            await export(staging)
            apply_ignore(staging, IgnoreRules.load(staging, ignore))
            digest = tree_digest(staging)
            _read_only(staging)
            if path.exists():  # an unfinished earlier attempt (no digest file): replace it
                _remove(path)
            staging.rename(path)
        except BaseException:
            _remove(staging)
            raise
        marker = path.with_name(path.name + _SUFFIX)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(digest + "\n")
        tmp.rename(marker)
        return digest

    def collect(self, key: str, current: Path) -> None:
        """Delete all but the :data:`KEEP` most recently used artifacts of ``key`` (never ``current``)."""
        directory = self.directory(key)
        markers = sorted(directory.glob("*" + _SUFFIX), key=lambda m: m.stat().st_mtime_ns, reverse=True)
        keep = {current.name} | {m.name.removesuffix(_SUFFIX) for m in markers[:KEEP]}
        for marker in markers:
            name = marker.name.removesuffix(_SUFFIX)
            if name not in keep:
                marker.unlink(missing_ok=True)
                _remove(directory / name)


def apply_ignore(tree: Path, rules: IgnoreRules) -> None:
    """Delete excluded files, symlinks (they could point outside the artifact) and directories left empty."""
    for directory, subdirs, files in os.walk(tree, topdown=False):
        base = Path(directory)
        for name in files + [d for d in subdirs if (base / d).is_symlink()]:
            file = base / name
            if file.is_symlink() or not file.is_file() or rules.excluded(file.relative_to(tree).as_posix()):
                file.unlink()
        if base != tree and not any(base.iterdir()):
            base.rmdir()


def tree_digest(tree: Path) -> str:
    """``sha256:<hex>`` over every file's relative path, size and content, in sorted path order."""
    digest = hashlib.sha256()
    files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    for name in files:
        content = (tree / name).read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return f"sha256:{digest.hexdigest()}"


def _read_only(tree: Path) -> None:
    for file in tree.rglob("*"):
        if file.is_file() and not file.is_symlink():
            file.chmod(file.stat().st_mode & 0o555)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
