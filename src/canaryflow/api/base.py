"""The strict base model every resource model derives from.

Unknown fields are errors (a typo like ``stepWeigth`` must never be ignored silently); fields are written in
Python as snake_case and read and written in YAML/JSON as Kubernetes' camelCase.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """A frozen, strict resource fragment with camelCase aliases."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
        str_strip_whitespace=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The fragment as Kubernetes would print it: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(BaseModel):
    """The part of Kubernetes' ObjectMeta canaryflow reads; other metadata fields are kept, not checked."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, alias_generator=to_camel)

    name: str
    namespace: str = "default"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    generation: int | None = None
    resource_version: str | None = None
    uid: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        """A metadata field written as null is not set, as the API server reads it; kept, an unknown one would
        vanish when the object is written back (``to_dict`` leaves out what is unset)."""
        if isinstance(data, dict) and None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data
