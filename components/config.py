"""The stack configuration model: parse, validate, then typed frozen dataclasses.

Pure Python, no Pulumi: the same model serves `pulumi up`, `make plan`, `make verify` and the
tests. Every problem in a configuration is collected and reported at once, each prefixed with
the config key that holds it, so nothing is registered until the whole stack config is sound.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PROJECT = "ambient-egress"

DEFAULT_EGRESS_NAMESPACE = "istio-egress"
DEFAULT_DATABASE_NAMESPACE = "db"
DEFAULT_WAYPOINT_NAME = "waypoint"
DEFAULT_DATABASE_PORT = 5432
DEFAULT_TRUST_DOMAIN = "cluster.local"

ALLOW = "ALLOW"
DENY = "DENY"
LIMITED = "LIMITED"
"""Some requests only: an HTTP grant narrowed by methods or paths."""

# Used with fullmatch: `$` would let a trailing newline through.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_MAX_LABEL = 63
_MAX_DNS_NAME = 253
# Kubernetes namespaces every cluster owns: granting one of them would enrol system workloads.
_RESERVED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "istio-system"})


@dataclass(frozen=True)
class Database:
    """An external database that namespaces may be granted.

    `address` unset means a PostgreSQL stand-in is deployed behind a LoadBalancer; set, it is an
    existing database (IPv4 address or DNS name) and nothing is deployed for it.
    """

    name: str
    port: int = DEFAULT_DATABASE_PORT
    address: str | None = None

    @property
    def is_stand_in(self) -> bool:
        return self.address is None


PROTOCOLS = ("TCP", "HTTP", "HTTPS", "TLS")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


@dataclass(frozen=True)
class ServicePort:
    number: int
    protocol: str = "TCP"
    """TCP, HTTP, HTTPS or TLS: what the waypoint sees, and so which policy fields can apply."""
    name: str = ""
    """The ServiceEntry port name. Default: `<protocol>-<number>` in lowercase."""

    @property
    def port_name(self) -> str:
        return self.name or f"{self.protocol.lower()}-{self.number}"

    @property
    def is_http(self) -> bool:
        return self.protocol == "HTTP"


@dataclass(frozen=True)
class SampleRequest:
    """A request `make plan` evaluates from every client, to show what a limited grant permits."""

    method: str
    path: str


@dataclass(frozen=True)
class Service:
    """Any external service behind the egress waypoint: an API, a message broker, a database."""

    name: str
    host: str
    """A DNS name, used as it is, or an IPv4 address, which becomes `<ip>.nip.io`."""
    ports: tuple[ServicePort, ...]
    tls_origination: bool = False
    """Clients speak plain HTTP; the waypoint sends it on as TLS to port 443."""
    request_headers: tuple[tuple[str, str], ...] = ()
    """Headers the waypoint adds to every request (an HTTPRoute on the ServiceEntry)."""
    sample_requests: tuple[SampleRequest, ...] = ()

    @property
    def http_ports(self) -> tuple[ServicePort, ...]:
        return tuple(port for port in self.ports if port.is_http)


@dataclass(frozen=True)
class Access:
    """One grant of one target: a database or service name, optionally narrowed to some requests
    (HTTP only) and to some service accounts (None: the grant's own)."""

    target: str
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] | None = None

    @property
    def is_limited(self) -> bool:
        return bool(self.methods or self.paths)

    def permits(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and (
            not self.paths or any(istio_path_matches(pattern, path) for pattern in self.paths)
        )


def istio_path_matches(pattern: str, path: str) -> bool:
    """Istio's string match for `paths`: exact, `prefix*`, `*suffix`, or `*` for any non-empty path."""
    if pattern == "*":
        return bool(path)
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


@dataclass(frozen=True)
class Grant:
    """`namespace` may reach each of `databases` and `services`; with `service_accounts`, only those
    identities may."""

    namespace: str
    databases: tuple[str, ...]
    service_accounts: tuple[str, ...] = ()
    services: tuple[Access, ...] = ()

    def accesses(self) -> tuple[Access, ...]:
        """Every target this grant opens, databases first, each with the identities it admits."""
        databases = tuple(Access(name, service_accounts=self.service_accounts) for name in self.databases)
        services = tuple(
            access if access.service_accounts is not None else replace(access, service_accounts=self.service_accounts)
            for access in self.services
        )
        return databases + services

    @property
    def test_client(self) -> str:
        """The matrix row of the grant's test client, which runs as its first service account."""
        clients = self.clients()
        return clients[1] if len(clients) > 1 else clients[0]

    def clients(self) -> tuple[str, ...]:
        """The matrix rows this grant speaks for: the namespace, then each named service account in
        the order `NamespaceGrant` creates them."""
        accounts = dict.fromkeys([
            *self.service_accounts, *(account for access in self.services for account in access.service_accounts or ()),
        ])
        return (self.namespace, *(service_account_client(self.namespace, account) for account in accounts))


@dataclass(frozen=True)
class BypassProtection:
    """The measures that stop clients from reaching a database around the egress waypoint."""

    service_entry_addresses: bool = True
    """Put an IP-addressed database's IP on its ServiceEntry, so raw-IP connections meet the waypoint too."""
    database_ingress_policy: bool = True
    """A NetworkPolicy that lets stand-in pods accept connections from the egress waypoint only."""
    client_egress_policy: bool = False
    """A NetworkPolicy per client namespace that denies direct egress to IP-addressed databases."""


@dataclass(frozen=True)
class StackConfig:
    databases: tuple[Database, ...]
    grants: tuple[Grant, ...]
    egress_namespace: str = DEFAULT_EGRESS_NAMESPACE
    database_namespace: str = DEFAULT_DATABASE_NAMESPACE
    waypoint_name: str = DEFAULT_WAYPOINT_NAME
    test_clients: bool = False
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    bypass_protection: BypassProtection = field(default_factory=BypassProtection)
    services: tuple[Service, ...] = ()

    def database(self, name: str) -> Database:
        return next(database for database in self.databases if database.name == name)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every database and service name: the columns of the access matrix."""
        return tuple(database.name for database in self.databases) + tuple(service.name for service in self.services)

    def access_matrix(self) -> dict[str, dict[str, str]]:
        """The intended verdict for every client and target: the product's promise.

        A client is a grant's namespace or `<ns>/sa/<account>` for a service account a grant names;
        the bare namespace stands for the namespace's other identities. A cell is ALLOW, DENY, or
        LIMITED where only some HTTP requests are granted.
        """
        matrix = {}
        for grant in self.grants:
            for client in grant.clients():
                covering = _covering_accesses(grant, client)
                matrix[client] = {target: _cell(covering.get(target, ())) for target in self.targets}
        return matrix

    def granted(self) -> dict[str, dict[str, str]]:
        """The access matrix without its DENY cells: what the stack exports, growing with the
        grants rather than with namespaces × targets."""
        return {
            client: {target: cell for target, cell in row.items() if cell != DENY}
            for client, row in self.access_matrix().items()
        }

    def request_verdict(self, client: str, target: str, method: str, path: str) -> str:
        """What the grants intend for one HTTP request from `client` (a row of the access matrix)."""
        grant = next((grant for grant in self.grants if client in grant.clients()), None)
        accesses = _covering_accesses(grant, client).get(target, ()) if grant else ()
        return ALLOW if any(access.permits(method, path) for access in accesses) else DENY


def _covering_accesses(grant: Grant, client: str) -> dict[str, tuple[Access, ...]]:
    """The accesses of `grant` that admit `client`, by target."""
    account = client.split("/sa/", 1)[1] if "/sa/" in client else None
    covering: dict[str, tuple[Access, ...]] = {}
    for access in grant.accesses():
        if not access.service_accounts or account in access.service_accounts:
            covering[access.target] = (*covering.get(access.target, ()), access)
    return covering


def _cell(accesses: tuple[Access, ...]) -> str:
    if not accesses:
        return DENY
    return LIMITED if all(access.is_limited for access in accesses) else ALLOW


def service_account_client(namespace: str, service_account: str) -> str:
    """How the access matrix names a workload identity, mirroring the principal's `ns/<ns>/sa/<sa>`."""
    return f"{namespace}/sa/{service_account}"


class ConfigError(ValueError):
    """Every problem found in a stack configuration, each naming its key and the fix."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__(
            "invalid stack configuration; nothing was registered. Fix these and run again:\n"
            + "\n".join(f"  - {problem}" for problem in self.problems)
        )


class _Problems:
    """Collects problems so a config is reported whole rather than one error per run."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.found.append(f"{key}: {message}")


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60


def _shown(value: Any) -> str:
    """A value as the user wrote it, cut short; safe on any YAML (dates, anchors, deep nesting)."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=True)
        except (TypeError, ValueError, RecursionError):
            text = _SHOWN.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a map", type(None): "nothing"}.get(type(value), type(value).__name__)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


# Field validators: each checks one value, records a complete message (key, expectation, value)
# and returns the value it accepted or None.

def _string(problems: _Problems, key: str, value: Any) -> str | None:
    if isinstance(value, str):
        return value
    problems.add(key, f"must be a string (got {_type_name(value)} {_shown(value)})")
    return None


def _label(problems: _Problems, key: str, value: Any, *, why: str = "it names a Kubernetes object") -> str | None:
    text = _string(problems, key, value)
    if text is None:
        return None
    if len(text) > _MAX_LABEL or not _DNS1123_LABEL.fullmatch(text):
        problems.add(
            key,
            f"must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and "
            f"ending with a letter or digit, because {why} (got {_shown(text)})",
        )
        return None
    return text


def _service_name(problems: _Problems, key: str, value: Any) -> str | None:
    text = _label(problems, key, value)
    if text is not None and not _DNS1035_LABEL.fullmatch(text):
        problems.add(key, f"must start with a letter because it names a Kubernetes Service (got {_shown(text)})")
        return None
    return text


def _port(problems: _Problems, key: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(key, f"must be a whole number in 1..65535 (got {_type_name(value)} {_shown(value)})")
        return None
    if not 1 <= value <= 65535:
        problems.add(key, f"must be in 1..65535 (got {value})")
        return None
    return value


def _boolean(problems: _Problems, key: str, value: Any) -> bool | None:
    # Pulumi hands scalar config to programs as strings, so "true"/"false" are booleans too.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    problems.add(key, f"must be true or false (got {_type_name(value)} {_shown(value)})")
    return None


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _address(problems: _Problems, key: str, value: Any) -> str | None:
    text = _string(problems, key, value)
    if text is None:
        return None
    if is_ipv4(text):
        return text
    labels = text.split(".")
    if all(label.isdigit() for label in labels):
        problems.add(key, f"is not a valid IPv4 address (got {_shown(text)}); write four numbers 0-255, e.g. 10.20.30.40")
        return None
    if ":" in text:
        problems.add(key, f"must be an IPv4 address or a DNS name; IPv6 is not supported (got {_shown(text)})")
        return None
    if len(text) > _MAX_DNS_NAME or not all(len(label) <= _MAX_LABEL and _DNS1123_LABEL.fullmatch(label) for label in labels):
        problems.add(
            key,
            "must be an IPv4 address or a DNS name of lowercase letters, digits, '-' and '.' "
            f"(got {_shown(text)}); e.g. orders.example.com or 10.20.30.40",
        )
        return None
    return text


def _choice(problems: _Problems, key: str, value: Any, choices: tuple[str, ...]) -> str | None:
    text = _string(problems, key, value)
    if text is None:
        return None
    if text not in choices:
        problems.add(key, f"must be one of {', '.join(choices)} (got {_shown(text)}){_did_you_mean(text.upper(), choices)}")
        return None
    return text


def _request_path(problems: _Problems, key: str, value: Any) -> str | None:
    text = _string(problems, key, value)
    if text is None:
        return None
    inner = text[1:-1] if len(text) > 1 else ""
    if not (text == "*" or text.startswith(("/", "*"))) or "*" in inner or "{" in text or len(text) > 1024:
        problems.add(key, "must be an Istio path: exact (/get), prefix (/api/*), suffix (*.json) or * "
                          f"(got {_shown(text)})")
        return None
    return text


_HEADER_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def _headers(problems: _Problems, key: str, value: Any) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, dict) or not value:
        problems.add(key, f"must be a map of header name to value, e.g. {{x-egress: audited}} (got {_shown(value)})")
        return None
    headers = []
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name) or len(name) > 256:
            problems.add(f"{key}.{name}", "header names must be lowercase letters, digits and '-'")
        elif _string(problems, f"{key}.{name}", text) is not None:
            headers.append((name, text))
    return tuple(headers) if len(headers) == len(value) else None


def _mapping(problems: _Problems, key: str, value: Any, known: Iterable[str], required: Iterable[str] = ()) -> dict | None:
    """A map with only `known` fields; None when it is no map or lacks a `required` field."""
    if not isinstance(value, dict):
        problems.add(key, f"must be a map (got {_type_name(value)} {_shown(value)})")
        return None
    known = tuple(known)
    for name in value:
        if name not in known:
            problems.add(f"{key}.{name}", f"unknown field{_did_you_mean(str(name), known)} (known fields: {', '.join(known)})")
    missing = [name for name in required if name not in value]
    for name in missing:
        problems.add(f"{key}.{name}", "is required")
    return None if missing else value


Keyed = list[tuple[str, Any]]
"""Parsed list items, each with the key it came from, so later checks point at the right index."""


def _items(problems: _Problems, key: str, value: Any, parse_item: Callable[[str, Any], Any], *,
           allow_empty: bool = True) -> Keyed | None:
    """Every valid item of a list with its key; None when `value` is no list (or empty and must not be)."""
    if not isinstance(value, list):
        problems.add(key, f"must be a list (got {_type_name(value)} {_shown(value)})")
        return None
    if not value and not allow_empty:
        problems.add(key, "must not be empty; list at least one entry or remove the whole entry")
        return None
    parsed = ((f"{key}[{index}]", parse_item(f"{key}[{index}]", entry)) for index, entry in enumerate(value))
    return [(item_key, item) for item_key, item in parsed if item is not None]


def _all_items(problems: _Problems, key: str, value: Any, parse_item: Callable[[str, Any], Any], *,
               allow_empty: bool = True) -> list | None:
    """The items of a list that must be valid as a whole: None unless every item is."""
    items = _items(problems, key, value, parse_item, allow_empty=allow_empty)
    if items is None or len(items) != len(value):
        return None
    return [item for _, item in items]


def _unique(problems: _Problems, keyed_names: Keyed, what: str) -> None:
    seen: dict[str, str] = {}
    for item_key, name in keyed_names:
        if name in seen:
            problems.add(item_key, f"duplicate {what} {_shown(name)} (first at {seen[name]}); each must appear once")
        else:
            seen[name] = item_key


_DATABASE_FIELDS = ("name", "port", "address")
_SERVICE_FIELDS = ("name", "host", "ports", "tlsOrigination", "requestHeaders", "sampleRequests")
_PORT_FIELDS = ("number", "protocol", "name")
_SAMPLE_FIELDS = ("method", "path")
_ACCESS_FIELDS = ("name", "methods", "paths", "serviceAccounts")
_GRANT_FIELDS = ("namespace", "databases", "services", "serviceAccounts")
_BYPASS_FIELDS = ("serviceEntryAddresses", "databaseIngressPolicy", "clientEgressPolicy")
_TOP_LEVEL_KEYS = (
    "databases", "services", "grants", "egressNamespace", "databaseNamespace", "waypointName",
    "testClients", "trustDomain", "bypassProtection",
)
# Keys whose value Pulumi stores as JSON text (structured YAML in the stack file).
_STRUCTURED_KEYS = frozenset({"databases", "services", "grants", "bypassProtection"})


def _declared_names(entries: Any) -> set[str]:
    """Names a list declares, valid or not, so a grant of a broken entry is not called undeclared."""
    if not isinstance(entries, list):
        return set()
    return {entry["name"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("name"), str)}


class _Parser:
    def __init__(self, project: str) -> None:
        self.project = project
        self.problems = _Problems()
        self.declared_databases: set[str] = set()
        self.declared_services: set[str] = set()
        self.services: dict[str, Service] = {}
        self.reserved_namespaces: dict[str, str] = {}

    def key(self, name: str) -> str:
        return f"{self.project}:{name}"

    # --- databases and services ---------------------------------------------------------------

    def database(self, key: str, value: Any) -> Database | None:
        entry = _mapping(self.problems, key, value, _DATABASE_FIELDS, required=("name",))
        if entry is None:
            return None
        name = _service_name(self.problems, f"{key}.name", entry["name"])
        port = _port(self.problems, f"{key}.port", entry["port"]) if "port" in entry else DEFAULT_DATABASE_PORT
        address = _address(self.problems, f"{key}.address", entry["address"]) if "address" in entry else None
        if name is None or port is None or ("address" in entry and address is None):
            return None
        return Database(name=name, port=port, address=address)

    def service_port(self, key: str, value: Any) -> ServicePort | None:
        entry = _mapping(self.problems, key, value, _PORT_FIELDS, required=("number",))
        if entry is None:
            return None
        number = _port(self.problems, f"{key}.number", entry["number"])
        protocol = _choice(self.problems, f"{key}.protocol", entry["protocol"], PROTOCOLS) if "protocol" in entry else "TCP"
        name = _label(self.problems, f"{key}.name", entry["name"], why="it names a ServiceEntry port") if "name" in entry else ""
        if number is None or protocol is None or name is None:
            return None
        return ServicePort(number=number, protocol=protocol, name=name)

    def sample_request(self, key: str, value: Any) -> SampleRequest | None:
        entry = _mapping(self.problems, key, value, _SAMPLE_FIELDS, required=_SAMPLE_FIELDS)
        if entry is None:
            return None
        method = _choice(self.problems, f"{key}.method", entry["method"], HTTP_METHODS)
        path = _request_path(self.problems, f"{key}.path", entry["path"])
        if method is None or path is None:
            return None
        if not path.startswith("/"):
            self.problems.add(f"{key}.path", f"must be a concrete request path starting with / (got {_shown(path)})")
            return None
        return SampleRequest(method, path)

    def service(self, key: str, value: Any) -> Service | None:
        entry = _mapping(self.problems, key, value, _SERVICE_FIELDS, required=("name", "host", "ports"))
        if entry is None:
            return None
        name = _service_name(self.problems, f"{key}.name", entry["name"])
        host = _address(self.problems, f"{key}.host", entry["host"])
        ports = _all_items(self.problems, f"{key}.ports", entry["ports"], self.service_port, allow_empty=False)
        tls = _boolean(self.problems, f"{key}.tlsOrigination", entry["tlsOrigination"]) if "tlsOrigination" in entry else False
        headers = _headers(self.problems, f"{key}.requestHeaders", entry["requestHeaders"]) if "requestHeaders" in entry else ()
        samples = (_all_items(self.problems, f"{key}.sampleRequests", entry["sampleRequests"], self.sample_request)
                   if "sampleRequests" in entry else [])
        if name is None or host is None or ports is None or tls is None or headers is None or samples is None:
            return None
        _unique(self.problems, [(f"{key}.ports[{i}].number", p.number) for i, p in enumerate(ports)], "port")
        _unique(self.problems, [(f"{key}.ports[{i}].name", p.name) for i, p in enumerate(ports) if p.name], "port name")
        service = Service(name=name, host=host, ports=tuple(ports), tls_origination=tls,
                          request_headers=headers, sample_requests=tuple(samples))
        http_ports = len(service.http_ports)
        if tls and http_ports != len(ports):
            self.problems.add(f"{key}.tlsOrigination", "needs every port to be HTTP: the waypoint originates TLS for the "
                                                       "whole host; declare other ports as a separate service")
        if headers and http_ports != 1:
            self.problems.add(f"{key}.requestHeaders", f"needs exactly one HTTP port to route (found {http_ports})")
        if samples and not http_ports:
            self.problems.add(f"{key}.sampleRequests", "needs an HTTP port: requests are only visible on HTTP")
        return service

    # --- grants --------------------------------------------------------------------------------

    def service_accounts(self, key: str, value: Any) -> tuple[str, ...] | None:
        accounts = _all_items(self.problems, key, value,
                              lambda k, v: _label(self.problems, k, v, why="it names a service account"), allow_empty=False)
        if accounts is None:
            return None
        _unique(self.problems, [(f"{key}[{i}]", a) for i, a in enumerate(accounts)], "service account")
        return tuple(accounts)

    def granted_database(self, key: str, value: Any) -> str | None:
        name = _string(self.problems, key, value)
        if name is not None and name not in self.declared_databases:
            self.problems.add(key, f"unknown database {_shown(name)}{_did_you_mean(name, self.declared_databases)}; "
                                   f"declare it under {self.key('databases')} first")
        return name

    def access(self, key: str, value: Any) -> Access | None:
        if isinstance(value, str):
            access: Access | None = Access(value)
        else:
            access = self.narrowed_access(key, value)
        if access is None:
            return None
        service = self.services.get(access.target)
        if access.target not in self.declared_services:
            self.problems.add(key, f"unknown service {_shown(access.target)}{_did_you_mean(access.target, self.declared_services)}; "
                                   f"declare it under {self.key('services')} first")
        elif service is not None and access.is_limited and not service.http_ports:
            self.problems.add(f"{key}.{'methods' if access.methods else 'paths'}",
                              f"{service.name} has no HTTP port, and TCP policies may use only ports, namespaces and "
                              "principals: remove methods and paths, or declare the port as HTTP")
        return access

    def narrowed_access(self, key: str, value: Any) -> Access | None:
        entry = _mapping(self.problems, key, value, _ACCESS_FIELDS, required=("name",))
        if entry is None:
            return None
        name = _string(self.problems, f"{key}.name", entry["name"])
        methods = (_all_items(self.problems, f"{key}.methods", entry["methods"],
                              lambda k, v: _choice(self.problems, k, v, HTTP_METHODS), allow_empty=False)
                   if "methods" in entry else [])
        paths = (_all_items(self.problems, f"{key}.paths", entry["paths"],
                            lambda k, v: _request_path(self.problems, k, v), allow_empty=False)
                 if "paths" in entry else [])
        accounts = self.service_accounts(f"{key}.serviceAccounts", entry["serviceAccounts"]) if "serviceAccounts" in entry else ()
        if name is None or methods is None or paths is None or accounts is None:
            return None
        return Access(name, methods=tuple(methods), paths=tuple(paths),
                      service_accounts=accounts if "serviceAccounts" in entry else None)

    def grant(self, key: str, value: Any) -> Grant | None:
        entry = _mapping(self.problems, key, value, _GRANT_FIELDS, required=("namespace",))
        if entry is None:
            return None
        if "databases" not in entry and "services" not in entry:
            self.problems.add(f"{key}.databases", "is required: list the databases (or services) this namespace may reach")
        namespace = _label(self.problems, f"{key}.namespace", entry["namespace"], why="it names a namespace")
        if namespace in self.reserved_namespaces:
            self.problems.add(f"{key}.namespace", f"{_shown(namespace)} is the {self.reserved_namespaces[namespace]}; "
                                                  "grant a client namespace instead")
        elif namespace in _RESERVED_NAMESPACES:
            self.problems.add(f"{key}.namespace", f"{_shown(namespace)} is a system namespace; grant a namespace of your own")
        databases = (_items(self.problems, f"{key}.databases", entry["databases"], self.granted_database, allow_empty=False)
                     if "databases" in entry else [])
        services = (_items(self.problems, f"{key}.services", entry["services"], self.access, allow_empty=False)
                    if "services" in entry else [])
        accounts = self.service_accounts(f"{key}.serviceAccounts", entry["serviceAccounts"]) if "serviceAccounts" in entry else ()
        if databases is not None:
            _unique(self.problems, databases, "database")
        if namespace is None or accounts is None or not (databases or services):
            return None
        return Grant(namespace=namespace, databases=tuple(name for _, name in databases or ()),
                     service_accounts=accounts, services=tuple(access for _, access in services or ()))

    def bypass_protection(self, key: str, value: Any) -> BypassProtection | None:
        entry = _mapping(self.problems, key, value, _BYPASS_FIELDS)
        if entry is None:
            return None
        flags = {name: _boolean(self.problems, f"{key}.{name}", entry[name]) for name in _BYPASS_FIELDS if name in entry}
        if any(flag is None for flag in flags.values()):
            return None
        return BypassProtection(
            service_entry_addresses=flags.get("serviceEntryAddresses", True),
            database_ingress_policy=flags.get("databaseIngressPolicy", True),
            client_egress_policy=flags.get("clientEgressPolicy", False),
        )

    # --- the whole config ------------------------------------------------------------------------

    def parse(self, values: Mapping[str, Any]) -> StackConfig:
        for name in values:
            if name not in _TOP_LEVEL_KEYS:
                self.problems.add(self.key(str(name)), f"unknown config key{_did_you_mean(str(name), _TOP_LEVEL_KEYS)}")

        def namespace(name: str, default: str) -> str | None:
            return _label(self.problems, self.key(name), values[name], why="it names a namespace") if name in values else default

        egress_namespace = namespace("egressNamespace", DEFAULT_EGRESS_NAMESPACE)
        database_namespace = namespace("databaseNamespace", DEFAULT_DATABASE_NAMESPACE)
        waypoint_name = (_label(self.problems, self.key("waypointName"), values["waypointName"])
                         if "waypointName" in values else DEFAULT_WAYPOINT_NAME)
        trust_domain = (_address(self.problems, self.key("trustDomain"), values["trustDomain"])
                        if "trustDomain" in values else DEFAULT_TRUST_DOMAIN)
        test_clients = _boolean(self.problems, self.key("testClients"), values["testClients"]) if "testClients" in values else False
        bypass = (self.bypass_protection(self.key("bypassProtection"), values["bypassProtection"])
                  if "bypassProtection" in values else BypassProtection())
        if egress_namespace is not None and egress_namespace == database_namespace:
            self.problems.add(self.key("databaseNamespace"),
                              "must differ from egressNamespace: the database namespace stays outside the mesh")
        self.reserved_namespaces = {
            name: key for name, key in ((egress_namespace, "egressNamespace"), (database_namespace, "databaseNamespace")) if name
        }

        if "databases" not in values and "services" not in values:
            self.problems.add(self.key("databases"), "is required: list the external databases, e.g. [{name: postgres-1}]")
        self.declared_databases = _declared_names(values.get("databases"))
        self.declared_services = _declared_names(values.get("services"))
        databases = _items(self.problems, self.key("databases"), values.get("databases", []), self.database) or []
        services = _items(self.problems, self.key("services"), values.get("services", []), self.service) or []
        _unique(self.problems, [(f"{key}.name", database.name) for key, database in databases], "database name")
        _unique(self.problems, [(f"{key}.name", service.name) for key, service in services], "service name")
        database_keys = {database.name: f"{key}.name" for key, database in databases}
        for key, service in services:
            if service.name in database_keys:
                self.problems.add(f"{key}.name", f"{_shown(service.name)} is also a database ({database_keys[service.name]}); "
                                                 "each name is a ServiceEntry, so pick another")
        self.services = {service.name: service for _, service in services}
        grants = _items(self.problems, self.key("grants"), values.get("grants", []), self.grant) or []
        _unique(self.problems, [(f"{key}.namespace", grant.namespace) for key, grant in grants], "grant namespace")

        if self.problems.found:
            raise ConfigError(self.problems.found)
        assert egress_namespace and database_namespace and waypoint_name and trust_domain and bypass
        return StackConfig(
            databases=tuple(database for _, database in databases),
            services=tuple(service for _, service in services),
            grants=tuple(grant for _, grant in grants),
            egress_namespace=egress_namespace,
            database_namespace=database_namespace,
            waypoint_name=waypoint_name,
            test_clients=bool(test_clients),
            trust_domain=trust_domain,
            bypass_protection=bypass,
        )


def parse_config(values: Mapping[str, Any], project: str = PROJECT) -> StackConfig:
    """Validate structured config values keyed without the project prefix (as in a stack file)."""
    return _Parser(project).parse(values)


def parse_pulumi_config(raw: Mapping[str, str], project: str = PROJECT) -> StackConfig:
    """Validate config as Pulumi hands it to a program: `<project>:<key>` → string, JSON for structures."""
    prefix = f"{project}:"
    values: dict[str, Any] = {}
    for full_key, text in raw.items():
        if not full_key.startswith(prefix):
            continue
        name = full_key[len(prefix):]
        if name not in _STRUCTURED_KEYS:
            values[name] = text
            continue
        try:
            values[name] = json.loads(text)
        except RecursionError:
            raise ConfigError([f"{full_key}: is nested too deeply to be a config value"]) from None
        except (TypeError, ValueError):
            # A plain scalar where a structure belongs: keep the text so the type check names it.
            values[name] = text
    try:
        return parse_config(values, project)
    except RecursionError:
        raise ConfigError([f"{prefix}{name}: is nested too deeply to be a config value" for name in values
                           if name in _STRUCTURED_KEYS]) from None


def stack_file_values(path: Path, project: str = PROJECT) -> dict[str, Any]:
    """The `<project>:` config values of a `Pulumi.<stack>.yaml` file, keyed without the prefix."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: 'config' must be a map of '{project}:<key>' entries"])
    prefix = f"{project}:"
    return {key[len(prefix):]: value for key, value in config.items() if isinstance(key, str) and key.startswith(prefix)}


def load_stack_file(path: Path, project: str = PROJECT) -> StackConfig:
    return parse_config(stack_file_values(path, project), project)
