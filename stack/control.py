"""EgressAccessControl: the whole stack built from a validated `StackConfig`.

The one place where the program's config meets the component library: each config entry becomes
the args of a component, and every child is named from this component's name, so two instances
(two clusters, each with its own provider) live side by side in one program.
"""

from __future__ import annotations

import pulumi

from components import (
    Access,
    EgressGateway,
    EgressGatewayArgs,
    EgressTarget,
    ExternalDatabase,
    ExternalDatabaseArgs,
    ExternalService,
    ExternalServiceArgs,
    MeshPrerequisites,
    MeshPrerequisitesArgs,
    NamespaceGrant,
    NamespaceGrantArgs,
    manifests,
)
from components.resources import child_options, kubernetes_object, kubernetes_read
from components.values import is_ipv4

from .model import Grant, StackConfig

TYPE_TOKEN = "ambient-egress:index:EgressAccessControl"


def custom_resources(config: StackConfig) -> tuple[str, ...]:
    """The CRDs the stack's objects need: only what its config renders."""
    needed = ["gateways.gateway.networking.k8s.io", "gatewayclasses.gateway.networking.k8s.io",
              "serviceentries.networking.istio.io", "authorizationpolicies.security.istio.io",
              "telemetries.telemetry.istio.io"]
    if any(service.tls_origination for service in config.services):
        needed.append("destinationrules.networking.istio.io")
    if any(service.request_headers for service in config.services):
        needed.append("httproutes.gateway.networking.k8s.io")
    return tuple(needed)


class EgressAccessControl(pulumi.ComponentResource):
    """Prerequisite checks, one egress gateway, one ExternalDatabase per database, one
    ExternalService per service and one NamespaceGrant per grant."""

    prerequisites: MeshPrerequisites
    gateway: EgressGateway
    databases: dict[str, ExternalDatabase]
    services: dict[str, ExternalService]
    grants: dict[str, NamespaceGrant]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.prerequisites = MeshPrerequisites(
            f"{name}/prerequisites", MeshPrerequisitesArgs(custom_resources=custom_resources(config)),
            child_options(self, opts))
        ready = child_options(self, opts, depends_on=[self.prerequisites.ready])
        self.gateway = EgressGateway(f"{name}/egress-gateway", EgressGatewayArgs(
            namespace=config.egress_namespace, create_namespace=config.create_egress_namespace,
            waypoint_name=config.waypoint_name,
        ), ready)
        waypoint = self.gateway.waypoint
        protection = config.bypass_protection

        stand_ins = [database for database in config.databases if database.is_stand_in]
        database_namespace = None
        if stand_ins and config.create_database_namespace:
            database_namespace = kubernetes_object(
                f"{name}/database-namespace", manifests.namespace(config.database_namespace, ambient=False), ready)
        elif stand_ins:
            database_namespace = kubernetes_read(
                f"{name}/existing-database-namespace: create it, or set createDatabaseNamespace: true",
                "v1", "Namespace", config.database_namespace, ready)
        self.databases = {
            database.name: ExternalDatabase(f"{name}/database/{database.name}", ExternalDatabaseArgs(
                waypoint=waypoint, port=database.port, address=database.address, service_name=database.name,
                stand_in_namespace=config.database_namespace if database.is_stand_in else None,
                pin_address=protection.service_entry_addresses,
                stand_in_ingress_policy=protection.database_ingress_policy,
            ), child_options(self, opts, depends_on=[self.prerequisites.ready,
                                                     database_namespace if database.is_stand_in else None]))
            for database in config.databases
        }
        self.services = {
            service.name: ExternalService(f"{name}/service/{service.name}", ExternalServiceArgs(
                address=service.host, ports=[port.value() for port in service.ports], waypoint=waypoint,
                service_name=service.name, pin_address=protection.service_entry_addresses,
                tls_origination=service.tls_origination, request_headers=dict(service.request_headers),
            ), ready)
            for service in config.services
        }
        addresses = [database.address for database in config.databases if database.address is not None]
        external_ips = [address for address in [*addresses, *(service.host for service in config.services)] if is_ipv4(address)]
        self.grants = {
            grant.namespace: NamespaceGrant(f"{name}/grant/{grant.namespace}", NamespaceGrantArgs(
                namespace=grant.namespace, targets=self._targets(grant), create_namespace=grant.create_namespace,
                service_accounts=grant.service_accounts, trust_domain=config.trust_domain, test_client=config.test_clients,
                deny_direct_egress_to=external_ips if protection.client_egress_policy else (),
            ), ready)
            for grant in config.grants
        }
        self.register_outputs({})

    def _targets(self, grant: Grant) -> list[EgressTarget | Access]:
        targets: list[EgressTarget | Access] = [self.databases[name] for name in grant.databases]
        targets += [
            Access(target=self.services[access.name], methods=access.methods, paths=access.paths,
                   service_accounts=access.service_accounts)
            for access in grant.services
        ]
        return targets
