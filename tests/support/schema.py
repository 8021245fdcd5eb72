"""Validate rendered manifests against the schemas a real API server applies to them.

Custom resources (Istio, Gateway API) are checked against the upstream CustomResourceDefinitions in
`../shared/schemas/`, which stay outside the project: found beside it, or wherever the environment
variable `EGRESS_SCHEMAS_DIR` points. The API server's own handling of a CRD's structural OpenAPI v3
schema is reproduced here: defaults applied first, unknown fields refused, the `x-kubernetes-*`
extensions and the `x-kubernetes-validations` CEL rules evaluated (with cel-python).

Core resources (Namespace, Service, Deployment, ...) are checked with `kubernetes-validate`, which
ships the Kubernetes OpenAPI schemas.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import yaml
from celpy import celtypes

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMAS_DIR = Path(os.environ.get("EGRESS_SCHEMAS_DIR") or PROJECT_ROOT.parent / "shared" / "schemas")
SCHEMAS_MISSING_REASON = "../shared/schemas not found (set EGRESS_SCHEMAS_DIR)"
ISTIO_CRDS = "istio-1.30.3/crd-all.gen.yaml"
GATEWAY_API_CRDS = "gateway-api-v1.4.0/*.yaml"

# The newest Kubernetes minor the installed kubernetes-validate ships: the cluster the project targets
# is a current one, and a newer kubernetes-validate moves the check forward with it.
KUBERNETES_VERSION = kubernetes_validate.latest_version()

# libyaml when present: the Istio bundle is close to 1 MB and the pure-Python loader takes seconds.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def schemas_available() -> bool:
    return (SCHEMAS_DIR / ISTIO_CRDS).is_file() and any(SCHEMAS_DIR.glob(GATEWAY_API_CRDS))


def _custom_resource_definitions() -> Iterator[dict[str, Any]]:
    if not schemas_available():
        return
    for path in (SCHEMAS_DIR / ISTIO_CRDS, *sorted(SCHEMAS_DIR.glob(GATEWAY_API_CRDS))):
        with path.open() as stream:
            for document in yaml.load_all(stream, Loader=_YAML_LOADER):
                if document and document.get("kind") == "CustomResourceDefinition":
                    yield document


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """`(apiVersion, kind) -> openAPIV3Schema` for every version a CRD serves."""
    schemas = {}
    for definition in _custom_resource_definitions():
        spec = definition["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


@functools.cache
def custom_resource_groups() -> frozenset[str]:
    return frozenset(api_version.split("/")[0] for api_version, _ in custom_resource_schemas())


def _is_custom_api_version(api_version: str) -> bool:
    return "/" in api_version and api_version.split("/")[0] in custom_resource_groups()


def is_custom_resource(manifest: Mapping[str, Any]) -> bool:
    """Whether a CRD's group owns the manifest's apiVersion, so even a misspelt kind is judged by the CRDs.

    By group, not by kind: kubernetes-validate drops the domain of a group, so it would take
    `networking.istio.io/v1` for the core `networking.k8s.io/v1`.
    """
    return _is_custom_api_version(manifest.get("apiVersion", ""))


def _has_core_schema(api_version: str, kind: str) -> bool:
    try:
        kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        pass  # the schema exists; the bare stub merely does not satisfy it
    return True


def has_schema(api_version: str, kind: str) -> bool:
    """Whether `validate_manifest` has a schema for this kind, rather than reporting it unknown."""
    if _is_custom_api_version(api_version):
        return (api_version, kind) in custom_resource_schemas()
    return _has_core_schema(api_version, kind)


# --- structural OpenAPI v3 -> JSON Schema ---------------------------------------------------------

_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not")
_SUBSCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
# Kept for the keyword functions below; every other `x-kubernetes-*` key (map-type, embedded-resource,
# and the ones translated here) carries nothing for a one-object, create-time check and is dropped.
_KUBERNETES_KEYWORDS = ("x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys")


def to_json_schema(structural: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) equivalent of one node of a CRD's structural schema."""
    converted: dict[str, Any] = {}
    for key, value in structural.items():
        if key == "properties":
            converted[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in _SUBSCHEMA_KEYS and isinstance(value, Mapping):
            converted[key] = to_json_schema(value)
        elif key in _SUBSCHEMA_LIST_KEYS:
            converted[key] = [to_json_schema(child) for child in value]
        elif key in _KUBERNETES_KEYWORDS or not (key.startswith("x-kubernetes-") or key == "nullable"):
            converted[key] = value
    if structural.get("x-kubernetes-int-or-string"):
        converted["type"] = ["integer", "string"]
    if structural.get("nullable"):
        if "type" in converted:
            converted["type"] = [*_as_list(converted["type"]), "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    if (
        "properties" in structural
        and "additionalProperties" not in structural
        and not structural.get("x-kubernetes-preserve-unknown-fields")
    ):
        # The API server drops an unknown field silently (or refuses it under strict field
        # validation): either way a misspelt field never takes effect, so it is an error here.
        converted["additionalProperties"] = False
    return converted


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def with_defaults(value: Any, structural: Mapping[str, Any]) -> Any:
    """`value` with the schema's defaults filled in, as the API server does before validating."""
    if isinstance(value, dict):
        properties = structural.get("properties", {})
        defaulted = {name: copy.deepcopy(child["default"]) for name, child in properties.items()
                     if "default" in child and name not in value}
        defaulted.update(value)
        additional = structural.get("additionalProperties")
        return {
            name: with_defaults(item, properties.get(name) or (additional if isinstance(additional, Mapping) else {}))
            for name, item in defaulted.items()
        }
    if isinstance(value, list) and isinstance(structural.get("items"), Mapping):
        return [with_defaults(item, structural["items"]) for item in value]
    return value


# --- Kubernetes keywords --------------------------------------------------------------------------

def _list_type(validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list):
        return
    if list_type == "set":
        identities = [repr(item) for item in instance]
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        identities = [repr([item.get(key) for key in keys]) if isinstance(item, dict) else repr(item) for item in instance]
    else:
        return  # "atomic": no constraint on the entries
    duplicates = sorted({identity for identity in identities if identities.count(identity) > 1})
    if duplicates:
        yield jsonschema.ValidationError(f"duplicate entries in list-type {list_type}: {', '.join(duplicates)}")


# Kubernetes compiles CEL with library extensions; cel-python has only standard CEL, so the ones
# these CRDs call are supplied here. A rule calling any other is reported as not evaluable, never passed.
def _cel_substring(text: celtypes.StringType, start: celtypes.IntType,
                   end: celtypes.IntType | None = None) -> celtypes.StringType:
    return celtypes.StringType(text[start:end])


def _cel_split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in text.split(separator)])


_KUBERNETES_CEL_FUNCTIONS = {"substring": _cel_substring, "split": _cel_split}
# A rule that reads `oldSelf` is a transition rule: the API server evaluates it on update only.
_TRANSITION_RULE = re.compile(r"\boldSelf\b")
_ACTIVATION_DUMP = re.compile(r" \(in activation .*", re.DOTALL)


@functools.cache
def _cel_program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions=_KUBERNETES_CEL_FUNCTIONS)


def evaluate_cel(expression: str, variables: Mapping[str, Any]) -> Any:
    """A CEL expression's value over JSON variables, as the API server's CEL would give it."""
    return _cel_program(expression).evaluate({name: celpy.json_to_cel(value) for name, value in variables.items()})


def _cel_validations(validator: Any, validations: list[Mapping[str, Any]], instance: Any,
                     schema: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    for validation in validations:
        rule = validation["rule"]
        if _TRANSITION_RULE.search(rule):
            continue
        try:
            outcome = _cel_program(rule).evaluate({"self": celpy.json_to_cel(instance)})
        except celpy.CELEvalError as error:
            # cel-python appends a dump of the whole activation to the reason; it only buries it.
            reason = _ACTIVATION_DUMP.sub("", str(error.args[0]))
            yield jsonschema.ValidationError(f"CEL rule could not be evaluated ({reason}): {rule}")
            continue
        if not isinstance(outcome, celtypes.BoolType):
            yield jsonschema.ValidationError(f"CEL rule did not give a boolean ({outcome!r}): {rule}")
        elif not outcome:
            yield jsonschema.ValidationError(f"{validation.get('message') or 'failed CEL rule'} (rule: {rule})")


CustomResourceValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"x-kubernetes-validations": _cel_validations, "x-kubernetes-list-type": _list_type},
)


# Every object has these at its root whether a CRD lists them or not (Istio's CRDs do not).
_IMPLICIT_ROOT_PROPERTIES = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


@functools.cache
def _custom_resource_validator(api_version: str, kind: str) -> Any:
    schema = to_json_schema(custom_resource_schemas()[(api_version, kind)])
    schema["properties"] = {**_IMPLICIT_ROOT_PROPERTIES, **schema.get("properties", {})}
    return CustomResourceValidator(
        schema,
        # Checks the formats it knows (ipv4, ipv6, ...); Kubernetes-only ones such as int32 pass unchecked.
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _described(error: jsonschema.ValidationError) -> str:
    return f"{error.json_path}: {error.message}"


def validate_custom_resource(manifest: Mapping[str, Any]) -> list[str]:
    """Every way the whole object breaks its CRD's schema, each as `<JSON path>: <problem>`.

    The whole object is validated: the CRD schemas list apiVersion, kind, spec and status, and
    declare `metadata` only as an object (the API server checks ObjectMeta itself).
    """
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    if key not in custom_resource_schemas():
        return [f"$: no CustomResourceDefinition in {SCHEMAS_DIR} serves kind {key[1]!r} in {key[0]!r}"]
    defaulted = with_defaults(dict(manifest), custom_resource_schemas()[key])
    errors = sorted(_custom_resource_validator(*key).iter_errors(defaulted), key=lambda error: list(error.absolute_path))
    return [_described(error) for error in errors]


def validate_core_resource(manifest: Mapping[str, Any]) -> list[str]:
    """The first way the object breaks its Kubernetes schema (`kubernetes-validate` stops there), if any.

    Strict: a field the schema does not define is an error, as under kubectl's strict field validation.
    """
    try:
        kubernetes_validate.validate(dict(manifest), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"$: {error.message}"]
    except kubernetes_validate.ValidationError as error:
        return [_described(error)]
    return []


def validate_manifest(manifest: Mapping[str, Any]) -> list[str]:
    return validate_custom_resource(manifest) if is_custom_resource(manifest) else validate_core_resource(manifest)
