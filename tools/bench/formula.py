"""The exact number of resources the program records, from the counts and switches of its config.

Pure arithmetic: no Pulumi, no config model, nothing else of the benchmark, so a test or a
reader reaches the formula by importing this module alone.

What is counted is everything the mock engine records for one run (`ProgramRun.resources`):
each registration (components, Kubernetes objects, label patches of namespaces the stack does
not own, Helm releases, the stand-ins' passwords) and each read of an existing object
(`Resource.get`, recorded with `read=True`). Both cost the program a round trip to the engine.

Symbols (a switch is 1 when on, 0 when off):

    D = S + E   databases: S stand-ins (no `address`), E existing databases
    V           services; V_tls of them with `tlsOrigination`, V_hdr with `requestHeaders`
    N = Nₒ + Nᵤ grants, one namespace each: Nₒ owned (`createNamespace`), Nᵤ not owned
    G           granted (namespace, target) pairs: one AuthorizationPolicy each, however many
                accesses to one target a grant lists (G = Σ grants' distinct databases and services)
    L           grants whose namespace is locked down (`egressLockdown.enabled`, per grant; default N)
    Aₒ          service accounts named by owned grants (created)
    Nᵤₐ         not-owned grants that name a service account (with test clients its first is read)
    m           `dataplane: sidecar` (0: ambient)
    a           `serviceEntryAdmission.enabled` (default 1)
    W, I        `gatewayApi.install`, `istio.install` (default 0; I needs ambient)
    oₑ, o_d     `createEgressNamespace`, `createDatabaseNamespace` (default 1)
    i           `bypassProtection.databaseIngressPolicy` (default 1)
    t           `testClients` (default 0)

the program records

    registrations = 6·(1 − m) + (4 + oₑ)·m + 3·a + 2·W + 5·I + [S>0]·o_d
                    + (4 + 2m)·D + (4 + i)·S + (3 + 2m)·V + V_tls + (1 − m)·V_hdr
                    + (2 + m + t)·N + L + Aₒ + G
    reads         = (1 − m)·((1 − W)·(2 + [V_hdr>0]) + (1 − I)·(5 + [V_tls>0])) + 7·m
                    + (1 − oₑ) + [S>0]·(1 − o_d) + Nᵤ + t·Nᵤₐ

Each term, and where it comes from (components/, stack/control.py), is in `REGISTRATIONS` and
`READS` below. Ports, accesses' methods and paths, service accounts of grants not owned without
test clients, and the Istio version (which decides only what a ServiceEntry says) add nothing.

What `make bench` generates (existing databases, grants to namespaces not owned, the defaults):
9 + 4·D + 3·N + G registrations and 7 + N reads; at D = 1,000, N = 1,000, G = 10,000: 17,009
registrations and 1,007 reads, 18,016 resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class StackShape:
    """The counts and switches of a stack config that the resource count depends on."""

    stand_ins: int = 0
    existing: int = 0
    services: int = 0
    tls_services: int = 0
    """V_tls: services with `tlsOrigination`."""
    header_services: int = 0
    """V_hdr: services with `requestHeaders`."""
    owned_namespaces: int = 0
    unowned_namespaces: int = 0
    grants: int
    """G: granted (namespace, target) pairs."""
    unlocked_namespaces: int = 0
    """N − L: grants whose egress lockdown is off."""
    owned_service_accounts: int = 0
    """Aₒ: service accounts named by the grants of owned namespaces (created)."""
    unowned_namespaces_with_service_accounts: int = 0
    """Nᵤₐ: namespaces not owned whose grant names a service account (read with test clients)."""
    sidecar: bool = False
    service_entry_admission: bool = True
    gateway_api_installed: bool = False
    istio_installed: bool = False
    egress_namespace_owned: bool = True
    database_namespace_owned: bool = True
    database_ingress_policy: bool = True
    test_clients: bool = False

    def __post_init__(self) -> None:
        counts = (self.stand_ins, self.existing, self.services, self.tls_services, self.header_services,
                  self.owned_namespaces, self.unowned_namespaces, self.grants, self.unlocked_namespaces,
                  self.owned_service_accounts, self.unowned_namespaces_with_service_accounts)
        if min(counts) < 0:
            raise ValueError("counts cannot be negative")
        if max(self.tls_services, self.header_services) > self.services:
            raise ValueError("V_tls and V_hdr count services, so neither can exceed V")
        if not self.namespaces <= self.grants <= self.targets * self.namespaces:
            raise ValueError(f"G={self.grants}: each of the N={self.namespaces} grants names at least one and at "
                             f"most all {self.targets} targets")
        if self.unlocked_namespaces > self.namespaces:
            raise ValueError("N − L counts grants, so it cannot exceed N")
        if self.unowned_namespaces_with_service_accounts > self.unowned_namespaces:
            raise ValueError("Nᵤₐ counts namespaces not owned, so it cannot exceed Nᵤ")
        if self.owned_service_accounts and not self.owned_namespaces:
            raise ValueError("Aₒ counts service accounts of owned namespaces, and there are none")
        if self.sidecar and self.istio_installed:
            raise ValueError("the stack installs Istio for ambient only")

    @property
    def databases(self) -> int:
        return self.stand_ins + self.existing

    @property
    def targets(self) -> int:
        return self.databases + self.services

    @property
    def namespaces(self) -> int:
        return self.owned_namespaces + self.unowned_namespaces

    @property
    def locked_down_namespaces(self) -> int:
        return self.namespaces - self.unlocked_namespaces


@dataclass(frozen=True)
class Term:
    """One term of a count: `coefficient` times `value(shape)`, written `coefficient·symbol`."""

    coefficient: int
    symbol: str
    value: Callable[[StackShape], int]
    source: str
    """What the program records for it."""

    def __call__(self, shape: StackShape) -> int:
        return self.coefficient * self.value(shape)


def _ambient(shape: StackShape) -> int:
    return 1 - shape.sidecar


REGISTRATIONS: tuple[Term, ...] = (
    Term(6, "(1 − m)", _ambient,
         "ambient: EgressAccessControl, MeshPrerequisites, EgressGateway, its waypoint Gateway, its access-log "
         "Telemetry, and its Namespace (owned) or the NamespacePatch of its ambient label (not owned)"),
    Term(4, "m", lambda s: s.sidecar,
         "sidecar mode: EgressAccessControl, MeshPrerequisites, SidecarEgressGateway and the allow-nothing "
         "policy on the gateway's pods"),
    Term(1, "oₑ·m", lambda s: s.egress_namespace_owned * s.sidecar,
         "sidecar mode: the egress Namespace when owned (not owned, it is read and never labelled)"),
    Term(3, "a", lambda s: s.service_entry_admission,
         "ServiceEntryAdmission, its ValidatingAdmissionPolicy and binding"),
    Term(2, "W", lambda s: s.gateway_api_installed, "GatewayApiCrds and its ConfigFile of the release's CRDs"),
    Term(5, "I", lambda s: s.istio_installed, "IstioAmbient and its four Helm releases (base, istiod, cni, ztunnel)"),
    Term(1, "[S>0]·o_d", lambda s: (s.stand_ins > 0) * s.database_namespace_owned,
         "the stand-ins' Namespace, when there is a stand-in and the stack owns it"),
    Term(4, "D", lambda s: s.databases,
         "per database: ExternalDatabase, ExternalService, ServiceEntry, and the allow-nothing policy "
         "(ambient) or the route through the egress gateway (sidecar mode, a VirtualService)"),
    Term(2, "m·D", lambda s: s.sidecar * s.databases,
         "per database, sidecar mode: the egress gateway's server (Gateway) and mTLS subset (DestinationRule)"),
    Term(4, "S", lambda s: s.stand_ins, "per stand-in: RandomPassword, Secret, Deployment, LoadBalancer Service"),
    Term(1, "i·S", lambda s: s.database_ingress_policy * s.stand_ins,
         "per stand-in: the NetworkPolicy that admits only the egress door"),
    Term(3, "V", lambda s: s.services,
         "per service: ExternalService, ServiceEntry, and the allow-nothing policy or the route"),
    Term(2, "m·V", lambda s: s.sidecar * s.services, "per service, sidecar mode: the gateway's server and subset"),
    Term(1, "V_tls", lambda s: s.tls_services,
         "per TLS-originating service: its DestinationRule (at the waypoint, or at the egress gateway)"),
    Term(1, "(1 − m)·V_hdr", lambda s: _ambient(s) * s.header_services,
         "per service with request headers, ambient: its HTTPRoute (sidecar mode sets them on its route)"),
    Term(2, "N", lambda s: s.namespaces, "per grant: NamespaceGrant, and its Namespace (owned) or NamespacePatch"),
    Term(1, "m·N", lambda s: s.sidecar * s.namespaces, "per grant, sidecar mode: the Sidecar listing what it may see"),
    Term(1, "t·N", lambda s: s.test_clients * s.namespaces, "per grant, with test clients: the client Pod"),
    Term(1, "L", lambda s: s.locked_down_namespaces, "per locked-down grant: its egress-lockdown NetworkPolicy"),
    Term(1, "Aₒ", lambda s: s.owned_service_accounts, "the service accounts of owned namespaces, created"),
    Term(1, "G", lambda s: s.grants, "per (namespace, target) pair: one ALLOW AuthorizationPolicy"),
)

READS: tuple[Term, ...] = (
    Term(2, "(1 − m)·(1 − W)", lambda s: _ambient(s) * (1 - s.gateway_api_installed),
         "the Gateway and GatewayClass CRDs, unless the stack installs the Gateway API"),
    Term(1, "(1 − m)·(1 − W)·[V_hdr>0]", lambda s: _ambient(s) * (1 - s.gateway_api_installed) * (s.header_services > 0),
         "the HTTPRoute CRD, when some service adds request headers"),
    Term(5, "(1 − m)·(1 − I)", lambda s: _ambient(s) * (1 - s.istio_installed),
         "the ServiceEntry, AuthorizationPolicy and Telemetry CRDs, the `istio-waypoint` GatewayClass and the "
         "ztunnel DaemonSet (whose image tells Istio's version), unless the stack installs Istio"),
    Term(1, "(1 − m)·(1 − I)·[V_tls>0]", lambda s: _ambient(s) * (1 - s.istio_installed) * (s.tls_services > 0),
         "the DestinationRule CRD, when some service originates TLS"),
    Term(7, "m", lambda s: s.sidecar,
         "sidecar mode: the CRDs of ServiceEntry, AuthorizationPolicy, Gateway, VirtualService, DestinationRule "
         "and Sidecar, and the egress gateway's Service"),
    Term(1, "(1 − oₑ)", lambda s: 1 - s.egress_namespace_owned, "the egress namespace, when the stack does not own it"),
    Term(1, "[S>0]·(1 − o_d)", lambda s: (s.stand_ins > 0) * (1 - s.database_namespace_owned),
         "the stand-ins' namespace, when there is a stand-in and the stack does not own it"),
    Term(1, "Nᵤ", lambda s: s.unowned_namespaces, "each namespace not owned, before its label is patched"),
    Term(1, "t·Nᵤₐ", lambda s: s.test_clients * s.unowned_namespaces_with_service_accounts,
         "with test clients, in a namespace not owned, the service account the client runs as"),
)


def registrations(shape: StackShape) -> int:
    """What the program creates or patches."""
    return sum(term(shape) for term in REGISTRATIONS)


def reads(shape: StackShape) -> int:
    """What the program reads from the cluster."""
    return sum(term(shape) for term in READS)


def resources(shape: StackShape) -> int:
    """Everything the mock engine records: registrations and reads."""
    return registrations(shape) + reads(shape)
