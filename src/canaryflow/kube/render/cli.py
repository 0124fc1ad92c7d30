"""``canaryflow kube render``: print, offline, every object the operator would create or patch for some manifests.

The manifests are read as ``canaryflow validate`` reads them (files, directories, ``-`` for stdin), except that a
directory holding a ``kustomization.yaml`` is built with ``kubectl kustomize``, as Flux would build it. Output is
one YAML stream on ``out`` (keys sorted, as ``kubectl get -o yaml`` prints them); problems and notes go to
``err``. Exit status: 0 rendered, 1 the manifests are invalid or lack what the operator needs, 2 bad arguments.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, TextIO

import yaml

from canaryflow.api import loader, validate
from canaryflow.kube.render import meta, render

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def run_render(paths: list[str], weight: int, phase: str, out: TextIO, err: TextIO) -> int:
    """Render the objects for the Canaries in ``paths`` at ``weight`` in ``phase`` (empty: Initialized at
    weight 0, Progressing above)."""
    if not paths:
        err.write("error: nothing to render: give files or directories with -f (- for stdin)\n")
        return 2
    try:
        resolved = render.parse_phase(phase) if phase else render.default_phase(weight)
    except meta.RenderError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if not 0 <= weight <= render.TOTAL:
        err.write(f"error: --weight must be 0..{render.TOTAL} (got {weight})\n")
        return 2
    loaded = loader.Loaded()
    for path in paths:
        loaded.extend(_load(path))
    report = validate.validate_documents(loaded.documents)
    problems = [*(str(p) for p in loaded.problems), *(str(p) for p in report.problems)]
    if problems:
        err.writelines(f"{problem}\n" for problem in problems)
        return 1
    try:
        rendering = render.render([d.body for d in loaded.documents], weight, resolved)
    except meta.RenderError as exc:
        err.write(f"error: {exc}\n")
        return 1
    err.writelines(f"note: {note}\n" for note in rendering.notes)
    out.write(
        f"# canaryflow kube render: the objects the operator creates or patches at weight {weight}, phase {resolved}.\n"
        "# Owner references name the Canary's uid by a placeholder: review this output, do not apply it.\n"
    )
    out.write(to_yaml(rendering.objects))
    return 0


def to_yaml(objects: list[meta.Json]) -> str:
    """The objects as one YAML stream: sorted keys, multi-line strings as literal blocks, no line folding."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=True, width=1 << 20, allow_unicode=True, explicit_start=True
    )


def _load(path: str) -> loader.Loaded:
    directory = Path(path)
    if path != loader.STDIN and directory.is_dir() and any((directory / k).is_file() for k in KUSTOMIZATIONS):
        return _kustomize(directory)
    return loader.load_paths([path])


def _kustomize(directory: Path) -> loader.Loaded:
    try:
        built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        return loader.Loaded(
            problems=[loader.LoadProblem(str(directory), 0, "kubectl is needed to build a kustomization")]
        )
    except subprocess.TimeoutExpired:
        return loader.Loaded(problems=[loader.LoadProblem(str(directory), 0, "kubectl kustomize took over 120 s")])
    if built.returncode != 0:
        message = f"kubectl kustomize failed: {built.stderr.strip()}"
        return loader.Loaded(problems=[loader.LoadProblem(str(directory), 0, message)])
    return loader.load_text(built.stdout, f"{directory} (kustomize)")


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper with Kubernetes' habits: literal blocks for text such as scripts and configs."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
