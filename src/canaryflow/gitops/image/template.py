"""Commit messages for image updates, from ``spec.git.commit.messageTemplate`` as Flux renders them.

The template is Go ``text/template`` (the subset in ``gotemplate``) over the data Flux documents::

    .AutomationObject           the ImageUpdateAutomation, printed "namespace/name"; .Name, .Namespace
    .Changed.FileChanges        map file -> (map object -> [change]); files relative to spec.update.path
    .Changed.Objects            map object -> [change]
    .Changed.Changes            [change]
    .Values                     spec.git.commit.messageTemplateValues
    object (map key)            .Name .Namespace .APIVersion .Kind
    change                      .OldValue .NewValue .Setter

Without a template the message is Flux's default, "Update from image update automation". The removed
``.Updated`` (v1beta1) and ``.Changed.ImageResult`` fields are rejected with the same advice Flux gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from canaryflow.gitops.image import gotemplate
from canaryflow.gitops.image.gotemplate import STR, Struct, TemplateError
from canaryflow.gitops.image.setters import Change, ObjectId, Result

__all__ = ["DEFAULT_TEMPLATE", "MessageTemplate", "TemplateError", "render"]

DEFAULT_TEMPLATE = "Update from image update automation"

_CHANGE = ("Change", {"OldValue": STR, "NewValue": STR, "Setter": STR})
_OBJECT = ("ObjectIdentifier", {"Name": STR, "Namespace": STR, "APIVersion": STR, "Kind": STR})
_OBJECTS = ("map", _OBJECT, ("list", _CHANGE))
SCHEMA = (
    "TemplateData",
    {
        "AutomationObject": ("NamespacedName", {"Name": STR, "Namespace": STR}),
        "Changed": (
            "Result",
            {"FileChanges": ("map", STR, _OBJECTS), "Objects": _OBJECTS, "Changes": ("list", _CHANGE)},
        ),
        "Values": ("map", STR, STR),
    },
)
_REMOVED = {
    ("TemplateData", "Updated"): "template uses removed '.Updated' field; use '.Changed' instead",
    ("Result", "ImageResult"): (
        "template uses removed '.Changed.ImageResult' field; use '.Changed.FileChanges' or '.Changed.Objects' instead"
    ),
}


def _change(c: Change) -> Struct:
    return Struct("Change", (("OldValue", c.old_value), ("NewValue", c.new_value), ("Setter", c.setter)))


def _object(o: ObjectId) -> Struct:
    return Struct(
        "ObjectIdentifier",
        (("Name", o.name), ("Namespace", o.namespace), ("APIVersion", o.api_version), ("Kind", o.kind)),
    )


def _objects(objects: Mapping[ObjectId, list[Change]]) -> dict[Struct, list[Struct]]:
    return {_object(o): [_change(c) for c in cs] for o, cs in objects.items()}


def template_data(namespace: str, name: str, result: Result, values: Mapping[str, str] | None = None) -> Struct:
    """The value a template is rendered with, shaped like Flux's ``TemplateData``."""
    changed = Struct(
        "Result",
        (
            ("FileChanges", {f: _objects(objs) for f, objs in result.file_changes.items()}),
            ("Objects", _objects(result.objects())),
            ("Changes", [_change(c) for c in result.changes()]),
        ),
    )
    automation = Struct("NamespacedName", (("Name", name), ("Namespace", namespace)), text=f"{namespace}/{name}")
    return Struct(
        "TemplateData", (("AutomationObject", automation), ("Changed", changed), ("Values", dict(values or {})))
    )


@dataclasses.dataclass(frozen=True)
class MessageTemplate:
    """A parsed and checked template; build it when the automation is read so mistakes surface early."""

    source: str
    nodes: tuple[Any, ...]

    @classmethod
    def compile(cls, source: str | None) -> MessageTemplate:
        """Parse and type-check ``source`` (None or empty: Flux's default). Raises TemplateError."""
        text = source or DEFAULT_TEMPLATE
        nodes = gotemplate.parse(text)
        gotemplate.check(nodes, SCHEMA, _REMOVED)
        return cls(text, tuple(nodes))

    def render(self, *, namespace: str, name: str, result: Result, values: Mapping[str, str] | None = None) -> str:
        return gotemplate.execute(list(self.nodes), template_data(namespace, name, result, values))


def render(
    source: str | None, *, namespace: str, name: str, result: Result, values: Mapping[str, str] | None = None
) -> str:
    """Compile and render in one step."""
    return MessageTemplate.compile(source).render(namespace=namespace, name=name, result=result, values=values)
