"""Pydantic's validation errors in the words of someone who wrote the YAML.

Pydantic says "Input should be a valid integer" or "Extra inputs are not permitted"; a user wants to read
"expected a whole number, got "ten"" and "unknown field; did you mean stepWeight?". Every rephrasing lives
here, keyed by pydantic's error type, so new ones are added in one place.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from canaryflow.api import suggest
from canaryflow.api.duration import Duration

# What each pydantic type error expected, in words; the input is quoted back after "got".
_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be above {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be below {}"),
}
_LONGEST_QUOTE = 60


def describe(model: type[BaseModel], where: suggest.Located, error: ErrorDetails) -> str:
    """One error as a sentence (the path is printed before it, so it is not repeated)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field(model, error["loc"])
    if kind in ("literal_error", "enum"):
        return _one_of(where.expected, value, str(ctx.get("expected", "")))
    if kind in _EXPECTED:
        if kind == "string_type" and _is_duration(suggest.field_info(model, where.path)):
            return _type_mismatch("a duration such as 30s, 1m or 1m30s", value)
        return _type_mismatch(_EXPECTED[kind], value)
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        return f"{text.format(ctx.get(key))} (got {shown(value)})"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"needs {ctx.get('min_length')}+ characters"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items; at most {ctx.get('max_length')} are allowed"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')} (got {shown(value)})"
    if kind == "finite_number":
        return "must be a finite number"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def union(expected: Any, errors: Sequence[ErrorDetails]) -> str:
    """The errors of every member of a union (``int | str``) as one: what would have fitted."""
    # A value of the right type that breaks a rule is the real story; type mismatches of the other members
    # (the string member of int | str complaining about 70000) are noise then.
    specific = [e for e in errors if e["type"] not in _EXPECTED]
    if specific:
        return "; ".join(dict.fromkeys(str(e["msg"]) for e in specific))
    wanted = [_EXPECTED_OF.get(m, getattr(m, "__name__", str(m))) for m in suggest.alternatives(expected)]
    return _type_mismatch(" or ".join(dict.fromkeys(wanted)), errors[0].get("input"))


_EXPECTED_OF: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def shown(value: Any) -> str:
    """A value the user wrote, quoted back as YAML would show it."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= _LONGEST_QUOTE else text[: _LONGEST_QUOTE - 4] + '..."'
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _type_mismatch(expected: str, value: Any) -> str:
    if value is None:
        return f"has no value; expected {expected}"
    message = f"expected {expected}, got {shown(value)}"
    if expected == "a string" and isinstance(value, int | float | bool):
        # YAML reads 8080, 1.0 or true as numbers and booleans; Kubernetes wants the text quoted.
        message += f' (quote it: "{shown(value)}")'
    elif expected != "a string" and isinstance(value, str) and _unquoted(value, expected):
        message += " (remove the quotes)"
    return message


def _unquoted(text: str, expected: str) -> bool:
    """Whether ``text`` would be the value expected if it were written without quotes."""
    if expected == "true or false":
        return text in ("true", "false")
    try:
        number = float(text)
    except ValueError:
        return False
    return expected == "a number" or number.is_integer()


def _unknown_field(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    name = str(loc[-1]) if loc else ""
    container = suggest.walk(model, loc[:-1]).expected
    valid = suggest.field_names(container)
    guess = suggest.closest(name, valid)
    if guess:
        return f"unknown field; did you mean {guess}?"
    if valid:
        return "unknown field; valid fields here: " + ", ".join(valid)
    return "unknown field"


def _one_of(expected: Any, value: Any, fallback: str) -> str:
    choices = [c for c in typing.get_args(expected) if isinstance(c, str)]
    if typing.get_origin(expected) is not typing.Literal or not choices:
        return f"must be {fallback} (got {shown(value)})"
    listed = ", ".join(c if c else '""' for c in choices)
    message = f"must be one of {listed} (got {shown(value)})"
    guess = suggest.closest(value, [c for c in choices if c]) if isinstance(value, str) and value else None
    return f"{message}; did you mean {guess}?" if guess else message


_DURATION_CHECK = typing.get_args(Duration)[1]


def _is_duration(info: FieldInfo | None) -> bool:
    """Whether a field holds a Go duration, which a bare number (``interval: 15``) is not."""
    if info is None:
        return False
    if _DURATION_CHECK in info.metadata:
        return True
    return any(
        typing.get_origin(member) is typing.Annotated and _DURATION_CHECK in typing.get_args(member)
        for member in typing.get_args(info.annotation)
    )
