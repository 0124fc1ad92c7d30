"""Finding one's way through the resource models along a validation error's location.

Pydantic reports where an error is as a tuple that mixes YAML keys, list indexes and its own markers (which
member of ``int | str`` failed, for instance). :func:`walk` follows such a location through the model classes,
returning the path as the user wrote it and the type expected there; :func:`closest` picks the valid name a
misspelt one was meant to be. Together they turn ``stepWeigth`` into "did you mean stepWeight?".
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_UNIONS = (typing.Union, types.UnionType)


@dataclasses.dataclass(frozen=True, slots=True)
class Located:
    """Where a location leads: the path as written in YAML, and the type the models expect at its end
    (``None`` when the path leaves the models, e.g. inside a free-form ``status``)."""

    path: tuple[str | int, ...]
    expected: Any
    union: Any = None  # the union whose failing member pydantic named in the location, if any


def walk(root: type[BaseModel], loc: Sequence[str | int]) -> Located:
    """Follow ``loc`` from ``root``, dropping pydantic's union-member markers along the way."""
    path: list[str | int] = []
    current: Any = root
    union: Any = None
    for segment in loc:
        members = alternatives(current)
        if len(members) > 1:
            chosen = _member_for(members, segment)
            if chosen is None:  # a marker naming the union member that failed, not a key of the document
                union = current
                current = _member_named(members, segment)
                continue
            current = chosen
        elif members:
            current = members[0]
        current, keep = _step(current, segment)
        if keep:
            path.append(segment)
    return Located(tuple(path), unwrap(current), union)


def field_info(root: type[BaseModel], path: Sequence[str | int]) -> FieldInfo | None:
    """The pydantic field ``path`` (a YAML path, as :func:`walk` returns) ends at, if it ends at a field."""
    if not path:
        return None
    container = walk(root, path[:-1]).expected
    if not _is_model(container):
        return None
    fields: dict[str, FieldInfo] = container.model_fields
    return next((info for name, info in fields.items() if path[-1] in (info.alias, name)), None)


def field_names(model: Any) -> list[str]:
    """The names a model's fields are written with in YAML (their aliases)."""
    if not _is_model(model):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely meant to be: the same name in other case or with ``_``/``-``
    (``step_weight`` for ``stepWeight``), else the nearest by spelling, else None."""
    options = list(choices)
    folded = {_fold(c): c for c in options}
    if _fold(word) in folded:
        return folded[_fold(word)]
    matches = difflib.get_close_matches(_fold(word), list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def unwrap(tp: Any) -> Any:
    """``tp`` without ``Annotated`` metadata and without ``None`` in an optional."""
    members = alternatives(tp)
    return members[0] if len(members) == 1 else tp


def alternatives(tp: Any) -> list[Any]:
    """The non-None members of a union (one item for any other type), ``Annotated`` removed."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in _UNIONS:
        out: list[Any] = []
        for member in typing.get_args(tp):
            if member is not type(None):
                out.extend(alternatives(member))
        return out
    return [tp]


def _fold(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return info.annotation
    return _MISSING


_MISSING = object()


def _step(current: Any, segment: str | int) -> tuple[Any, bool]:
    """The type one segment further down, and whether the segment is part of the document's path."""
    origin = typing.get_origin(current)
    if _is_model(current):
        found = _field_type(current, str(segment))
        if found is not _MISSING:
            return found, True
        extra = current.model_config.get("extra")
        return None, extra == "allow" or isinstance(segment, str)
    if origin in (list, tuple) or current in (list, tuple):
        args = typing.get_args(current)
        return (args[0] if args else None), True
    if origin is dict or current is dict:
        args = typing.get_args(current)
        # "[key]" is pydantic's marker for an error in a mapping's key rather than its value.
        if isinstance(segment, str) and segment == "[key]":
            return None, False
        return (args[1] if len(args) == 2 else None), True
    if current is None or current is Any:
        return None, True  # free-form data (status, extra metadata): every segment is the user's key
    # A scalar has no children: what follows it is a marker of pydantic's (e.g. "function-after[...]").
    return current, False


def _member_for(members: list[Any], segment: str | int) -> Any:
    """The member of a union that ``segment`` is a key or index of, if any."""
    for member in members:
        origin = typing.get_origin(member)
        if isinstance(segment, int) and (origin in (list, tuple) or member in (list, tuple)):
            return member
        if isinstance(segment, str):
            if _is_model(member) and _field_type(member, segment) is not _MISSING:
                return member
            if origin is dict or member is dict:
                return member
    return None


def _member_named(members: list[Any], marker: str | int) -> Any:
    """The member a pydantic union marker (``int``, ``str``, a model's name) stands for; the union itself
    when it names none (e.g. ``function-after[...]``)."""
    for member in members:
        name = getattr(member, "__name__", None)
        if name is not None and name == marker:
            return member
    return typing.Union[tuple(members)]  # noqa: UP007 - built at run time from a list
