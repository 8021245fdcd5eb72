"""The thin layer between pydantic and the user: every problem of a stack config at once, each with
its key path (`ambient-egress:grants[0].databases[0]`), what was expected and what was given.

pydantic validates; this module words its errors in the project's voice, and lets validators raise
problems that pydantic cannot word itself (`problem`), optionally a few keys below where they run.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic
from pydantic_core import ErrorDetails, PydanticCustomError

from components.names import shown


class ConfigError(ValueError):
    """Every problem found in a stack configuration, each naming its key and the fix."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__(
            "invalid stack configuration; nothing was registered. Fix these and run again:\n"
            + "\n".join(f"  - {problem}" for problem in self.problems)
        )


PROBLEM = "ambient_egress_problem"


def problem(message: str, **context: Any) -> PydanticCustomError:
    """A problem in the project's words, for a validator to raise.

    A message may refer to another key by `{first}`: `context` then holds `first`, that key's
    location, and `own`, the problem's own location, both relative to the value that holds them,
    so the key is written out whole however deep the validator runs.
    """
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, **context})


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a map", type(None): "nothing"}.get(type(value), type(value).__name__)


def got(value: Any) -> str:
    return f"(got {type_name(value)} {shown(value)})"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def key_path(prefix: str, location: Sequence[str | int]) -> str:
    """`ambient-egress:grants[0].databases[1]` from `('grants', 0, 'databases', 1)`."""
    text = prefix
    for index, part in enumerate(location):
        if index == 0:
            text += str(part)
        elif isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}"
    return text


def describe(error: ErrorDetails, root: type[pydantic.BaseModel], prefix: str) -> tuple[tuple[str | int, ...], str] | None:
    """Where a pydantic error sits and what it says, in the project's words; None for an error that
    only repeats others (a list counted short because its entries were rejected)."""
    kind, value = error["type"], error.get("input")
    location = tuple(error["loc"])
    if kind != "extra_forbidden" and location[-1:] == ("[key]",):
        # A map key's own problem is reported at the key, without pydantic's `[key]` marker.
        location = location[:-1]
    context: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == PROBLEM:
        message = context["message"]
        if "first" in context:
            container = location[:len(location) - len(context["own"])]
            message = message.replace("{first}", key_path(prefix, container + tuple(context["first"])))
        return location, message
    if kind == "missing":
        return location, "is required"
    if kind == "extra_forbidden":
        known = field_names(model_at(root, location[:-1]))
        name = str(location[-1])
        if len(location) == 1:
            return location, f"unknown config key{did_you_mean(name, known)}"
        return location, f"unknown field{did_you_mean(name, known)} (known fields: {', '.join(known)})"
    if kind in ("list_type", "tuple_type", "iterable_type"):
        return location, f"must be a list {got(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type", "dataclass_type"):
        return location, f"must be a map {got(value)}"
    if kind in ("string_type", "string_unicode"):
        return location, f"must be a string {got(value)}"
    if kind == "too_short":
        if value:
            return None
        return location, "must not be empty; list at least one entry or remove the whole entry"
    if kind == "recursion_loop":
        return location, "is nested too deeply, or refers to itself, to be a config value"
    return location, f"{error['msg']} {got(value)}"


def field_names(model: type[pydantic.BaseModel] | None) -> tuple[str, ...]:
    """A model's keys as the user writes them, in declaration order."""
    if model is None:
        return ()
    return tuple(info.alias or name for name, info in model.model_fields.items())


def model_at(root: type[pydantic.BaseModel], location: Sequence[str | int]) -> type[pydantic.BaseModel] | None:
    """The model that validates the value at `location`, following field types through lists."""
    current: Any = root
    for part in location:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
            return None
        field = next((info for name, info in current.model_fields.items() if (info.alias or name) == part), None)
        if field is None:
            return None
        current = _element_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, pydantic.BaseModel) else None


def _element_model(annotation: Any) -> Any:
    """The model inside `Sequence[Model]`, `tuple[Model, ...]`, `Model | None` and `Annotated[...]`."""
    while True:
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            return annotation
        arguments = [argument for argument in typing.get_args(annotation) if argument is not Ellipsis]
        models = [argument for argument in arguments if _element_model(argument) is not None]
        if not models:
            return None
        annotation = models[0]
