"""Post-build substitution: Flux's ``${var}`` forms, its ``$$`` escape, strict mode and the opt-out."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.gitops.kustomize.substitute import (
    SubstituteError,
    expand,
    merge_variables,
    substitute,
    variables_of,
)

names = st.from_regex(r"[_a-zA-Z][_a-zA-Z0-9]{0,10}", fullmatch=True)
plain = st.text(alphabet=string.ascii_letters + string.digits + " -_./:{}", max_size=30)


def configmap(value: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "prod", **metadata},
        "data": {"value": value},
    }


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${region}", {"region": "eu-west-1"}, "eu-west-1"),
        ("${env:=dev}", {}, "dev"),
        ("${env:=dev}", {"env": ""}, "dev"),
        ("${env:=dev}", {"env": "prod"}, "prod"),
        ("${env=dev}", {"env": ""}, ""),
        ("${env:-dev}", {}, "dev"),
        ("${env-dev}", {}, "dev"),
        ("${service:=LoadBalancer}", {"version": "1.19.3"}, "LoadBalancer"),
        ("${a:=${b}-x}", {"b": "B"}, "B-x"),
        ("$${var}", {"var": "no"}, "${var}"),
        ("$$HOME and $HOME", {"HOME": "no"}, "$HOME and $HOME"),
        ("cost: 5$", {}, "cost: 5$"),
        ("${a}${b}", {"a": "1", "b": "2"}, "12"),
    ],
    ids=[
        "plain",
        "default-unset",
        "default-empty",
        "default-set",
        "equals-keeps-empty",
        "colon-minus",
        "minus",
        "seed-service",
        "nested-default",
        "escaped-braces",
        "bare-dollar-is-text",
        "trailing-dollar",
        "adjacent",
    ],
)
def test_forms(text: str, variables: dict[str, str], expected: str) -> None:
    assert expand(text, variables) == expected


def test_strict_mode_refuses_an_undefined_variable() -> None:
    with pytest.raises(SubstituteError, match='variable not set \\(strict mode\\): "cluster_region"'):
        expand("region: ${cluster_region}", {})


def test_without_strict_mode_an_undefined_variable_is_empty() -> None:
    assert expand("region: '${cluster_region}'", {}, strict=False) == "region: ''"


@pytest.mark.parametrize("text", ["${var:1:2}", "${var/a/b}", "${var^^}", "${#var}", "${}"])
def test_forms_canaryflow_does_not_implement_are_refused_by_name(text: str) -> None:
    with pytest.raises(SubstituteError, match="supported: \\$\\{var\\}"):
        expand(text, {"var": "value"})


def test_an_unterminated_default_is_an_error() -> None:
    with pytest.raises(SubstituteError, match="missing '}'"):
        expand("${var:=oops", {})


@given(text=plain)
def test_text_without_dollars_is_unchanged(text: str) -> None:
    assert expand(text, {"x": "y"}) == text


@given(name=names, value=plain, before=plain, after=plain)
def test_escaped_variables_stay_literal_and_set_ones_are_replaced(
    name: str, value: str, before: str, after: str
) -> None:
    variables = {name: value}
    assert expand(f"{before}$${{{name}}}{after}", variables) == f"{before}${{{name}}}{after}"
    assert expand(f"{before}${{{name}}}{after}", variables) == f"{before}{value}{after}"


@given(name=names, default=plain.filter(lambda s: "}" not in s), value=plain)
def test_defaults_apply_only_when_unset_or_empty(name: str, default: str, value: str) -> None:
    text = f"${{{name}:={default}}}"
    assert expand(text, {}) == default
    assert expand(text, {name: value}) == (value if value else default)


def test_objects_are_substituted_through_yaml_so_numbers_become_numbers() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "${ns}"},
        "spec": {"replicas": "${count}"},
    }
    [out] = substitute([deployment], {"ns": "prod", "count": "3"})
    assert out["metadata"]["namespace"] == "prod"
    assert out["spec"]["replicas"] == 3
    assert deployment["spec"]["replicas"] == "${count}"  # the input is not modified


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_objects_opting_out_are_left_alone(where: str) -> None:
    marked = configmap("${secret}", **{where: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}})
    [out] = substitute([marked], {})
    assert out["data"]["value"] == "${secret}"


def test_the_error_names_the_object() -> None:
    with pytest.raises(SubstituteError, match="post build failed for 'ConfigMap/prod/settings': variable not set"):
        substitute([configmap("${token}")], {"other": "x"})


def test_invalid_variable_names_are_refused() -> None:
    with pytest.raises(SubstituteError, match="'cluster-region' var name is invalid"):
        substitute([configmap("x")], {"cluster-region": "eu"})


def test_variables_from_configmaps_and_secrets_follow_flux_precedence() -> None:
    first = variables_of({"kind": "ConfigMap", "data": {"version": "1.18", "env": "dev"}})
    second = variables_of(
        {"kind": "Secret", "metadata": {"name": "s"}, "data": {"version": "MS4xOS4z"}, "stringData": {"token": "t"}}
    )
    assert second == {"version": "1.19.3", "token": "t"}
    merged = merge_variables({"env": "prod"}, [first, second])
    assert merged == {"version": "1.19.3", "env": "prod", "token": "t"}  # later sources win; inline wins over all


def test_a_secret_that_is_not_base64_is_named() -> None:
    with pytest.raises(SubstituteError, match=r"data\.token is not base64"):
        variables_of({"kind": "Secret", "metadata": {"name": "s", "namespace": "prod"}, "data": {"token": "%%%"}})


def test_substituted_values_are_read_as_the_api_server_reads_them() -> None:
    """A date stays text (as in Kubernetes, and as JSON can store it); ``true`` becomes a boolean."""
    [out] = substitute([configmap("${day}", labels={"enabled": "${flag}"})], {"day": "2024-01-01", "flag": "true"})
    assert out["data"]["value"] == "2024-01-01"
    assert out["metadata"]["labels"]["enabled"] is True
