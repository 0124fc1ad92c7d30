"""Commit message templates: Flux's data and documented examples, and clear errors for everything else."""

from __future__ import annotations

import pytest

from canaryflow.gitops.image.setters import Change, ObjectId, Result
from canaryflow.gitops.image.template import DEFAULT_TEMPLATE, MessageTemplate, TemplateError, render

RESULT = Result(
    {
        "apps/backend/deployment.yaml": {
            ObjectId("backend", "test", "apps/v1", "Deployment"): [
                Change("ghcr.io/org/app:1.0.0", "ghcr.io/org/app:1.1.0", "flux-system:app")
            ]
        },
        "apps/backend/kustomization.yaml": {
            ObjectId("", "", "kustomize.config.k8s.io/v1beta1", "Kustomization"): [
                Change("1.0.0", "1.1.0", "flux-system:app:tag")
            ]
        },
    }
)

FLUX_DOCS_EXAMPLE = """Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
"""


def rendered(source: str | None, values: dict[str, str] | None = None) -> str:
    return render(source, namespace="flux-system", name="podinfo-update", result=RESULT, values=values)


def test_default_message_is_fluxs() -> None:
    assert rendered(None) == rendered("") == DEFAULT_TEMPLATE == "Update from image update automation"


def test_flux_documentation_example() -> None:
    # Go trims the blank line after "{{ end -}}", so "Objects:" follows the file list directly;
    # map keys are visited in sorted order (objects sort by name first, so the unnamed Kustomization leads)
    assert rendered(FLUX_DOCS_EXAMPLE) == (
        "Automated image update\n\n"
        "Automation name: flux-system/podinfo-update\n\n"
        "Files:\n"
        "- apps/backend/deployment.yaml\n"
        "- apps/backend/kustomization.yaml\n"
        "Objects:\n"
        "- kustomization \n"
        "  Changes:\n"
        "    - 1.0.0 -> 1.1.0\n"
        "- deployment backend\n"
        "  Changes:\n"
        "    - ghcr.io/org/app:1.0.0 -> ghcr.io/org/app:1.1.0\n"
    )


def test_changes_values_conditionals_and_functions() -> None:
    source = (
        "[{{ .Values.cluster }}] {{ .AutomationObject.Name }}: {{ len .Changed.Changes }} change(s)\n"
        '{{ range .Changed.Changes }}{{ if hasSuffix ":tag" .Setter }}tag {{ .NewValue }}'
        '{{ else if eq .Setter "flux-system:app" }}image {{ .NewValue | trimPrefix "ghcr.io/" }}'
        "{{ else }}other{{ end }}\n{{ end }}"
        "{{ with .Values.missing }}never{{ else }}no extra{{ end }}"
        '{{ printf " (%s)" (upper .AutomationObject.Namespace) }}'
    )
    assert rendered(source, {"cluster": "prod"}) == (
        "[prod] podinfo-update: 2 change(s)\nimage org/app:1.1.0\ntag 1.1.0\nno extra (FLUX-SYSTEM)"
    )


def test_range_else_runs_when_nothing_changed() -> None:
    source = "{{ range .Changed.Changes }}x{{ else }}nothing{{ end }}"
    assert MessageTemplate.compile(source).render(namespace="n", name="a", result=Result()) == "nothing"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ range .Updated.Images }}{{ . }}{{ end }}", "removed '.Updated' field; use '.Changed'"),
        ("{{ .Changed.ImageResult }}", "removed '.Changed.ImageResult'"),
        # a typo is caught even in a branch that would not run
        (
            "ok\n{{ if false }}{{ range .Changed.Changes }}{{ .Oldvalue }}{{ end }}{{ end }}",
            ":2: can't evaluate field Oldvalue",
        ),
        ("{{ .AutomationObject | shout }}", 'function "shout" not defined'),
        ('{{ template "x" }}', "not supported"),
        ("{{ if .Values.x }}open", "{{if}} without {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("text {{ .Values", "unclosed action"),
        ("{{ range .AutomationObject }}{{ end }}", "range can't iterate over NamespacedName"),
        ("{{ .Values.a.b }}", "can't evaluate field b in type string"),
        ("{{ lower }}", "wrong number of arguments for lower"),
    ],
)
def test_templates_outside_the_subset_fail_at_compile_time(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace("{", r"\{").replace("|", r"\|")):
        MessageTemplate.compile(source)


def test_comments_and_whitespace_trimming_follow_go() -> None:
    source = "a  {{- /* dropped */ -}}  b\n{{- 3 }} {{ -3 }}{{/* plain comment */}}"
    assert rendered(source) == "ab3 -3"
