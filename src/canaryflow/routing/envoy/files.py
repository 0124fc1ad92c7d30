"""The xDS files Envoy watches, written by atomic rename, and a copy of the last set Envoy accepted.

Envoy keeps serving its old configuration when it rejects a file, but a restarted Envoy reads whatever is on
disk: so every file Envoy has confirmed is copied to ``last-good/``, and a rejected or unconfirmed file is
replaced by that copy before Envoy could ever start from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Json = dict[str, Any]
BOOTSTRAP = "bootstrap"


class XdsFiles:
    """``<directory>/<name>.json`` for each xDS document, and ``<directory>/last-good/`` beside them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.good = directory / "last-good"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.good.mkdir(exist_ok=True)

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        """The xDS documents on disk (the bootstrap is not one)."""
        return sorted(p.stem for p in self.directory.glob("*.json") if p.stem != BOOTSTRAP)

    def read(self, name: str) -> Json | None:
        try:
            data = json.loads(self.path(name).read_text())
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def version(self, name: str) -> str | None:
        doc = self.read(name)
        version = doc.get("version_info") if doc else None
        return version if isinstance(version, str) else None

    def write(self, name: str, document: Json) -> None:
        """Replace ``name`` in one rename: Envoy sees the old file or the new one, never half of it."""
        _replace(self.path(name), json.dumps(document, indent=1, sort_keys=True))

    def remove(self, name: str) -> None:
        """Forget a file no listener uses any more, and its last good copy."""
        self.path(name).unlink(missing_ok=True)
        (self.good / f"{name}.json").unlink(missing_ok=True)

    def mark_good(self, names: list[str]) -> None:
        """Envoy serves these files as they are on disk: keep them as the ones to restart from."""
        for name in names:
            if self.path(name).exists():
                _replace(self.good / f"{name}.json", self.path(name).read_text())

    def restore_last_good(self) -> list[str]:
        """Put the last accepted copies back where they differ from the live files; the names restored."""
        restored = []
        for copy in sorted(self.good.glob("*.json")):
            live = self.directory / copy.name
            text = copy.read_text()
            if not live.exists() or live.read_text() != text:
                _replace(live, text)
                restored.append(copy.stem)
        return restored

    def write_bootstrap(self, document: Json) -> Path:
        path = self.path(BOOTSTRAP)
        _replace(path, json.dumps(document, indent=1))
        return path


def _replace(path: Path, text: str) -> None:
    # The temporary file is created in place, not moved, so Envoy's directory watch ignores it.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
