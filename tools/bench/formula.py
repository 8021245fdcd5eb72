"""The exact number of resources the program records for a stack of databases only.

Pure arithmetic: no Pulumi, no config model, nothing else of the benchmark, so a test or a
reader reaches the formula by importing this module alone.

What is counted is everything the mock engine records for one run (`ProgramRun.resources`):
each registration (components, Kubernetes objects, patches of objects the stack does not own,
the stand-ins' passwords) and each read of an existing object (`Resource.get`, recorded with
`read=True`). Both cost the program a round trip to the engine. With

    S stand-ins, E existing databases (with an `address`), D = S + E
    N = Nₒ + Nᵤ granted namespaces: Nₒ owned (`createNamespace: true`), Nᵤ not owned (the default)
    G grants: (namespace, database) pairs, one AuthorizationPolicy each
    Aₒ service accounts named by the grants of owned namespaces
    Nᵤₐ namespaces not owned whose grant names at least one service account
    t = testClients, i = bypassProtection.databaseIngressPolicy (default 1),
    e = bypassProtection.clientEgressPolicy and some database has an IPv4 address,
    oₑ = createEgressNamespace (default 1), o_d = createDatabaseNamespace (default 1),

the program records

    registrations = 6 + [S>0]·o_d + 4·D + (4 + i)·S + (2 + t + e)·N + Aₒ + G
    reads         = 7 + (1 − oₑ) + [S>0]·(1 − o_d) + Nᵤ + t·Nᵤₐ
    resources     = 13 + (1 − oₑ) + [S>0] + 4·D + (4 + i)·S + (2 + t + e)·N + Nᵤ + Aₒ + t·Nᵤₐ + G

Where each term comes from (components/, stack/control.py):

- 6 registrations: EgressAccessControl; MeshPrerequisites; EgressGateway with its waypoint
  Gateway, its access-log Telemetry, and its Namespace when owned or, when not, the
  NamespacePatch that sets the namespace's ambient label.
- 7 reads: MeshPrerequisites reads the five CustomResourceDefinitions a stack of databases uses
  (Gateway, GatewayClass, ServiceEntry, AuthorizationPolicy, Telemetry), the `istio-waypoint`
  GatewayClass and the ztunnel DaemonSet; 1 − oₑ: a not-owned egress namespace is read before
  its label is patched.
- [S>0]: the stand-ins' namespace, only when there is a stand-in: created when owned (o_d),
  read otherwise.
- 4 per database: ExternalDatabase, its ExternalService, the ServiceEntry and the allow-nothing
  AuthorizationPolicy.
- 4 + i per stand-in: RandomPassword, Secret, Deployment, LoadBalancer Service and, with i, the
  NetworkPolicy that admits only the egress waypoint.
- 2 + t + e per namespace: NamespaceGrant and its Namespace (owned) or NamespacePatch (not
  owned); the test-client Pod; the NetworkPolicy denying direct egress to IPv4 databases.
- Nᵤ: a namespace the stack does not own is read before its label is patched.
- Aₒ: an owned namespace's service accounts are created; t·Nᵤₐ: in a namespace not owned they
  must exist, and with test clients the first, which the client runs as, is read.
- G: one ALLOW AuthorizationPolicy per grant, beside the database's ServiceEntry.

`services` add their own terms (tests/test_resource_formula.py counts them); this module covers
what the benchmark generates. At D = 1,000 stand-ins, N = 1,000 namespaces not owned and
G = 10,000 grants: 21,007 registrations and 1,007 reads, 22,014 resources.
"""

from __future__ import annotations

from dataclasses import dataclass

PREREQUISITE_READS = 7
"""Five CustomResourceDefinitions, the waypoint GatewayClass and the ztunnel DaemonSet."""


@dataclass(frozen=True, kw_only=True)
class StackShape:
    """The counts and flags of a stack of databases that the resource count depends on."""

    stand_ins: int
    existing: int = 0
    owned_namespaces: int = 0
    unowned_namespaces: int = 0
    grants: int
    owned_service_accounts: int = 0
    """Aₒ: service accounts named by the grants of owned namespaces (created)."""
    unowned_namespaces_with_service_accounts: int = 0
    """Nᵤₐ: namespaces not owned whose grant names a service account (read with test clients)."""
    test_clients: bool = False
    database_ingress_policy: bool = True
    client_egress_policy: bool = False
    ipv4_database: bool = False
    """Some existing database's address is an IPv4 address (what a client egress policy denies)."""
    egress_namespace_owned: bool = True
    database_namespace_owned: bool = True

    def __post_init__(self) -> None:
        counts = (self.stand_ins, self.existing, self.owned_namespaces, self.unowned_namespaces, self.grants,
                  self.owned_service_accounts, self.unowned_namespaces_with_service_accounts)
        if min(counts) < 0:
            raise ValueError("counts cannot be negative")
        if not self.namespaces <= self.grants <= self.databases * self.namespaces:
            raise ValueError(f"G={self.grants}: each of the N={self.namespaces} namespaces grants at least one and at "
                             f"most all D={self.databases} databases")
        if self.unowned_namespaces_with_service_accounts > self.unowned_namespaces:
            raise ValueError("Nᵤₐ counts namespaces not owned, so it cannot exceed Nᵤ")
        if self.owned_service_accounts and not self.owned_namespaces:
            raise ValueError("Aₒ counts service accounts of owned namespaces, and there are none")

    @property
    def databases(self) -> int:
        return self.stand_ins + self.existing

    @property
    def namespaces(self) -> int:
        return self.owned_namespaces + self.unowned_namespaces

    @property
    def client_egress_policies(self) -> bool:
        """e: the policy exists only where there is an IPv4 address to deny."""
        return self.client_egress_policy and self.ipv4_database


def registrations(shape: StackShape) -> int:
    """What the program creates or patches: 6 + [S>0]·o_d + 4·D + (4 + i)·S + (2 + t + e)·N + Aₒ + G."""
    has_stand_ins = shape.stand_ins > 0
    per_namespace = 2 + shape.test_clients + shape.client_egress_policies
    return (
        6
        + (has_stand_ins and shape.database_namespace_owned)
        + 4 * shape.databases
        + (4 + shape.database_ingress_policy) * shape.stand_ins
        + per_namespace * shape.namespaces
        + shape.owned_service_accounts
        + shape.grants
    )


def reads(shape: StackShape) -> int:
    """What the program reads from the cluster: 7 + (1 − oₑ) + [S>0]·(1 − o_d) + Nᵤ + t·Nᵤₐ."""
    has_stand_ins = shape.stand_ins > 0
    return (
        PREREQUISITE_READS
        + (not shape.egress_namespace_owned)
        + (has_stand_ins and not shape.database_namespace_owned)
        + shape.unowned_namespaces
        + shape.test_clients * shape.unowned_namespaces_with_service_accounts
    )


def resources(shape: StackShape) -> int:
    """Everything the mock engine records: registrations and reads."""
    return registrations(shape) + reads(shape)
