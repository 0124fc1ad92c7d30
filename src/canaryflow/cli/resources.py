"""``canaryflow validate`` and ``canaryflow crds``: the resource front end on the command line.

``validate`` prints one line per problem on ``out`` (``FILE:LINE: KIND/NAME: PATH: MESSAGE``, easy to grep and
to jump to from an editor) and what it skipped plus a summary on ``err``; it exits 1 when anything canaryflow
owns is invalid. ``crds`` prints the CustomResourceDefinitions generated from the models.
"""

from __future__ import annotations

import collections
from typing import TextIO

from canaryflow.api import crds, validate


def run_validate(paths: list[str], out: TextIO, err: TextIO) -> int:
    """Validate every document in ``paths`` (files, directories, ``-`` for stdin); 0 when all are valid."""
    if not paths:
        err.write("error: nothing to validate: give files or directories with -f (- for stdin)\n")
        return 2
    report = validate.validate_paths(paths)
    for problem in report.problems:
        out.write(f"{problem}\n")
    for warning in report.warnings:  # a reference to nothing: legal (it may arrive later), usually a typo
        err.write(f"{warning}\n")
    if report.skipped:
        counts = collections.Counter(s.kind for s in report.skipped)
        listed = ", ".join(f"{kind} ({n})" if n > 1 else kind for kind, n in sorted(counts.items()))
        err.write(f"skipped {_count(len(report.skipped), 'document')} canaryflow does not own: {listed}\n")
    err.write(f"{_summary(report)}\n")
    return 0 if report.ok else 1


def run_crds(out: TextIO) -> int:
    """Print the CRDs of Canary, MetricTemplate and AlertProvider as one YAML stream."""
    out.write(crds.crds_yaml())
    return 0


def _summary(report: validate.Report) -> str:
    kinds = collections.Counter(resource.kind for _, resource in report.resources)
    valid = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
    verdict = "no problems" if report.ok else _count(len(report.problems), "problem")
    if report.warnings:
        verdict += f", {_count(len(report.warnings), 'warning')}"
    return f"{verdict}; valid resources: {valid}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
