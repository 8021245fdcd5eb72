"""EgressAccessControl: the whole stack built from a validated `StackConfig`."""

from __future__ import annotations

import pulumi

from . import manifests
from ._kubernetes import kubernetes_object
from .config import ConfigError, StackConfig, is_ipv4, parse_pulumi_config
from .egress_gateway import EgressGateway, EgressGatewayArgs
from .external_database import ExternalDatabase, ExternalDatabaseArgs
from .external_service import ExternalService, ExternalServiceArgs
from .namespace_grant import NamespaceGrant, NamespaceGrantArgs, ServiceGrant

TYPE_TOKEN = "ambient-egress:index:EgressAccessControl"


def load_pulumi_config(project: str | None = None) -> StackConfig:
    """The running stack's config, validated whole; a bad config stops the program before any resource."""
    project = project or pulumi.get_project()
    raw = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    try:
        return parse_pulumi_config(raw, project)
    except ConfigError as error:
        # RunError is shown to the user without a Python traceback.
        raise pulumi.RunError(str(error)) from error


class EgressAccessControl(pulumi.ComponentResource):
    """One egress gateway, one ExternalDatabase per database, one ExternalService per service and
    one NamespaceGrant per grant."""

    gateway: EgressGateway
    databases: dict[str, ExternalDatabase]
    services: dict[str, ExternalService]
    grants: dict[str, NamespaceGrant]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.gateway = EgressGateway(
            config.egress_namespace,
            EgressGatewayArgs(namespace=config.egress_namespace, waypoint_name=config.waypoint_name),
            child,
        )
        # Names go to the components as plain strings, with the resources behind them as
        # dependencies: the same ordering as Outputs would give, without their cost at scale.
        after_gateway = pulumi.ResourceOptions(parent=self, depends_on=[self.gateway])
        database_namespace = (
            kubernetes_object(config.database_namespace, manifests.namespace(config.database_namespace, ambient=False), child)
            if any(database.is_stand_in for database in config.databases) else None
        )
        protection = config.bypass_protection
        self.databases = {
            database.name: ExternalDatabase(
                database.name,
                ExternalDatabaseArgs(
                    waypoint_name=config.waypoint_name,
                    waypoint_namespace=config.egress_namespace,
                    port=database.port,
                    address=database.address,
                    stand_in_namespace=config.database_namespace if database.is_stand_in else None,
                    pin_address=protection.service_entry_addresses,
                    stand_in_ingress_policy=protection.database_ingress_policy,
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[self.gateway, database_namespace])
                if database.is_stand_in else after_gateway,
            )
            for database in config.databases
        }
        self.services = {
            service.name: ExternalService(
                service.name,
                ExternalServiceArgs(
                    address=service.host,
                    ports=service.ports,
                    waypoint_name=config.waypoint_name,
                    waypoint_namespace=config.egress_namespace,
                    pin_address=protection.service_entry_addresses,
                    tls_origination=service.tls_origination,
                    request_headers=dict(service.request_headers),
                ),
                after_gateway,
            )
            for service in config.services
        }
        addresses = [database.address for database in config.databases if database.address is not None]
        external_ips = [address for address in addresses + [service.host for service in config.services] if is_ipv4(address)]
        self.grants = {
            grant.namespace: NamespaceGrant(
                grant.namespace,
                NamespaceGrantArgs(
                    databases=[self.databases[name] for name in grant.databases],
                    services=[
                        ServiceGrant(self.services[access.target], methods=access.methods, paths=access.paths,
                                     service_accounts=access.service_accounts)
                        for access in grant.services
                    ],
                    service_accounts=grant.service_accounts,
                    trust_domain=config.trust_domain,
                    test_client=config.test_clients,
                    deny_direct_egress_to=external_ips if protection.client_egress_policy else (),
                ),
                child,
            )
            for grant in config.grants
        }
        self.register_outputs({})
