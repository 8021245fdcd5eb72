"""NamespaceGrant: "namespace X may reach targets Y", both halves of the connection in one place.

The grantee's half enrols the namespace in ambient: a namespace the stack does not own gets only
its enrolment label, kept when the grant goes, so revoking a grant never deletes a team's
namespace, workloads or service accounts. The targets' half is one `target.grant(...)` per target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from . import manifests
from .grants import Access, AccessGrant, EgressTarget, Grantee, identities_in_order
from .names import check_namespace_ownership, dns_label_problem
from .resources import KubernetesObject, KubernetesPatch, child_options, kubernetes_object, kubernetes_patch, kubernetes_read
from .values import DEFAULT_TRUST_DOMAIN, SYSTEM_NAMESPACES, Dataplane, EgressGatewayRef, ipv4_network

TYPE_TOKEN = "ambient-egress:index:NamespaceGrant"


@dataclass(frozen=True, kw_only=True)
class NamespaceGrantArgs:
    namespace: str
    """The client namespace."""
    targets: Sequence[EgressTarget | Access]
    """What it may reach: a target as it is (any request), or an `Access` narrowing it. Several
    accesses to one target become one policy with a rule each."""
    create_namespace: bool = False
    """Own the namespace: create it (enrolled in ambient) and delete it with the grant. False: it
    must exist; the grant only labels it for ambient and leaves the label when it goes."""
    service_accounts: Sequence[str] = ()
    """Grant only these identities. Default: the whole namespace. They are created when the
    namespace is owned, and must exist otherwise."""
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    test_client: bool = False
    """Run a `client` pod with `pg_isready` in the namespace, as the first service account if any."""
    egress_lockdown: bool = True
    """A NetworkPolicy lets the namespace's pods send only to pods in the cluster (the egress
    waypoint among them) and to `lockdown_allow_cidrs`: no undeclared host, no raw IP, no pod that
    opted out of the mesh reaches anything outside. Needs a CNI that enforces egress policies."""
    lockdown_allow_cidrs: Sequence[str] = ()
    """Addresses outside the cluster's pods the namespace still needs: the API server, NodeLocal DNS."""
    dataplane: Dataplane = Dataplane.AMBIENT
    """Ambient enrols the namespace with ztunnel; sidecar mode labels it for injection and lists
    what its sidecars may see in a `Sidecar` resource. The targets must be rendered for the same."""

    def __post_init__(self) -> None:
        where = f"NamespaceGrantArgs for namespace {self.namespace!r}"
        for value, what in ((self.namespace, "namespace"), *((account, "service account") for account in self.service_accounts)):
            if problem := dns_label_problem(value):
                raise ValueError(f"{where}: {what} {value!r} {problem}")
        if self.namespace in SYSTEM_NAMESPACES:
            raise ValueError(f"{where}: {self.namespace!r} is a system namespace; grant a namespace of your own")
        check_namespace_ownership(where, self.namespace, owned=self.create_namespace)
        for cidr in self.lockdown_allow_cidrs:
            try:
                ipv4_network(cidr)
            except ValueError as error:
                raise ValueError(f"{where}: lockdown_allow_cidrs: {error}") from None
        if not self.targets:
            raise ValueError(f"{where}: grant at least one target")
        for _, accesses in self.accesses().values():
            for access in accesses:
                access.check_grantable_to(self.namespace)
        if self.dataplane is Dataplane.SIDECAR and self.egress_gateway is None:
            raise ValueError(f"{where}: sidecar mode needs the targets' egress_gateway")

    @property
    def egress_gateway(self) -> EgressGatewayRef | None:
        """The egress gateway the targets route through in sidecar mode."""
        gateways = {id(gateway): gateway for target, _ in self.accesses().values()
                    if (gateway := target.egress_gateway) is not None}
        return next(iter(gateways.values()), None)

    def accesses(self) -> dict[str, tuple[EgressTarget, list[Access]]]:
        """The accesses by target name, in the order given; a bare target is any request."""
        by_target: dict[str, tuple[EgressTarget, list[Access]]] = {}
        for item in self.targets:
            access = item if isinstance(item, Access) else Access(target=item)
            by_target.setdefault(access.target.name, (access.target, []))[1].append(access)
        return by_target

    def identities(self) -> tuple[str, ...]:
        return identities_in_order(self.service_accounts, (item.service_accounts for item in self.targets
                                                           if isinstance(item, Access)))


class NamespaceGrant(pulumi.ComponentResource):
    """An ambient client namespace and one ALLOW AuthorizationPolicy per granted target."""

    grants: tuple[AccessGrant, ...]
    """One record per target, both halves of each."""
    namespace: pulumi.Output[str]
    policy_names: pulumi.Output[list[str]]
    """The ALLOW policies, one per granted target, each beside its ServiceEntry."""

    def __init__(self, name: str, args: NamespaceGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        accounts = args.identities()
        sidecar = args.dataplane is Dataplane.SIDECAR
        enrolment: KubernetesObject | KubernetesPatch
        if args.create_namespace:
            owned = manifests.injected_namespace(args.namespace) if sidecar else manifests.namespace(args.namespace, ambient=True)
            enrolment = kubernetes_object(f"{name}/namespace", owned, child_options(self, opts))
            identities = [
                kubernetes_object(f"{name}/service-account/{account}", manifests.service_account(account, args.namespace),
                                  child_options(self, opts, depends_on=[enrolment]))
                for account in accounts
            ]
        else:
            existing = kubernetes_read(f"{name}/existing-namespace: create it, or let the grant own it",
                                       "v1", "Namespace", args.namespace, child_options(self, opts))
            # Un-enrolling on delete would leave the namespace's traffic unenforced, and other
            # grants or teams may rely on it: the label stays.
            labels = manifests.injection_labels(args.namespace) if sidecar else manifests.namespace_labels(args.namespace)
            enrolment = kubernetes_patch(
                f"{name}/namespace-labels", labels, child_options(self, opts, depends_on=[existing], retain_on_delete=True))
            # Referenced, never created: the test client runs as one, so it must exist.
            identities = [
                kubernetes_read(f"{name}/existing-service-account/{account}: create it, the test client runs as it",
                                "v1", "ServiceAccount",
                                f"{args.namespace}/{account}", child_options(self, opts, depends_on=[existing]))
                for account in accounts[:1] if args.test_client
            ]
        grantee = Grantee(namespace=args.namespace, service_accounts=tuple(args.service_accounts),
                          trust_domain=args.trust_domain, enrolment=enrolment)
        self.grants = tuple(
            target.grant(grantee, accesses, resource_name=f"{name}/policy/{target_name}", opts=child_options(self, opts))
            for target_name, (target, accesses) in args.accesses().items()
        )
        if sidecar:
            gateway = args.egress_gateway
            assert gateway is not None
            kubernetes_object(
                f"{name}/sidecar-visibility",
                manifests.visibility(args.namespace, [grant.visible_host for grant in self.grants], gateway),
                child_options(self, opts, depends_on=[enrolment, *(grant.policy for grant in self.grants)]),
            )
        if args.egress_lockdown:
            kubernetes_object(
                f"{name}/egress-lockdown",
                manifests.egress_lockdown_policy(args.namespace,
                                                 allow_cidrs=[ipv4_network(cidr) for cidr in args.lockdown_allow_cidrs]),
                child_options(self, opts, depends_on=[enrolment]),
            )
        if args.test_client:
            kubernetes_object(
                f"{name}/client",
                manifests.test_client_pod(args.namespace, service_account_name=accounts[0] if accounts else None),
                child_options(self, opts, depends_on=[enrolment, *identities]),
            )

        self.namespace = enrolment.metadata.apply(lambda _: args.namespace)
        self.policy_names = pulumi.Output.all(*(grant.policy.metadata for grant in self.grants)).apply(
            lambda _: [grant.policy_name for grant in self.grants])
        self.register_outputs({"namespace": self.namespace, "policy_names": self.policy_names})
