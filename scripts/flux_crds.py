"""Assemble deploy/gitops/crds: Flux's current CRDs with the v1beta2 version Flux's previous releases served.

Flux's current releases serve v1 only, but the seed (and much of Flux's documentation) writes
``kustomize.toolkit.fluxcd.io/v1beta2`` and friends, which Flux 2.7's CRDs still served beside v1 (storage v1,
conversion ``None``: the two schemas are field-compatible). Each shipped file is the current CRD
(tests/fixtures/flux-crd, unchanged) with the ``v1beta2`` entry of ``spec.versions`` of the last release that
served it (tests/fixtures/flux-crd-v1beta2, unchanged) appended as text, so both parts stay byte-for-byte Flux's.

Run ``make flux-crds`` (``python scripts/flux_crds.py``); tests/deploy/test_gitops_crds.py checks the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CURRENT = ROOT / "tests" / "fixtures" / "flux-crd"
PREVIOUS = ROOT / "tests" / "fixtures" / "flux-crd-v1beta2"
SHIPPED = ROOT / "deploy" / "gitops" / "crds"
OLD_VERSION = "v1beta2"


def version_entry(text: str, version: str) -> str:
    """The text of one ``spec.versions`` item (a ``  - `` block ending where the next item or the file does)."""
    lines = text.splitlines(keepends=True)
    start = lines.index("  versions:\n") + 1
    entries: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith("  - "):
            entries.append([])
        elif line.strip() and not line.startswith("    "):
            break  # blank lines belong to block scalars
        entries[-1].append(line)
    for entry in entries:
        if f"    name: {version}\n" in entry:
            return "".join(entry)
    raise LookupError(f"no {version} in the versions")


def assemble(name: str) -> str:
    current = (CURRENT / name).read_text()
    if not current.endswith("      status: {}\n"):
        raise ValueError(f"{name}: the versions list is not at the end of the file")
    return current + version_entry((PREVIOUS / name).read_text(), OLD_VERSION)


def main() -> int:
    for path in sorted(PREVIOUS.glob("*.yaml")):
        (SHIPPED / path.name).write_text(assemble(path.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
