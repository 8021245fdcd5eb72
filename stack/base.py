"""What every model of the stack config shares: frozen, camelCase-aliased, strict about unknown keys,
and a way to report several problems at once, each at its own key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, ValidationError

from components.names import shown

from .errors import PROBLEM, problem

Location = tuple[str | int, ...]
Problem = tuple[Location, str, Any, dict[str, Any]]
"""Where, what, the value found there, and the context the message refers to (see `errors.problem`)."""
ModelT = TypeVar("ModelT", bound=BaseModel)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)


def at(location: Location, message: str, value: Any = None) -> Problem:
    return location, message, value, {}


def raise_problems(problems: Iterable[Problem], error: ValidationError | None = None) -> None:
    """Raise pydantic's own findings (`error`) together with `problems`, each at its location."""
    details: list[InitErrorDetails] = []
    if error is not None:
        for found in error.errors():
            kind: Any = found["type"]
            context = found.get("ctx") or {}
            if kind == PROBLEM:
                kind = problem(**context)
            details.append(InitErrorDetails(type=kind, loc=found["loc"], input=found.get("input"), ctx=context))
    details += [InitErrorDetails(type=problem(message, **context), loc=location, input=value)
                for location, message, value, context in problems]
    if details:
        raise ValidationError.from_exception_data("stack config", details)


def duplicates(items: Iterable[tuple[Location, Any]], what: str) -> list[Problem]:
    """Each repeat of a value, at its own place, pointing at the first."""
    first: dict[Any, Location] = {}
    found = []
    for location, value in items:
        if not isinstance(value, str):
            continue
        if value in first:
            found.append((location, f"duplicate {what} {shown(value)} (first at {{first}}); each must appear once",
                          value, {"first": first[value], "own": location}))
        else:
            first[value] = location
    return found


def entries(value: Any) -> list[tuple[int, Any]]:
    """The entries of a list config value with their index; nothing when it is no list."""
    return list(enumerate(value)) if isinstance(value, list) else []


def validated_with(found: list[Problem], handler: ModelWrapValidatorHandler[ModelT], data: Any) -> ModelT:
    """Validate `data` and raise pydantic's findings and `found` together, or return the model."""
    try:
        model = handler(data)
    except ValidationError as error:
        raise_problems(found, error)
        raise
    raise_problems(found)
    return model
