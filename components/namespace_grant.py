"""NamespaceGrant: "namespace X may reach databases Y", written as both halves of the connection.

Like AWS CDK's `grant*`, one call records the grantee (an ambient namespace, optionally its service
accounts and a test client) and the grant on each target (an ALLOW policy beside its ServiceEntry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from . import manifests
from ._kubernetes import kubernetes_object
from .config import DEFAULT_TRUST_DOMAIN
from .external_database import ExternalDatabase

TYPE_TOKEN = "ambient-egress:index:NamespaceGrant"


@dataclass(frozen=True)
class NamespaceGrantArgs:
    databases: Sequence[ExternalDatabase]
    """The databases the namespace may reach; every other database stays denied."""
    namespace: str | None = None
    """The client namespace, created and enrolled in ambient. Default: the component's name."""
    service_accounts: Sequence[str] = ()
    """Grant only these service accounts (created in the namespace). Default: the whole namespace."""
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    test_client: bool = False
    """Run a `client` pod with `pg_isready` in the namespace, as the first service account if any."""
    deny_direct_egress_to: Sequence[pulumi.Input[str]] = ()
    """IPv4 addresses this namespace may not dial directly (a NetworkPolicy); empty: no policy."""


class NamespaceGrant(pulumi.ComponentResource):
    """An ambient client namespace and one ALLOW AuthorizationPolicy per granted database."""

    namespace: pulumi.Output[str]
    policy_names: pulumi.Output[list[str]]
    """The ALLOW policies, one per granted database, each beside its ServiceEntry."""

    def __init__(self, name: str, args: NamespaceGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespace_name = args.namespace or name
        namespace = kubernetes_object(
            f"{name}-namespace", manifests.namespace(namespace_name, ambient=True), pulumi.ResourceOptions(parent=self)
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        accounts = [
            kubernetes_object(f"{name}-{account}", manifests.service_account(account, namespace_name), in_namespace)
            for account in args.service_accounts
        ]
        policies = [self._grant(namespace_name, database, args) for database in args.databases]
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
                manifests.test_client_pod(
                    namespace_name, service_account_name=args.service_accounts[0] if args.service_accounts else None
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[namespace, *accounts]),
            )

        self.namespace = namespace.metadata.name
        self.policy_names = pulumi.Output.all(*(policy.metadata for policy in policies)).apply(
            lambda metadatas: [metadata["name"] for metadata in metadatas]
        )
        self.register_outputs({"namespace": self.namespace, "policy_names": self.policy_names})

    def _grant(self, namespace_name: str, database: ExternalDatabase, args: NamespaceGrantArgs):
        # Reading the ServiceEntry's name and namespace makes the policy depend on it: created
        # after it, and deleted before it.
        return kubernetes_object(
            manifests.grant_policy_name(database.database_name, namespace_name),
            pulumi.Output.all(database.service_entry_name, database.service_entry_namespace, database.port).apply(
                lambda values: manifests.grant_policy(
                    values[0], values[1], source_namespace=namespace_name, port=int(values[2]),
                    service_accounts=args.service_accounts, trust_domain=args.trust_domain,
                )
            ),
            pulumi.ResourceOptions(parent=self), api_version="security.istio.io/v1", kind="AuthorizationPolicy",
        )
