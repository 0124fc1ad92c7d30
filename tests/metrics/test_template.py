"""Query templates: Flagger's placeholders, free spacing inside braces, and errors that say what is wrong."""

from __future__ import annotations

import pytest

from canaryflow.metrics.prometheus import collapse_whitespace
from canaryflow.metrics.template import QueryVariables, TemplateError, render

from .resources import seed_templates

VALUES = QueryVariables(
    name="podinfo",
    namespace="prod",
    target="backend",
    service="backend-svc",
    interval="30s",
    ingress="public",
    variables={"direction": "inbound", "max_age": "5m"},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ name }}", "podinfo"),
        ("{{namespace}}", "prod"),
        ("{{   target   }}", "backend"),
        ("{{\tservice\n}}", "backend-svc"),
        ("{{ ingress }}", "public"),
        ("[{{ interval }}]", "[30s]"),
        ("{{ variables.direction }}/{{variables.max_age}}", "inbound/5m"),
        ('x{a="{{ namespace }}"}', 'x{a="prod"}'),
        ("no placeholders {a} }}", "no placeholders {a} }}"),
    ],
    ids=[
        "name",
        "no-spaces",
        "many-spaces",
        "tabs-and-newlines",
        "ingress",
        "interval",
        "variables",
        "inside-label-matcher",
        "plain-text",
    ],
)
def test_placeholders_are_replaced(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_values_are_inserted_verbatim_not_rendered_again() -> None:
    tricky = QueryVariables("n", "ns", "t", "s", "1m", variables={"v": "{{ name }}"})
    assert render("{{ variables.v }}", tricky) == "{{ name }}"


def test_seed_error_rate_template_renders_to_the_istio_query() -> None:
    error_rate = next(t for t in seed_templates() if t.metadata.name == "error-rate")
    assert collapse_whitespace(render(error_rate.spec.query, VALUES)) == (
        '100 - sum( rate( istio_requests_total{ reporter="destination", '
        'destination_workload_namespace="prod", destination_workload=~"backend", response_code!~"5.*" }[30s] ) ) '
        '/ sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="prod", '
        'destination_workload=~"backend" }[30s] ) ) * 100'
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nmespace }}", r"unknown placeholder '\{\{ nmespace \}\}'; available: \{\{ name \}\}, \{\{ namespace"),
        ("{{ .name }}", r"unknown placeholder '\{\{ \.name \}\}'.*\{\{ variables\.<key> \}\}"),
        ("{{ variables }}", r"unknown placeholder '\{\{ variables \}\}'"),
        ("rate(x[{{ interval ]", r"'\{\{' without a matching '\}\}'"),
    ],
    ids=["misspelt", "go-dot-syntax", "variables-without-key", "unclosed"],
)
def test_malformed_templates_are_errors_naming_the_problem(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, VALUES)


def test_a_missing_variable_names_it_and_lists_the_defined_keys() -> None:
    with pytest.raises(TemplateError, match=r"\{\{ variables\.region \}\}.*defined keys: direction, max_age"):
        render("{{ variables.region }}", VALUES)


def test_a_missing_variable_without_any_template_variables_says_so() -> None:
    bare = QueryVariables("n", "ns", "t", "s", "1m")
    with pytest.raises(TemplateError, match="none \\(the metric has no templateVariables\\)"):
        render("{{ variables.region }}", bare)


def test_ingress_without_an_ingress_ref_is_an_error() -> None:
    bare = QueryVariables("n", "ns", "t", "s", "1m")
    with pytest.raises(TemplateError, match=r"\{\{ ingress \}\} but the canary has no ingressRef"):
        render("{{ ingress }}", bare)
