"""The value types a stack config is made of, each declared once: what it accepts, how Pulumi's
string form decodes into it, what its JSON Schema says, and the words of its problems.

Checks that Kubernetes and Istio define (names, addresses, path patterns) come from the component
library and the analysis layer, so the config accepts exactly what they accept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StrictStr, WithJsonSchema

from analysis.matching import path_pattern_problem
from components.grants import HTTP_METHODS
from components.names import (
    DNS_LABEL_RULE,
    MAX_DNS_NAME,
    MAX_LABEL,
    address_problem,
    dns_label_problem,
    service_name_problem,
    shown,
)
from components.values import Protocol, ipv4_network

from .errors import did_you_mean, got, problem

_DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _label(why: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if dns_label_problem(text):
            raise problem(f"{DNS_LABEL_RULE}, because {why} (got {shown(text)})")
        return text
    return check


def _label_type(why: str) -> Any:
    return Annotated[StrictStr, AfterValidator(_label(why)), WithJsonSchema({
        "type": "string", "pattern": _DNS_LABEL_PATTERN, "maxLength": MAX_LABEL,
        "description": f"A DNS-1123 label: {why}."})]


Label = _label_type("it names a Kubernetes object")
NamespaceName = _label_type("it names a namespace")
ServiceAccountName = _label_type("it names a service account")
PortName = _label_type("it names a ServiceEntry port")


def _service_name(text: str) -> str:
    reason = service_name_problem(text)
    if reason == DNS_LABEL_RULE:
        raise problem(f"{DNS_LABEL_RULE}, because it names a Kubernetes object (got {shown(text)})")
    if reason:
        raise problem(f"{reason} (got {shown(text)})")
    return text


ServiceName = Annotated[StrictStr, AfterValidator(_service_name), WithJsonSchema({
    "type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": MAX_LABEL,
    "description": "A DNS-1035 label: it names a ServiceEntry and a Kubernetes Service."})]


def _address(text: str) -> str:
    if reason := address_problem(text):
        raise problem(reason)
    return text


Address = Annotated[StrictStr, AfterValidator(_address), WithJsonSchema({
    "type": "string", "maxLength": MAX_DNS_NAME,
    "description": "An IPv4 address or a DNS name, e.g. 10.20.30.40 or orders.example.com."})]


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem(f"must be a whole number in 1..65535 {got(value)}")
    if not 1 <= value <= 65535:
        raise problem(f"must be in 1..65535 (got {value})")
    return value


Port = Annotated[int, BeforeValidator(_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})]


def _flag(value: Any) -> bool:
    # Pulumi hands scalar config to programs as strings, so "true"/"false" are booleans too.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise problem(f"must be true or false {got(value)}")


Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})]


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise problem(f"must be a string {got(value)}")
        if value not in choices:
            raise problem(f"must be one of {', '.join(choices)} (got {shown(value)}){did_you_mean(value.upper(), choices)}")
        return value
    return check


_PROTOCOLS = tuple(str(protocol) for protocol in Protocol)
PortProtocol = Annotated[Protocol, BeforeValidator(_choice(_PROTOCOLS)), WithJsonSchema({"enum": list(_PROTOCOLS)})]
HttpMethod = Annotated[str, BeforeValidator(_choice(HTTP_METHODS)), WithJsonSchema({"enum": list(HTTP_METHODS)})]

_PATH_FORMS = "exact (/get), prefix (/api/*), suffix (*.json), a template (/api/{*}/items) or *"


def _path_pattern(text: str) -> str:
    reason = "longer than 1024 characters" if len(text) > 1024 else path_pattern_problem(text)
    if reason:
        raise problem(f"must be an Istio path: {_PATH_FORMS}; this one {reason} (got {shown(text)})")
    return text


PathPattern = Annotated[StrictStr, AfterValidator(_path_pattern), WithJsonSchema({
    "type": "string", "maxLength": 1024, "description": f"An Istio path: {_PATH_FORMS}."})]


def _request_path(text: str) -> str:
    _path_pattern(text)
    if not text.startswith("/"):
        raise problem(f"must be a concrete request path starting with / (got {shown(text)})")
    return text


RequestPath = Annotated[StrictStr, AfterValidator(_request_path), WithJsonSchema({
    "type": "string", "pattern": "^/", "description": "A request path, e.g. /get."})]


def _header_name(text: str) -> str:
    if len(text) > 256 or not text or not all(c.islower() or c.isdigit() or c == "-" for c in text) \
            or not text.isascii() or text.startswith("-"):
        raise problem("header names must be lowercase letters, digits and '-'")
    return text


HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]


def _header_map(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise problem(f"must be a map of header name to value, e.g. {{x-egress: audited}} (got {shown(value)})")
    return value


def _cidr(value: Any) -> str:
    if not isinstance(value, str):
        raise problem(f"must be a string {got(value)}")
    try:
        return ipv4_network(value)
    except ValueError as error:
        raise problem(str(error)) from None


Cidr = Annotated[str, BeforeValidator(_cidr), WithJsonSchema({
    "type": "string", "description": "An IPv4 address or CIDR, e.g. 10.96.0.1 or 10.0.0.0/8."})]

OLDEST_ISTIO, NEWEST_ISTIO = (1, 24), (1, 31)


def _istio_version(value: Any) -> str:
    # YAML reads 1.30 as a number; a version is text, but the intent is plain.
    text = repr(value) if isinstance(value, float) else value
    if not isinstance(text, str):
        raise problem(f"must be an Istio version such as \"1.30\" or \"1.30.3\" {got(value)}")
    parts = text.removeprefix("v").split(".")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        raise problem(f"must be an Istio version such as \"1.30\" or \"1.30.3\" (got {shown(value)})")
    minor = (int(parts[0]), int(parts[1]))
    if not OLDEST_ISTIO <= minor <= NEWEST_ISTIO:
        raise problem(f"must be between {OLDEST_ISTIO[0]}.{OLDEST_ISTIO[1]} (AuthorizationPolicies that target a "
                      f"ServiceEntry) and {NEWEST_ISTIO[0]}.{NEWEST_ISTIO[1]} (got {shown(value)})")
    return ".".join(str(int(part)) for part in parts)


IstioVersion = Annotated[str, BeforeValidator(_istio_version), WithJsonSchema({
    "type": "string", "pattern": r"^v?1\.\d+(\.\d+)?$",
    "description": "An Istio version: the minor (\"1.30\") decides which features render; installing needs the "
                   "patch too (\"1.30.3\")."})]


def _gateway_api_version(value: Any) -> str:
    if not isinstance(value, str):
        raise problem(f"must be a Gateway API release such as \"v1.4.0\" {got(value)}")
    parts = value.removeprefix("v").split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise problem(f"must be a Gateway API release such as \"v1.4.0\" (got {shown(value)})")
    return "v" + ".".join(parts)


GatewayApiVersion = Annotated[str, BeforeValidator(_gateway_api_version), WithJsonSchema({
    "type": "string", "pattern": r"^v?\d+\.\d+\.\d+$", "description": "A Gateway API release, e.g. \"v1.4.0\"."})]


def structured(value: Any) -> Any:
    """Pulumi hands a structured config value (a list or a map in the stack file) to the program as
    JSON text; decode it here, so the field's own type judges the result. Text that is no JSON stays
    text, and the field's type names it."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except RecursionError:
        raise problem("is nested too deeply to be a config value") from None
    except ValueError:
        return value


HeaderMap = Annotated[dict[HeaderName, StrictStr], BeforeValidator(_header_map)]
