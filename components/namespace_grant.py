"""NamespaceGrant: "namespace X may reach targets Y", written as both halves of the connection.

Like AWS CDK's `grant*`, one call records the grantee (an ambient namespace, optionally its service
accounts and a test client) and the grant on each target (an ALLOW policy beside its ServiceEntry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from . import manifests
from ._kubernetes import child_options, kubernetes_object, render
from .config import DEFAULT_TRUST_DOMAIN
from .external_database import ExternalDatabase
from .external_service import ExternalService

TYPE_TOKEN = "ambient-egress:index:NamespaceGrant"

Target = ExternalService | ExternalDatabase


@dataclass(frozen=True)
class ServiceGrant:
    """Access to one target, optionally narrowed to some HTTP requests or identities."""

    target: Target
    methods: Sequence[str] = ()
    """HTTP methods allowed, e.g. ["GET"]. Default: any. HTTP ports only."""
    paths: Sequence[str] = ()
    """Istio path forms allowed: `/get`, `/api/*`, `*.json`. Default: any. HTTP ports only."""
    service_accounts: Sequence[str] | None = None
    """Only these service accounts. Default: the grant's `service_accounts`."""

    def ports(self) -> list[int]:
        """Limited grants open the HTTP ports only: there, and only there, methods and paths are seen."""
        limited = bool(self.methods or self.paths)
        ports = [port.number for port in self.target.ports if port.is_http or not limited]
        if not ports:
            raise ValueError(f"{self.target.service_name}: methods and paths need an HTTP port; "
                             "TCP policies may use only ports, namespaces and principals")
        return ports


@dataclass(frozen=True)
class NamespaceGrantArgs:
    databases: Sequence[ExternalDatabase] = ()
    """Databases the namespace may reach; every other target stays denied."""
    services: Sequence[ServiceGrant | Target] = ()
    """Other targets, each as it is (any request) or as a ServiceGrant narrowing the access."""
    namespace: str | None = None
    """The client namespace, created and enrolled in ambient. Default: the component's name."""
    service_accounts: Sequence[str] = ()
    """Grant only these service accounts (created in the namespace). Default: the whole namespace."""
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    test_client: bool = False
    """Run a `client` pod with `pg_isready` in the namespace, as the first service account if any."""
    deny_direct_egress_to: Sequence[pulumi.Input[str]] = ()
    """IPv4 addresses this namespace may not dial directly (a NetworkPolicy); empty: no policy."""

    def service_grants(self) -> list[ServiceGrant]:
        grants = [ServiceGrant(database) for database in self.databases]
        grants += [item if isinstance(item, ServiceGrant) else ServiceGrant(item) for item in self.services]
        return grants


class NamespaceGrant(pulumi.ComponentResource):
    """An ambient client namespace and one ALLOW AuthorizationPolicy per granted target."""

    namespace: pulumi.Output[str]
    policy_names: pulumi.Output[list[str]]
    """The ALLOW policies, one per granted target, each beside its ServiceEntry."""

    def __init__(self, name: str, args: NamespaceGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespace_name = args.namespace or name
        namespace = kubernetes_object(
            f"{name}-namespace", manifests.namespace(namespace_name, ambient=True), child_options(self, opts)
        )
        in_namespace = child_options(self, opts, namespace)
        accounts = dict.fromkeys([
            *args.service_accounts,
            *(account for grant in args.service_grants() for account in grant.service_accounts or ()),
        ])
        account_resources = [
            kubernetes_object(f"{name}-{account}", manifests.service_account(account, namespace_name), in_namespace)
            for account in accounts
        ]
        by_target: dict[str, list[ServiceGrant]] = {}
        for grant in args.service_grants():
            by_target.setdefault(grant.target.service_name, []).append(grant)
        policies = [self._allow(namespace_name, grants, args, opts) for grants in by_target.values()]
        if args.deny_direct_egress_to:
            kubernetes_object(
                f"{name}-deny-direct-database-egress",
                pulumi.Output.all(*args.deny_direct_egress_to).apply(
                    lambda ips: manifests.client_egress_policy(namespace_name, ips)
                ),
                in_namespace, api_version="networking.k8s.io/v1", kind="NetworkPolicy",
            )
        if args.test_client:
            kubernetes_object(
                f"{name}-client",
                manifests.test_client_pod(namespace_name, service_account_name=next(iter(accounts), None)),
                child_options(self, opts, namespace, *account_resources),
            )

        self.namespace = namespace.metadata.name
        self.policy_names = pulumi.Output.all(*(policy.metadata for policy in policies)).apply(
            lambda metadatas: [metadata["name"] for metadata in metadatas]
        )
        self.register_outputs({"namespace": self.namespace, "policy_names": self.policy_names})

    def _allow(self, namespace_name: str, grants: list[ServiceGrant], args: NamespaceGrantArgs,
               opts: pulumi.ResourceOptions | None):
        target = grants[0].target
        rules = [
            manifests.access_rule(
                namespace_name, ports=grant.ports(), methods=grant.methods, paths=grant.paths,
                service_accounts=grant.service_accounts if grant.service_accounts is not None else args.service_accounts,
                trust_domain=args.trust_domain,
            )
            for grant in grants
        ]
        # Created after the ServiceEntry it targets, and deleted before it.
        return kubernetes_object(
            manifests.grant_policy_name(target.service_name, namespace_name),
            render(lambda ns: manifests.grant_policy(target.service_name, ns, source_namespace=namespace_name, rules=rules),
                   target.namespace),
            child_options(self, opts, target.service_entry), api_version="security.istio.io/v1", kind="AuthorizationPolicy",
        )
