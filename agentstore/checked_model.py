"""`CheckedModel`: a pydantic model whose bad values raise agentstore's own error.

pydantic raises its `ValidationError` for a bad value given to a model or assigned to a
field (with `validate_assignment`); agentstore's public models (`Event`, `Metadata`,
`Budget`) raise their agentstore error instead, naming what was invalid, as every bad
input does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from agentstore.errors import InvalidInputError

__all__ = ["CheckedModel", "brief"]


class CheckedModel(BaseModel):
    """A model raising `invalid_error` (`"invalid <invalid_what>: ..."`) for bad values."""

    invalid_error: ClassVar[type[InvalidInputError]] = InvalidInputError
    """The error raised (`InvalidInputError` or a subclass)."""
    invalid_what: ClassVar[str] = "value"
    """What the message calls the model."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self.invalid_error(f"invalid {self.invalid_what}: {brief(exc)}") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise self.invalid_error(f"invalid {self.invalid_what}: {brief(exc)}") from exc


def brief(exc: ValidationError) -> str:
    """A pydantic error on one line: `where: what` for each problem, without the links
    and the repeated "N validation errors for ..." headers of nested models."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        what = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {what}" if where else what)
    return "; ".join(parts)
