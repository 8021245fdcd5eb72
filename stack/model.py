"""The stack config model: what a `Pulumi.<stack>.yaml` may say under `ambient-egress:`, declared once.

Frozen pydantic models: names, aliases (the camelCase keys of the stack file), defaults, types and
the JSON Schema an editor uses all come from these declarations. Rules that span several keys
(a grant names a declared database; names are unique) sit on the model that holds those keys, and
report every problem at once, each at its own key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    StrictStr,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError, ValidationError

from components import manifests
from components.grants import identities_in_order
from components.names import shown
from components.values import (
    DEFAULT_DATABASE_NAMESPACE,
    DEFAULT_DATABASE_PORT,
    DEFAULT_EGRESS_NAMESPACE,
    DEFAULT_TRUST_DOMAIN,
    DEFAULT_WAYPOINT_NAME,
    RESERVED_NAMESPACES,
    SYSTEM_NAMESPACES,
    Dataplane,
    Protocol,
    ServicePort,
)

from .base import Model, Problem, at, duplicates, entries, raise_problems, validated_with
from .errors import did_you_mean, problem
from .settings import (
    BypassProtection,
    DataplaneMode,
    EgressLockdown,
    GatewayApi,
    Istio,
    ServiceEntryAdmission,
    SidecarMode,
)
from .types import (
    Address,
    Flag,
    HeaderMap,
    HttpMethod,
    Label,
    NamespaceName,
    PathPattern,
    Port,
    PortName,
    PortProtocol,
    RequestPath,
    ServiceAccountName,
    ServiceName,
    structured,
)

PROJECT = "ambient-egress"

# --- databases and services ------------------------------------------------------------------------


class Database(Model):
    """An external database that namespaces may be granted.

    `address` unset means a PostgreSQL stand-in is deployed behind a LoadBalancer; set, it is an
    existing database (IPv4 address or DNS name) and nothing is deployed for it.
    """

    name: ServiceName
    port: Port = DEFAULT_DATABASE_PORT
    address: Address | None = None

    @property
    def is_stand_in(self) -> bool:
        return self.address is None


class PortConfig(Model):
    number: Port
    protocol: PortProtocol = Protocol.TCP
    """TCP, HTTP, HTTPS or TLS: what the waypoint sees, and so which policy fields can apply."""
    name: PortName = ""
    """The ServiceEntry port name. Default: `<protocol>-<number>` in lowercase."""

    def value(self) -> ServicePort:
        return ServicePort(number=self.number, protocol=self.protocol, name=self.name)


class SampleRequest(Model):
    """A request `make plan` evaluates from every client, to show what a limited grant permits."""

    method: HttpMethod
    path: RequestPath


class Service(Model):
    """Any external service behind the egress waypoint: an API, a message broker, a database."""

    name: ServiceName
    host: Address
    """A DNS name, used as it is, or an IPv4 address, which becomes `<ip>.nip.io`."""
    ports: Annotated[tuple[PortConfig, ...], Field(min_length=1)]
    tls_origination: Flag = False
    """Clients speak plain HTTP; the waypoint sends it on as TLS to port 443."""
    request_headers: HeaderMap = Field(default_factory=dict)
    """Headers the waypoint adds to every request (an HTTPRoute on the ServiceEntry)."""
    tls_credential_name: Label | None = None
    """With tlsOrigination: a Secret in the egress namespace whose `ca.crt` signs the server's certificate."""
    sample_requests: tuple[SampleRequest, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        found = duplicates(((("ports", index, "number"), str(port.number)) for index, port in enumerate(self.ports)), "port")
        found += duplicates(((("ports", index, "name"), port.name) for index, port in enumerate(self.ports) if port.name),
                             "port name")
        http_ports = len(self.http_ports)
        if self.tls_origination and http_ports != len(self.ports):
            found.append(at(("tlsOrigination",), "needs every port to be HTTP: the waypoint originates TLS for the "
                                                   "whole host; declare other ports as a separate service", True))
        if self.request_headers and http_ports != 1:
            found.append(at(("requestHeaders",), f"needs exactly one HTTP port to route (found {http_ports})"))
        if self.sample_requests and not http_ports:
            found.append(at(("sampleRequests",), "needs an HTTP port: requests are only visible on HTTP"))
        if self.tls_credential_name and not self.tls_origination:
            found.append(at(("tlsCredentialName",), "needs tlsOrigination: true; the CA checks the certificate of "
                                                      "the TLS the waypoint originates", self.tls_credential_name))
        raise_problems(found)
        return self

    @property
    def http_ports(self) -> tuple[PortConfig, ...]:
        return tuple(port for port in self.ports if port.protocol is Protocol.HTTP)


# --- grants --------------------------------------------------------------------------------------------


def _declared_database(name: str, info: ValidationInfo) -> str:
    declared = (info.context or {}).get("databases", set())
    if name not in declared:
        raise problem(f"unknown database {shown(name)}{did_you_mean(name, declared)}; "
                      f"declare it under {PROJECT}:databases first")
    return name


def _unique(what: str) -> AfterValidator:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        raise_problems(duplicates((((index,), value) for index, value in enumerate(values)), what))
        return values
    return AfterValidator(check)


ServiceAccounts = Annotated[tuple[ServiceAccountName, ...], Field(min_length=1), _unique("service account")]
DatabaseName = Annotated[StrictStr, AfterValidator(_declared_database)]


def _access_form(value: Any) -> Any:
    # A service granted by name alone is an access with no limits.
    return {"name": value} if isinstance(value, str) else value


class Access(Model):
    """One grant of one service: any request, or only some (HTTP), by the grant's identities or some."""

    name: StrictStr
    methods: Annotated[tuple[HttpMethod, ...], Field(min_length=1)] = ()
    paths: Annotated[tuple[PathPattern, ...], Field(min_length=1)] = ()
    service_accounts: ServiceAccounts | None = None
    """Only these service accounts. Default: the grant's own."""

    @model_validator(mode="after")
    def _granted_service(self, info: ValidationInfo) -> Access:
        context = info.context or {}
        declared, services = context.get("services", set()), context.get("valid_services", {})
        if self.name not in declared:
            raise_problems([at((), f"unknown service {shown(self.name)}{did_you_mean(self.name, declared)}; "
                            f"declare it under {PROJECT}:services first", self.name)])
        service = services.get(self.name)
        if service is not None and self.is_limited and not service.http_ports:
            raise_problems([at(("methods" if self.methods else "paths",),
                        f"{service.name} has no HTTP port, and TCP policies may use only ports, namespaces and "
                        "principals: remove methods and paths, or declare the port as HTTP")])
        return self

    @property
    def is_limited(self) -> bool:
        return bool(self.methods or self.paths)


class Grant(Model):
    """`namespace` may reach each of `databases` and `services`; with `serviceAccounts`, only those
    identities may."""

    namespace: NamespaceName
    create_namespace: Flag = False
    """Own the namespace: create it and delete it with the grant. Default: it exists and belongs to
    its team; the stack only labels it for ambient and leaves the label."""
    databases: Annotated[tuple[DatabaseName, ...], Field(min_length=1), _unique("database")] = ()
    services: Annotated[tuple[Annotated[Access, BeforeValidator(_access_form, json_schema_input_type=str | Access)], ...],
                        Field(min_length=1)] = ()
    service_accounts: ServiceAccounts = ()
    egress_lockdown: EgressLockdown | None = None
    """This namespace's lockdown: `enabled` overrides the stack's, `allowCidrs` add to it."""

    @model_validator(mode="wrap")
    @classmethod
    def _whole(cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo) -> Self:
        found = []
        if isinstance(data, dict):
            if "databases" not in data and "services" not in data:
                found.append(at(("databases",), "is required: list the databases (or services) this namespace may reach"))
            found += _namespace_role(data.get("namespace"), data.get("createNamespace"), info)
        return validated_with(found, handler, data)

    def identities(self) -> tuple[str, ...]:
        """Every service account the grant names, in the order `NamespaceGrant` references them."""
        return identities_in_order(self.service_accounts, (access.service_accounts for access in self.services))


def _namespace_role(namespace: Any, create: Any, info: ValidationInfo) -> list[Problem]:
    if not isinstance(namespace, str):
        return []
    roles: Mapping[str, str] = (info.context or {}).get("stack_namespaces", {})
    if namespace in roles:
        return [at(("namespace",), f"{shown(namespace)} is the {roles[namespace]}; grant a client namespace instead", namespace)]
    if namespace in SYSTEM_NAMESPACES:
        return [at(("namespace",), f"{shown(namespace)} is a system namespace; grant a namespace of your own", namespace)]
    if namespace in RESERVED_NAMESPACES and create in (True, "true"):
        return [at(("createNamespace",), f"{shown(namespace)} exists in every cluster and is never owned by a stack; "
                                          "remove createNamespace", create)]
    return []


# --- the whole stack ---------------------------------------------------------------------------------

Structured = BeforeValidator(structured)
_STACK_NAMESPACES = (("egressNamespace", DEFAULT_EGRESS_NAMESPACE), ("databaseNamespace", DEFAULT_DATABASE_NAMESPACE))


class StackConfig(Model):
    """Everything under `ambient-egress:` in a stack config. Keys are declared in the order their
    problems are reported."""

    egress_namespace: NamespaceName = DEFAULT_EGRESS_NAMESPACE
    create_egress_namespace: Flag = True
    """Own the egress namespace. False: it exists; the stack only labels it for ambient."""
    database_namespace: NamespaceName = DEFAULT_DATABASE_NAMESPACE
    create_database_namespace: Flag = True
    """Own the stand-ins' namespace. False: it exists, outside the mesh."""
    waypoint_name: Label = DEFAULT_WAYPOINT_NAME
    trust_domain: Address = DEFAULT_TRUST_DOMAIN
    dataplane: DataplaneMode = Dataplane.AMBIENT
    """ambient (ztunnel and the egress waypoint) or sidecar (Envoy sidecars and an Istio egress gateway)."""
    sidecar: Annotated[SidecarMode, Structured] = Field(default_factory=lambda: SidecarMode())
    istio: Annotated[Istio, Structured] = Field(default_factory=lambda: Istio())
    gateway_api: Annotated[GatewayApi, Structured] = Field(default_factory=lambda: GatewayApi())
    test_clients: Flag = False
    bypass_protection: Annotated[BypassProtection, Structured] = Field(default_factory=BypassProtection)
    egress_lockdown: Annotated[EgressLockdown, Structured] = Field(default_factory=EgressLockdown)
    service_entry_admission: Annotated[ServiceEntryAdmission, Structured] = Field(default_factory=ServiceEntryAdmission)
    databases: Annotated[tuple[Database, ...], Structured] = ()
    services: Annotated[tuple[Service, ...], Structured] = ()
    grants: Annotated[tuple[Grant, ...], Structured] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _whole(cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo) -> Self:
        if not isinstance(data, dict):
            raise problem(f"must be a map of config keys (got {shown(data)})")
        raw = {key: _decoded(value) for key, value in data.items()}
        if info.context is not None:
            info.context.update(_context_of(raw))
        config = validated_with(_across(raw), handler, data)
        raise_problems([*config._collisions(), *config._sidecar_limits()])
        return config

    def _sidecar_limits(self) -> list[Problem]:
        if self.dataplane is not Dataplane.SIDECAR:
            return []
        found = [at(("services", index, "ports"), f"has {len(service.ports)} ports; in sidecar mode a target has one, which "
                                                  "the egress gateway tells apart by SNI: declare each port as its own service")
                 for index, service in enumerate(self.services) if len(service.ports) != 1]
        if self.istio.install:
            found.append(at(("istio", "install"), "installs Istio for ambient; in sidecar mode install Istio with an egress "
                                                   "gateway yourself", True))
        return found

    def _collisions(self) -> list[Problem]:
        found: list[Problem] = []
        if self.egress_namespace == self.database_namespace:
            found.append(at(("databaseNamespace",), "must differ from egressNamespace: the database namespace stays "
                                                      "outside the mesh", self.database_namespace))
        # Each grant and target names a policy `allow-<target>-from-<namespace>`; two pairs can spell
        # the same name (`a` for `b-from-c`, `a-from-b` for `c`), and one would replace the other.
        policies: dict[str, tuple[int, str]] = {}
        for index, grant in enumerate(self.grants):
            for target in dict.fromkeys([*grant.databases, *(access.name for access in grant.services)]):
                name = manifests.grant_policy_name(target, grant.namespace)
                first = policies.setdefault(name, (index, target))
                if first[0] != index:
                    found.append(at(("grants", index, "namespace"),
                                     f"its policy for {shown(target)} would be named {name}, like the policy of "
                                     f"{PROJECT}:grants[{first[0]}] for {shown(first[1])}; rename the namespace or the "
                                     "target", grant.namespace))
        return found

    # --- what the config says, for the program and the tools ---

    def database(self, name: str) -> Database:
        return next(database for database in self.databases if database.name == name)

    def lockdown(self, grant: Grant) -> EgressLockdown:
        """The lockdown a grant's namespace gets: the grant's own switch, else the stack's, with the
        stack's CIDRs and the grant's."""
        own = grant.egress_lockdown
        return EgressLockdown.model_construct(
            enabled=own.enabled if own is not None else self.egress_lockdown.enabled,
            allow_cidrs=tuple(dict.fromkeys([*self.egress_lockdown.allow_cidrs, *(own.allow_cidrs if own else ())])),
        )



    @property
    def targets(self) -> tuple[str, ...]:
        """Every database and service name: the columns of the access matrix."""
        return tuple(database.name for database in self.databases) + tuple(service.name for service in self.services)


def _decoded(value: Any) -> Any:
    """A value as its field will see it, for the checks across fields; the field itself reports
    what cannot be decoded."""
    try:
        return structured(value)
    except PydanticCustomError:
        return value


def _names(value: Any) -> list[tuple[int, Any]]:
    return [(index, entry.get("name")) for index, entry in entries(value) if isinstance(entry, dict)]


def _context_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What nested validators need to know of the rest of the config: the declared names (valid or
    not, so a grant of a broken entry is not called undeclared), the services that are valid, and
    the stack's own namespaces."""
    services = {}
    for _, entry in entries(raw.get("services")):
        try:
            service = Service.model_validate(entry)
        except (ValidationError, RecursionError):
            continue
        services[service.name] = service
    roles: dict[str, str] = {}
    for key, default in _STACK_NAMESPACES:
        namespace = raw.get(key, default)
        if isinstance(namespace, str):
            roles.setdefault(namespace, key)
    return {
        "databases": {name for _, name in _names(raw.get("databases")) if isinstance(name, str)},
        "services": {name for _, name in _names(raw.get("services")) if isinstance(name, str)},
        "valid_services": services,
        "stack_namespaces": roles,
    }


def _across(raw: Mapping[str, Any]) -> list[Problem]:
    """Problems between entries: repeated names, a name both a database and a service, no targets."""
    found = []
    if "databases" not in raw and "services" not in raw:
        found.append(at(("databases",), "is required: list the external databases, e.g. [{name: postgres-1}]"))
    databases, services = _names(raw.get("databases")), _names(raw.get("services"))
    found += duplicates(((("databases", index, "name"), name) for index, name in databases), "database name")
    found += duplicates(((("services", index, "name"), name) for index, name in services), "service name")
    first_database: dict[str, int] = {}
    for index, name in databases:
        if isinstance(name, str):
            first_database.setdefault(name, index)
    found += [
        at(("services", index, "name"), f"{shown(name)} is also a database ({PROJECT}:databases[{first_database[name]}].name); "
                                         "each name is a ServiceEntry, so pick another", name)
        for index, name in services if isinstance(name, str) and name in first_database
    ]
    namespaces = [(("grants", index, "namespace"), entry.get("namespace"))
                  for index, entry in entries(raw.get("grants")) if isinstance(entry, dict)]
    found += duplicates(namespaces, "grant namespace")
    return found
