"""Who can reach what: the verdict for every client and every ServiceEntry port.

A client is a namespace, `ns`, or one workload identity in it, `ns/sa/<service account>`. The bare
`ns` stands for a workload running as the namespace's `default` service account, which is what a
pod gets without `serviceAccountName`: the identity of any workload no policy singles out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .attachment import policies
from .authz import Decision, Request, Verdict, judge
from .bypass import Bypass, bypasses
from .istio import DEFAULT_ROOT_NAMESPACE, NEWEST_SUPPORTED, Istio, IstioVersion
from .manifests import GATEWAY, NAMESPACE, SERVICE_ENTRY, Mesh, MeshIndex, ObjectRef, as_index
from .mesh import Enrollment, enrollment, is_waypoint, service_entry_ports
from .policy import DEFAULT_TRUST_DOMAIN, Policy, Principal

DEFAULT_SERVICE_ACCOUNT = "default"
# As in a principal's `ns/<ns>/sa/<sa>`.
_SERVICE_ACCOUNT_INFIX = "/sa/"


@dataclass(frozen=True)
class Destination:
    service_entry: ObjectRef
    port: int
    label: str  # `namespace/name`, with `:port` when the ServiceEntry has several ports


@dataclass(frozen=True)
class AccessMatrix:
    clients: tuple[str, ...]
    destinations: tuple[Destination, ...]
    cells: Mapping[tuple[str, str], Verdict]  # by (client, destination label)

    def verdict(self, client: str, destination: str) -> Verdict:
        return self.cells[(client, destination)]

    def entries(self) -> Iterator[tuple[str, Destination, Verdict]]:
        """Every cell, row by row."""
        for client in self.clients:
            for destination in self.destinations:
                yield client, destination, self.verdict(client, destination.label)

    def to_dict(self) -> dict[str, Any]:
        def by_client(value: Any) -> dict[str, dict[str, str]]:
            return {
                client: {d.label: value(self.verdict(client, d.label)) for d in self.destinations}
                for client in self.clients
            }

        bypassed: dict[str, dict[str, list[str]]] = {}
        for client, destination, verdict in self.entries():
            if verdict.bypasses:
                bypassed.setdefault(client, {})[destination.label] = list(verdict.bypasses)
        return {
            "clients": list(self.clients),
            "destinations": [destination.label for destination in self.destinations],
            "cells": by_client(lambda verdict: verdict.decision.value),
            "reasons": by_client(lambda verdict: verdict.reason),
            "bypasses": bypassed,  # only the cells with a route around the waypoint
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request to ask every cell about: its method and path, and optionally its host (the
    ServiceEntry's first host otherwise) and headers (any otherwise)."""

    method: str
    path: str
    host: str | None = None
    headers: Mapping[str, str] | None = field(default=None, hash=False)

    @classmethod
    def parse(cls, text: str) -> HttpRequest:
        """`METHOD:PATH`, then optional `name=value` headers separated by spaces, `host=...` among
        them: `GET:/get`, `POST:/post?x=1 host=api.example.com x-team=payments`."""
        target, *header_texts = text.split() or [""]
        method, separator, path = target.partition(":")
        if not separator or not method or not path.startswith("/"):
            raise ValueError(f"a request is METHOD:/PATH [name=value ...], e.g. GET:/get (got {text!r})")
        headers = {}
        for header in header_texts:
            name, separator, value = header.partition("=")
            if not separator or not name:
                raise ValueError(f"a request's headers are name=value, e.g. x-team=payments (got {header!r})")
            headers[name.lower()] = value
        return cls(method, path, headers.pop("host", None), headers or None)

    def __str__(self) -> str:
        extras = [f"host={self.host}"] if self.host else []
        extras += [f"{name}={value}" for name, value in (self.headers or {}).items()]
        return " ".join([f"{self.method} {self.path}", *extras])


def access_matrix(
    mesh: Mesh,
    clients: Iterable[str] | None = None,
    *,
    istio_version: IstioVersion | str = NEWEST_SUPPORTED,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
    request: HttpRequest | None = None,
) -> AccessMatrix:
    """Rows default to `default_clients`; columns are every ServiceEntry port. A row runs with the
    trust domain a policy principal names its service account with, `cluster.local` otherwise.

    Without `request`, a cell on an HTTP port stands for every request, so rules on methods, paths
    or headers make it LIMITED; with one, every cell is that request (on TCP ports it is just a
    connection)."""
    index = as_index(mesh)
    istio = Istio.of(istio_version, root_namespace)
    rows = tuple(sorted(set(clients))) if clients is not None else default_clients(index)
    destinations = _destinations(index)
    trust_domains = _trust_domains(index)
    routes = {
        (namespace, service_entry.ref): bypasses(index, namespace, service_entry, istio)
        for namespace in {_identity(client)[0] for client in rows}
        for service_entry in index.all(SERVICE_ENTRY)
    }
    cells = {}
    for client in rows:
        namespace, service_account = _identity(client)
        trust_domain = trust_domains.get((namespace, service_account), DEFAULT_TRUST_DOMAIN)
        for destination in destinations:
            asked = Request(
                namespace,
                destination.service_entry,
                destination.port,
                service_account=service_account,
                trust_domain=trust_domain,
                method=request.method if request else None,
                path=request.path if request else None,
                host=request.host if request else None,
                headers=request.headers if request else None,
            )
            around = routes[(namespace, destination.service_entry)]
            cells[(client, destination.label)] = _around_waypoint(judge(index, asked, istio), around)
    return AccessMatrix(rows, destinations, cells)


def client_namespaces(index: MeshIndex) -> tuple[str, ...]:
    """Namespaces an ALLOW or DENY policy names as a source, plus every ambient namespace, except the
    namespaces that host the waypoint or the ServiceEntries: those are the egress machinery, not its clients."""
    named = {namespace for policy in _deciding_policies(index) for namespace in policy.source_namespaces()}
    ambient = {ns.name for ns in index.all(NAMESPACE) if enrollment(index, ns.name) is Enrollment.AMBIENT}
    machinery = {gateway.namespace for gateway in index.all(GATEWAY) if is_waypoint(gateway)}
    machinery |= {service_entry.namespace for service_entry in index.all(SERVICE_ENTRY)}
    return tuple(sorted((named | ambient) - machinery))


def default_clients(index: MeshIndex) -> tuple[str, ...]:
    """Every client namespace, and beside it `ns/sa/<name>` for each service account an ALLOW or DENY
    policy names in a principal or in `serviceAccounts`. The `default` account gets no row of its
    own: the bare `ns` is it."""
    namespaces = client_namespaces(index)
    named = {(principal.namespace, principal.service_account) for principal in _named_principals(index)}
    named |= {pair for policy in _deciding_policies(index) for pair in policy.source_service_accounts()}
    accounts = {
        client_name(namespace, account)
        for namespace, account in named
        if namespace in namespaces and account != DEFAULT_SERVICE_ACCOUNT
    }
    return tuple(sorted({*namespaces, *accounts}))


def _deciding_policies(index: MeshIndex) -> Iterator[Policy]:
    # AUDIT only logs and CUSTOM defers to an external authorizer, so their sources decide nothing.
    return (policy for policy in policies(index) if policy.action in ("ALLOW", "DENY"))


def _named_principals(index: MeshIndex) -> list[Principal]:
    return sorted({principal for policy in _deciding_policies(index) for principal in policy.source_principals()})


def _trust_domains(index: MeshIndex) -> dict[tuple[str, str], str]:
    """The trust domain each (namespace, service account) is named with, the first in sort order when
    several are; a pattern such as `*` names none, and `cluster.local` matches it."""
    domains: dict[tuple[str, str], str] = {}
    for principal in _named_principals(index):
        if "*" not in principal.trust_domain:
            domains.setdefault((principal.namespace, principal.service_account), principal.trust_domain)
    return domains


def client_name(namespace: str, service_account: str) -> str:
    """The row of one workload identity, as a principal names it: `<ns>/sa/<service account>`."""
    return f"{namespace}{_SERVICE_ACCOUNT_INFIX}{service_account}"


def client_identity(client: str) -> tuple[str, str | None]:
    """(namespace, service account) of a row; None for the bare namespace row."""
    namespace, infix, service_account = client.partition(_SERVICE_ACCOUNT_INFIX)
    return namespace, service_account if infix else None


def _identity(client: str) -> tuple[str, str]:
    """(namespace, service account) of a row; the bare namespace runs as `default`."""
    namespace, service_account = client_identity(client)
    return namespace, service_account or DEFAULT_SERVICE_ACCOUNT


def _around_waypoint(verdict: Verdict, routes: tuple[Bypass, ...]) -> Verdict:
    """The waypoint's verdict with the routes around it. Where the waypoint does not plainly allow
    (DENY, LIMITED, UNDECIDED), a route around it reaches the database whatever the waypoint does:
    BYPASS."""
    if not routes:
        return verdict
    paths = tuple(map(str, routes))
    undone = verdict.decision in (Decision.DENY, Decision.LIMITED, Decision.UNDECIDED)
    return replace(
        verdict,
        decision=Decision.BYPASS if undone else verdict.decision,
        reason=f"{verdict.reason}; reachable around the waypoint via {', '.join(paths)}",
        bypasses=paths,
    )


def _destinations(index: MeshIndex) -> tuple[Destination, ...]:
    destinations = []
    for service_entry in index.all(SERVICE_ENTRY):
        ports = service_entry_ports(service_entry)
        for port in ports:
            label = f"{service_entry.ref}:{port.number}" if len(ports) > 1 else str(service_entry.ref)
            destinations.append(Destination(service_entry.ref, port.number, label))
    return tuple(destinations)
