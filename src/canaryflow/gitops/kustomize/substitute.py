"""Post-build variable substitution (``postBuild.substitute`` / ``substituteFrom``), as kustomize-controller does it.

Flux substitutes in each built object's YAML text and reads the result back, so ``replicas: ${count}`` becomes
a number when ``count`` is ``"3"``. What is recognised is Flux's envsubst: only ``${...}`` opens a variable (a bare
``$var`` is text, kept for shell scripts in ConfigMaps), ``$$`` is an escaped ``$`` (``$${var}`` stays
``${var}``), and the forms ``${var}``, ``${var:=default}``/``${var:-default}`` (default when unset or empty) and
``${var=default}``/``${var-default}`` (default when unset). Flux's other bash forms (``${var:1:2}``,
``${var/a/b}``...) are refused by name rather than passed through half-done.

An undefined variable without a default fails the build (Flux's ``StrictPostBuildSubstitutions``, on by default
since kustomize-controller v1.9 / Flux 2.9); ``strict=False`` gives the older behaviour, an empty string.
Objects labelled or annotated ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left alone.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from canaryflow.gitops.kustomize.build import BuildError, KubeYamlLoader
from canaryflow.gitops.target.base import ObjRef

SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
#: Flux's check on variable names: ``^[_[:alpha:]][_[:alpha:][:digit:]]*$``.
VARIABLE_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_IDENT = re.compile(r"[_a-zA-Z0-9]+")
_DEFAULT_OPERATORS = (":=", ":-", "=", "-")
SUPPORTED = "${var}, ${var:=default}, ${var:-default}, ${var=default}, ${var-default}"


class SubstituteError(BuildError):
    """A variable could not be substituted; the message names the object (Flux: ``post build failed for``)."""


def substitute(
    objects: list[dict[str, Any]], variables: Mapping[str, str], *, strict: bool = True
) -> list[dict[str, Any]]:
    """``objects`` with variables substituted (new dicts; the input is not changed)."""
    for name in variables:
        if not VARIABLE_NAME.match(name):
            raise SubstituteError(f"'{name}' var name is invalid, must match '{VARIABLE_NAME.pattern}'")
    out = []
    for obj in objects:
        if _disabled(obj):
            out.append(copy.deepcopy(obj))
            continue
        text = yaml.dump(obj, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=1 << 20)
        if "$" not in text:
            out.append(copy.deepcopy(obj))
            continue
        ref = ObjRef.of(obj)
        try:
            value = yaml.load(expand(text, variables, strict=strict), Loader=KubeYamlLoader)
        except SubstituteError as exc:
            raise SubstituteError(f"post build failed for '{ref}': {exc}") from None
        except yaml.YAMLError as exc:
            raise SubstituteError(f"post build failed for '{ref}': the result is not valid YAML: {exc}") from None
        if not isinstance(value, dict):
            raise SubstituteError(f"post build failed for '{ref}': the result is not an object")
        out.append(value)
    return out


def expand(text: str, variables: Mapping[str, str], *, strict: bool = True) -> str:
    """``text`` with every ``${...}`` replaced and every ``$$`` made ``$``."""
    return _expand(text, 0, variables, strict, closing=False)[0]


def _expand(text: str, start: int, variables: Mapping[str, str], strict: bool, *, closing: bool) -> tuple[str, int]:
    """Expand from ``start`` to the end, or (``closing``) to the ``}`` that ends a default; returns the text and
    the index after it."""
    out: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if closing and char == "}":
            return "".join(out), i + 1
        if char == "$" and text.startswith("$$", i):
            out.append("$")
            i += 2
        elif char == "$" and text.startswith("${", i):
            value, i = _variable(text, i + 2, variables, strict)
            out.append(value)
        else:
            out.append(char)
            i += 1
    if closing:
        raise SubstituteError(f"missing '}}' in {text[start - 2 : start + 40]!r}")
    return "".join(out), i


def _variable(text: str, i: int, variables: Mapping[str, str], strict: bool) -> tuple[str, int]:
    found = _IDENT.match(text, i)
    if found is None:
        raise SubstituteError(f"bad substitution {_snippet(text, i)}: no variable name (supported: {SUPPORTED})")
    name, i = found.group(), found.end()
    if text.startswith("}", i):
        if name in variables:
            return variables[name], i + 1
        if strict:
            raise SubstituteError(f'variable not set (strict mode): "{name}"')
        return "", i + 1
    operator = next((op for op in _DEFAULT_OPERATORS if text.startswith(op, i)), None)
    if operator is None:
        raise SubstituteError(f"unsupported substitution {_snippet(text, i)} (supported: {SUPPORTED})")
    default, end = _expand(text, i + len(operator), variables, strict, closing=True)
    value = variables.get(name)
    use_default = value is None or (operator.startswith(":") and value == "")
    return (default if use_default else str(value)), end


def _snippet(text: str, i: int) -> str:
    start = text.rfind("${", 0, i)
    stop = text.find("}", i)
    return repr(text[start : stop + 1 if stop >= 0 else i + 20])


def _disabled(obj: Mapping[str, Any]) -> bool:
    metadata = obj.get("metadata") or {}
    marks = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    return str(marks.get(SUBSTITUTE_ANNOTATION, "")).lower() == "disabled"


def variables_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The variables a ConfigMap or Secret named in ``substituteFrom`` provides: its data keys (a Secret's data
    base64-decoded, and its ``stringData``)."""
    kind = obj.get("kind")
    data = obj.get("data") or {}
    if kind == "ConfigMap":
        return {str(k): str(v) for k, v in data.items()}
    if kind == "Secret":
        out = {}
        for key, value in data.items():
            try:
                out[str(key)] = base64.b64decode(str(value), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise SubstituteError(f"Secret {ObjRef.of(obj)}: data.{key} is not base64 text") from exc
        out.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
        return out
    raise SubstituteError(f"substituteFrom: kind {kind!r} is not supported (ConfigMap, Secret)")


def merge_variables(inline: Mapping[str, str], sources: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Flux's precedence: later ``substituteFrom`` entries override earlier ones; the inline map wins over all."""
    merged: dict[str, str] = {}
    for source in sources:
        merged.update(source)
    merged.update(inline)
    return merged
