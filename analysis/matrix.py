"""Who can reach what: the verdict for every client (see `clients`) and every ServiceEntry port,
with the routes around the waypoint, and for any other external destination (see `egress`).

Linear in policies plus cells: policies are parsed and indexed once per index; for each
ServiceEntry port the applicable policies are judged once per kind of client they can tell apart
(see `sources`), and a cell is then a lookup. A cell holds a shared `Verdict`: a reason exists once
per distinct verdict, never once per cell, and a cell with routes around the waypoint shares its
verdict with every cell of the same verdict and routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from .authz import PortRules, client_outside_ambient, port_rules
from .binding import waypoint_binding
from .bypass import Bypass, namespace_routes_possible, opted_out, routes
from .clients import client_identity as client_identity
from .clients import client_name as client_name
from .clients import client_namespaces as client_namespaces
from .clients import default_clients as default_clients
from .clients import running_as, trust_domain
from .egress import external_egress
from .istio import DEFAULT_ROOT_NAMESPACE, NEWEST_SUPPORTED, Istio, IstioVersion, OutboundTrafficPolicy
from .manifests import SERVICE_ENTRY, Mesh, MeshIndex, ObjectRef, Resource, as_index
from .mesh import service_entry_ports
from .policy import DEFAULT_TRUST_DOMAIN, Facts, Policy
from .sidecar import runs_sidecars
from .sidecar_access import Asked, SidecarColumns
from .sidecar_access import other_destinations as sidecar_other_destinations
from .sources import SourceKinds
from .truth import Match
from .verdict import Decision, Verdict

OTHER_DESTINATIONS = "any other external"  # the label of the last column


@dataclass(frozen=True)
class Destination:
    service_entry: ObjectRef
    port: int
    label: str  # `namespace/name`, with `:port` when the ServiceEntry has several ports


class AccessMatrix:
    """The verdict of every client for every destination, and for any other external destination."""

    def __init__(
        self,
        clients: Sequence[str],
        destinations: Sequence[Destination],
        columns: Sequence[Sequence[Verdict]],
        other_destinations: Mapping[str, Verdict],
    ) -> None:
        """`columns[d][c]` is the verdict of `clients[c]` for `destinations[d]`; `other_destinations`
        has every client's verdict for any destination no ServiceEntry declares."""
        self.clients = tuple(clients)
        self.destinations = tuple(destinations)
        self.other_destinations: Mapping[str, Verdict] = other_destinations
        self._columns = columns
        self._rows = {client: position for position, client in enumerate(self.clients)}
        self._labels = {destination.label: position for position, destination in enumerate(self.destinations)}

    def verdict(self, client: str, destination: str) -> Verdict:
        """Raises KeyError for a client or destination label the matrix does not have."""
        return self._columns[self._labels[destination]][self._rows[client]]

    def decision(self, client: str, destination: str) -> Decision:
        return self.verdict(client, destination).decision

    def reason(self, client: str, destination: str) -> str:
        """Why the cell reads as it does: the waypoint's reason, with the routes around it."""
        return self.verdict(client, destination).reason

    @property
    def cells(self) -> Mapping[tuple[str, str], Verdict]:
        """Every cell by (client, destination label), looked up as asked rather than stored twice."""
        return _Cells(self)

    def entries(self) -> Iterator[tuple[str, Destination, Verdict]]:
        """Every cell, row by row."""
        for row, client in enumerate(self.clients):
            for column, destination in enumerate(self.destinations):
                yield client, destination, self._columns[column][row]

    def to_dict(self, *, reasons: bool = True) -> dict[str, Any]:
        """Clients, destinations, each cell's decision (and reason, unless `reasons` is false), the
        routes around the waypoint of the cells that have them, and each client's verdict for any
        other external destination."""

        def by_client(value: Callable[[Verdict], str]) -> dict[str, dict[str, str]]:
            return {
                client: {d.label: value(self._columns[column][row]) for column, d in enumerate(self.destinations)}
                for row, client in enumerate(self.clients)
            }

        bypassed: dict[str, dict[str, list[str]]] = {}
        for client, destination, verdict in self.entries():
            if verdict.bypasses:
                bypassed.setdefault(client, {})[destination.label] = list(verdict.bypasses)
        document: dict[str, Any] = {
            "clients": list(self.clients),
            "destinations": [destination.label for destination in self.destinations],
            "cells": by_client(lambda verdict: verdict.decision.value),
            "bypasses": bypassed,  # only the cells with a route around the waypoint
            "other_destinations": {client: self.other_destinations[client].decision.value for client in self.clients},
        }
        if reasons:
            document["reasons"] = by_client(lambda verdict: verdict.reason)
            document["other_destination_reasons"] = {
                client: self.other_destinations[client].reason for client in self.clients
            }
        return document

    def to_json(self, *, reasons: bool = True) -> str:
        return json.dumps(self.to_dict(reasons=reasons), indent=2, sort_keys=True)


class _Cells(Mapping[tuple[str, str], Verdict]):
    def __init__(self, matrix: AccessMatrix) -> None:
        self._matrix = matrix

    def __getitem__(self, key: tuple[str, str]) -> Verdict:
        return self._matrix.verdict(*key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((client, destination.label) for client, destination, _ in self._matrix.entries())

    def __len__(self) -> int:
        return len(self._matrix.clients) * len(self._matrix.destinations)


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


# (namespace, service account, trust domain) of a row.
Identity = tuple[str, str, str]


def access_matrix(
    mesh: Mesh,
    clients: Iterable[str] | None = None,
    *,
    istio_version: IstioVersion | str = NEWEST_SUPPORTED,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
    request: HttpRequest | None = None,
    outbound_traffic_policy: OutboundTrafficPolicy | str = OutboundTrafficPolicy.ALLOW_ANY,
) -> AccessMatrix:
    """Rows default to `default_clients`; columns are every ServiceEntry port. A row runs with the
    trust domain a policy principal names its service account with, `cluster.local` otherwise.
    Rows of namespaces that run sidecars are judged by their sidecars and egress gateway (see
    `sidecar_access`), under the mesh's `outbound_traffic_policy`.

    Without `request`, a cell on an HTTP port stands for every request, so rules on methods, paths
    or headers make it LIMITED; with one, every cell is that request (on TCP ports it is just a
    connection)."""
    index = as_index(mesh)
    istio = Istio.of(istio_version, root_namespace, outbound_traffic_policy)
    rows = tuple(sorted(set(clients))) if clients is not None else default_clients(index)
    identities = [(namespace, account, trust_domain(index, namespace, account)) for namespace, account in map(running_as, rows)]
    judge = _Judge(index, istio, request, identities)
    ports = _ports(index)
    columns = [judge.column(entry, destination.port) for destination, entry in ports]
    other = {
        row: sidecar_other_destinations(index, namespace, istio)
        if runs_sidecars(index, namespace)
        else external_egress(index, namespace)
        for row, (namespace, _, _) in zip(rows, identities, strict=True)
    }
    return AccessMatrix(rows, [destination for destination, _ in ports], columns, other)


class _Judge:
    """Judges the cells of one matrix: each policy once per kind of client it can tell apart, each
    column once per kind of client its policies can (see `sources`). A column starts as the verdict
    of the clients no policy of it names, and only the rows its policies do tell apart, with routes
    around the waypoint or outside ambient are then looked at."""

    def __init__(self, index: MeshIndex, istio: Istio, request: HttpRequest | None, identities: Sequence[Identity]) -> None:
        self._index = index
        self._istio = istio
        self._request = request
        self._identities = identities
        self._kinds: dict[ObjectRef, SourceKinds] = {}
        self._matches: dict[Hashable, Match] = {}
        asked = Asked.of(request.method, request.path, request.host, request.headers) if request else Asked()
        self._sidecars = SidecarColumns(index, istio, identities, asked)
        outside = {namespace: client_outside_ambient(index, namespace) for namespace, _, _ in identities}
        sidecar_rows = set(self._sidecars.rows)
        self._outside = [
            (row, outside[namespace])
            for row, (namespace, _, _) in enumerate(identities)
            if outside[namespace] and row not in sidecar_rows
        ]
        self._ambient = [row for row, (namespace, _, _) in enumerate(identities) if outside[namespace] is None]
        self._by_namespace: dict[str, list[int]] = {}
        for row in self._ambient:
            self._by_namespace.setdefault(identities[row][0], []).append(row)
        self._default_domain = [row for row in self._ambient if identities[row][2] == DEFAULT_TRUST_DOMAIN]
        self._opting_out = [row for row in self._ambient if opted_out(index, identities[row][0], istio)]
        self._other_domains = [row for row in self._ambient if identities[row][2] != DEFAULT_TRUST_DOMAIN]

    def column(self, service_entry: Resource, port: int) -> list[Verdict]:
        """Each row's verdict for one ServiceEntry port."""
        index, istio, identities = self._index, self._istio, self._identities
        rules = port_rules(index, service_entry, port, istio)
        kinds = SourceKinds.of(rules.policies)
        judged: dict[Hashable, Verdict] = {}

        def verdict(row: int, matched: Callable[[], list[Match]] | None = None) -> Verdict:
            key = kinds.key(*identities[row])
            if key not in judged:
                judged[key] = rules.decide_matched(matched() if matched else self._matched(rules, port, identities[row]))
            return judged[key]

        unnamed = next((row for row in self._default_domain if identities[row][0] not in kinds.named), None)
        if kinds.patterns or unnamed is None:
            cells: list[Verdict | None] = [None] * len(identities)
            for row in self._ambient:
                cells[row] = verdict(row)
        else:
            # Every unnamed row of the default trust domain is judged as `unnamed` is; a named one
            # differs from it only in the policies that name its namespace.
            unnamed_matches = self._matched(rules, port, identities[unnamed])
            cells = [verdict(unnamed, lambda: unnamed_matches)] * len(identities)
            naming: dict[str, list[int]] = {}
            for position, policy in enumerate(rules.policies):
                for namespace in self._policy_kinds(policy).named:
                    naming.setdefault(namespace, []).append(position)
            for namespace in kinds.named:
                for row in self._by_namespace.get(namespace, ()):
                    if identities[row][2] != DEFAULT_TRUST_DOMAIN:
                        continue  # judged below with the other trust domains

                    def matched(row: int = row, namespace: str = namespace) -> list[Match]:
                        found = list(unnamed_matches)
                        for position in naming[namespace]:
                            found[position] = self._match(rules, port, rules.policies[position], identities[row])
                        return found

                    cells[row] = verdict(row, matched)
            for row in self._other_domains:
                cells[row] = verdict(row)
        for row, outside in self._outside:
            cells[row] = outside
        combined: dict[tuple[int, tuple[Bypass, ...]], Verdict] = {}
        for row in self._routed(service_entry):
            namespace, account, _ = identities[row]
            around = routes(index, namespace, account, service_entry, istio)
            if around:
                cells[row] = _around_waypoint(verdict(row), around, combined)
        for row, through_sidecar, around in self._sidecars.column(service_entry, port):
            cells[row] = _around_waypoint(through_sidecar, around, combined, "the egress gateway") if around else through_sidecar
        return cast(list[Verdict], cells)  # every row is ambient, and filled, or outside, or runs sidecars

    def _routed(self, service_entry: Resource) -> list[int]:
        """The rows that may have routes around the ServiceEntry's waypoint: every ambient one when
        its hosts, backends or shadows leave some, else those of namespaces with workloads that opt
        out of capture."""
        if namespace_routes_possible(self._index, service_entry, self._istio):
            return self._ambient
        return self._opting_out if waypoint_binding(self._index, service_entry, self._istio).enforced else []

    def _policy_kinds(self, policy: Policy) -> SourceKinds:
        if policy.ref not in self._kinds:
            self._kinds[policy.ref] = SourceKinds.of([policy])
        return self._kinds[policy.ref]

    def _matched(self, rules: PortRules, port: int, identity: Identity) -> list[Match]:
        """How each of the port's policies matches the identity."""
        return [self._match(rules, port, policy, identity) for policy in rules.policies]

    def _match(self, rules: PortRules, port: int, policy: Policy, identity: Identity) -> Match:
        """How the policy matches the identity, judged once per kind of client the policy tells apart."""
        key = (policy.ref, rules.http, port, rules.host, self._policy_kinds(policy).key(*identity))
        if key not in self._matches:
            self._matches[key] = policy.evaluate(self._facts(rules, port, identity), self._istio, http=rules.http)
        return self._matches[key]

    def _facts(self, rules: PortRules, port: int, identity: Identity) -> Facts:
        namespace, account, domain = identity
        request = self._request
        headers = request.headers if request else None
        return Facts(
            namespace=namespace,
            service_account=account,
            trust_domain=domain,
            port=port,
            host=(request.host if request else None) or rules.host,
            method=request.method if request else None,
            path=request.path if request else None,
            headers={name.lower(): value for name, value in headers.items()} if headers else None,
        )


def _around_waypoint(
    verdict: Verdict,
    found: tuple[Bypass, ...],
    combined: dict[tuple[int, tuple[Bypass, ...]], Verdict],
    enforcer: str = "the waypoint",
) -> Verdict:
    """The enforcer's verdict with the routes around it, made once per verdict and routes. Where the
    enforcer (the waypoint, or in sidecar mode the egress gateway) does not plainly allow (DENY,
    LIMITED, UNDECIDED), a route around it reaches the database whatever it does: BYPASS."""
    key = (id(verdict), found)
    if key not in combined:
        paths = tuple(map(str, found))
        undone = verdict.decision in (Decision.DENY, Decision.LIMITED, Decision.UNDECIDED)
        combined[key] = replace(
            verdict,
            decision=Decision.BYPASS if undone else verdict.decision,
            reason=f"{verdict.reason}; reachable around {enforcer} via {', '.join(paths)}",
            bypasses=paths,
        )
    return combined[key]


def _ports(index: MeshIndex) -> list[tuple[Destination, Resource]]:
    """Every ServiceEntry port as a destination, with its ServiceEntry."""
    found = []
    for service_entry in index.all(SERVICE_ENTRY):
        ports = service_entry_ports(service_entry)
        for port in ports:
            label = f"{service_entry.ref}:{port.number}" if len(ports) > 1 else str(service_entry.ref)
            found.append((Destination(service_entry.ref, port.number, label), service_entry))
    return found
