"""Every bench script starts the way `make bench` runs it (``python bench/X.py``), so a broken bench fails CI.

Benches measure speed and take minutes, so CI does not run them; but a script that cannot even start (an import
error, a bench named after a standard-library module that then shadows it for every script in the directory)
would go unnoticed until someone types `make bench`. ``--help`` imports everything and stops before measuring.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))
#: The benches `make bench` runs, in its order.
MAKE_BENCHES = re.findall(r"\$\(PY\) (bench/\S+\.py)", (ROOT / "Makefile").read_text())


def test_make_bench_runs_every_bench_script() -> None:
    benches = {p.relative_to(ROOT).as_posix() for p in SCRIPTS if not p.name.startswith("_")}
    assert sorted(MAKE_BENCHES) == sorted(benches)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_no_bench_file_shadows_a_standard_library_module(script: Path) -> None:
    # The script's directory is first on sys.path, so bench/operator.py once broke `import enum` in every bench.
    assert script.stem not in sys.stdlib_module_names


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_starts_as_make_bench_runs_it(script: Path) -> None:
    run = subprocess.run(
        [sys.executable, script.relative_to(ROOT).as_posix(), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    if not script.name.startswith("_"):
        assert run.stdout.startswith("usage:"), run.stdout
