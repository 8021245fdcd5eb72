"""Where a stack config comes from, read the way Pulumi reads it.

`pulumi up` hands a program its config as strings: scalars as their text, lists and maps as JSON.
A stack file read here takes the same path (`pulumi_form`, then `parse_pulumi_config`), and is read
with YAML 1.2 as Pulumi reads it: `yes` and `on` are strings, a date is a string, a key given twice
is an error. So `make plan` judges exactly the config `pulumi up` would get.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError, describe, key_path
from .model import PROJECT, StackConfig

try:  # libyaml's parser is about eight times faster on large stack files; the result is the same.
    _BaseLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

# Pulumi keeps its own keys beside the config in a stack file.
_STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")


# --- Pulumi's string form -------------------------------------------------------------------------

def pulumi_form(values: Mapping[str, Any]) -> dict[str, str]:
    """Config values as the Pulumi CLI hands them to a program: text as it is, anything else as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def parse_config(values: Mapping[Any, Any], project: str = PROJECT) -> StackConfig:
    """Validate config values keyed without the project prefix, structured or in Pulumi's string
    form; every problem is reported at once, or none."""
    try:
        return StackConfig.model_validate(dict(values), context={})
    except ValidationError as error:
        prefix = f"{project}:"
        described = (describe(found, StackConfig, prefix) for found in error.errors(include_url=False))
        problems = [found for found in described if found is not None]
        raise ConfigError(key_path(prefix, location) + f": {message}" for location, message in _in_order(problems)) from None
    except RecursionError:
        raise ConfigError([f"{project}: the config is nested too deeply to be read"]) from None


def _in_order(problems: list[tuple[tuple[str | int, ...], str]]) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems in the order of the keys that hold them; those at one key keep pydantic's order."""
    keys = [info.alias or name for name, info in StackConfig.model_fields.items()]

    def position(location: tuple[str | int, ...]) -> tuple[int, int]:
        top = keys.index(location[0]) if location and location[0] in keys else -1
        entry = next((part for part in location[1:] if isinstance(part, int)), -1)
        return top, entry

    return sorted(problems, key=lambda found: position(found[0]))


def parse_pulumi_config(raw: Mapping[str, str], project: str = PROJECT, *,
                        secret_keys: frozenset[str] = frozenset()) -> StackConfig:
    """Validate config as Pulumi hands it to a program: `<namespace>:<key>` → text. Keys are taken in
    name order, so the problems are listed alike however the keys arrived (the engine's come as a set)."""
    prefix = f"{project}:"
    raw = dict(sorted(raw.items()))
    problems = [problem for key in raw if (problem := _foreign_key_problem(key, project))]
    problems += [
        f"{key}: is stored as a secret, but its values name and address Kubernetes objects, which are never "
        "secret in the cluster or in the state; set it without --secret"
        for key in sorted(secret_keys) if key.startswith(prefix)
    ]
    values = {key[len(prefix):]: text for key, text in raw.items() if key.startswith(prefix)}
    try:
        config = parse_config(values, project)
    except ConfigError as error:
        raise ConfigError([*problems, *error.problems]) from None
    if problems:
        raise ConfigError(problems)
    return config


def _foreign_key_problem(key: str, project: str) -> str | None:
    """A key in another namespace that looks like a misspelling of this program's, which Pulumi would
    hand over and the program would never read: its grants would silently be dropped."""
    namespace, separator, name = key.partition(":")
    if not separator:
        return f"{key or repr(key)}: a config key needs its namespace; write {project}:{key}"
    if namespace == project:
        return None
    if namespace.lower() == project.lower() or difflib.SequenceMatcher(None, namespace, project).ratio() >= 0.8:
        return f'{key}: unknown config namespace "{namespace}"; did you mean "{project}:{name}"?'
    return None


# --- stack files ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackFile:
    path: Path
    config: dict[str, Any]
    """Every config key, with its namespace (`ambient-egress:grants`, `kubernetes:context`)."""

    @property
    def kubernetes_context(self) -> str | None:
        context = self.config.get("kubernetes:context")
        return context if isinstance(context, str) and context else None

    def stack_config(self, project: str = PROJECT) -> StackConfig:
        """The program's config, exactly as `pulumi up` would receive and judge it."""
        try:
            return parse_pulumi_config(pulumi_form(self.config), project, secret_keys=self.secret_keys)
        except ConfigError as error:
            raise ConfigError(f"{self.path.name}: {problem}" for problem in error.problems) from None

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(key for key, value in self.config.items() if isinstance(value, dict) and set(value) == {"secure"})


def read_stack_file(path: Path) -> StackFile:
    """A `Pulumi.<stack>.yaml` file, or a ConfigError saying what in the file is wrong and where."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror or error})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        byte = data[error.start]
        raise ConfigError([f"{path.name} line {line}: byte 0x{byte:02x} is not UTF-8; save the file as UTF-8"]) from None
    try:
        document = yaml.load(text, Loader=_PulumiYamlLoader)
    except yaml.constructor.ConstructorError as error:
        raise ConfigError([f"{path.name}{_where(error)}: {error.problem or error}"]) from None
    except yaml.MarkedYAMLError as error:
        raise ConfigError([f"{path.name}{_where(error)}: {error.problem or error}; check the indentation "
                           "(spaces, not tabs) and the quoting there"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{path.name}: not valid YAML ({error})"]) from None
    if document is None:
        document = {}
    try:
        cycle = _self_reference(document, ())
    except RecursionError:
        raise ConfigError([f"{path.name}: nested too deeply to be a stack file"]) from None
    if cycle is not None:
        raise ConfigError([f"{path.name}: the value at {'.'.join(map(str, cycle))} contains itself (a YAML anchor used "
                           "inside itself); Pulumi cannot read that, so write the value out"])
    if not isinstance(document, dict):
        raise ConfigError([f"{path.name}: must be a map with a 'config' key (got {type(document).__name__}); "
                           f"see Pulumi.dev.yaml for the shape"])
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([f"{path.name}: 'config' must be a map of '<namespace>:<key>' entries, e.g. "
                           f"'{PROJECT}:grants' (got {type(config).__name__})"])
    unknown = [key for key in document if key not in _STACK_FILE_KEYS]
    if unknown:
        raise ConfigError([f"{path.name}: unknown top-level key {key!r}; config belongs under 'config:'" for key in unknown])
    return StackFile(path, {str(key): value for key, value in config.items()})


def load_stack_file(path: Path, project: str = PROJECT) -> StackConfig:
    return read_stack_file(path).stack_config(project)


def _self_reference(value: Any, path: tuple[Any, ...], open_values: frozenset[int] = frozenset()) -> tuple[Any, ...] | None:
    """The path of a value that contains itself, which only a YAML anchor inside itself can build."""
    if not isinstance(value, dict | list):
        return None
    if id(value) in open_values:
        return path
    inside = open_values | {id(value)}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        found = _self_reference(item, (*path, key), inside)
        if found is not None:
            return found
    return None


def _where(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    return f" line {mark.line + 1} column {mark.column + 1}" if mark else ""


# --- YAML as Pulumi reads it ----------------------------------------------------------------------

class _PulumiYamlLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader with YAML 1.2's core schema, as Pulumi's Go YAML library reads a stack
    file into config: only `true`/`false` are booleans, timestamps stay text, a repeated key and an
    anchor used inside itself are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (first on line {seen[key].line + 1}); keep one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


_BOOL_1_2 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_1_2 = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT_1_2 = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_1_2 = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")

_PulumiYamlLoader.yaml_implicit_resolvers = {}
for tag, pattern, first in (
    ("tag:yaml.org,2002:bool", _BOOL_1_2, "tTfF"),
    ("tag:yaml.org,2002:null", _NULL_1_2, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", _INT_1_2, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT_1_2, "-+.0123456789"),
):
    _PulumiYamlLoader.add_implicit_resolver(tag, pattern, list(first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    assert isinstance(text, str)
    return int(text, 0) if text.startswith(("0o", "0x")) else int(text)


_PulumiYamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
