"""EgressAccessControl: the whole stack built from a validated `StackConfig`.

The one place where the program's config meets the component library: each config entry becomes
the args of a component, and every child is named from this component's name, so two instances
(two clusters, each with its own provider) live side by side in one program.
"""

from __future__ import annotations

import pulumi

from components import (
    Access,
    Dataplane,
    EgressGateway,
    EgressGatewayArgs,
    EgressGatewayRef,
    EgressTarget,
    ExternalDatabase,
    ExternalDatabaseArgs,
    ExternalService,
    ExternalServiceArgs,
    MeshPrerequisites,
    MeshPrerequisitesArgs,
    NamespaceGrant,
    NamespaceGrantArgs,
    ServiceEntryAdmission,
    ServiceEntryAdmissionArgs,
    SidecarEgressGateway,
    SidecarEgressGatewayArgs,
    Waypoint,
    manifests,
)
from components.install import GatewayApiCrds, GatewayApiCrdsArgs, IstioAmbient, IstioAmbientArgs
from components.resources import child_options, kubernetes_object, kubernetes_read

from .model import PROJECT, Grant, StackConfig

TYPE_TOKEN = "ambient-egress:index:EgressAccessControl"
# An egress waypoint passes a `resolution: NONE` ServiceEntry through to its address (release note 57656).
IP_PASSTHROUGH_SINCE = (1, 28)


def custom_resources(config: StackConfig) -> tuple[str, ...]:
    """The CRDs the cluster must already have: what the config renders, less what the stack installs."""
    istio = ["serviceentries.networking.istio.io", "authorizationpolicies.security.istio.io"]
    if config.dataplane is Dataplane.SIDECAR:
        istio += ["gateways.networking.istio.io", "virtualservices.networking.istio.io",
                  "destinationrules.networking.istio.io", "sidecars.networking.istio.io"]
        return tuple(istio)
    gateway_api = ["gateways.gateway.networking.k8s.io", "gatewayclasses.gateway.networking.k8s.io"]
    istio.append("telemetries.telemetry.istio.io")
    if any(service.request_headers for service in config.services):
        gateway_api.append("httproutes.gateway.networking.k8s.io")
    if any(service.tls_origination for service in config.services):
        istio.append("destinationrules.networking.istio.io")
    return (*([] if config.gateway_api.install else gateway_api), *([] if config.istio.install else istio))


def granted_namespaces(config: StackConfig) -> dict[str, list[str]]:
    """By target, the namespaces granted it: in sidecar mode they alone see its configuration."""
    granted: dict[str, list[str]] = {target: [] for target in config.targets}
    for grant in config.grants:
        for target in dict.fromkeys([*grant.databases, *(access.name for access in grant.services)]):
            granted[target].append(grant.namespace)
    return granted


class EgressAccessControl(pulumi.ComponentResource):
    """Prerequisite checks, one egress gateway, one ExternalDatabase per database, one
    ExternalService per service and one NamespaceGrant per grant."""

    installed: list[pulumi.Resource]
    """What the stack installs of the mesh (Istio, the Gateway API CRDs): everything else waits for it."""
    prerequisites: MeshPrerequisites
    gateway: EgressGateway | SidecarEgressGateway
    """The egress door: the waypoint (ambient), or the Istio egress gateway (sidecar mode)."""
    door: dict[str, pulumi.Output[str]]
    """The door as the stack exports it: `waypoint`, or `egressGateway` in sidecar mode."""
    databases: dict[str, ExternalDatabase]
    services: dict[str, ExternalService]
    grants: dict[str, NamespaceGrant]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        # What the stack installs comes first: Istio waits for the Gateway API CRDs its
        # waypoints are made of, and everything else waits for both.
        installed: list[pulumi.Resource] = []
        if config.gateway_api.install:
            installed.append(GatewayApiCrds(f"{name}/gateway-api", GatewayApiCrdsArgs(version=config.gateway_api.version),
                                            child_options(self, opts)))
        if config.istio.install:
            installed.append(IstioAmbient(f"{name}/istio", IstioAmbientArgs(
                version=config.istio.version, namespace=config.istio.namespace), child_options(self, opts, depends_on=installed)))
        self.installed = installed
        sidecar = config.dataplane is Dataplane.SIDECAR
        gateway_ref = config.sidecar.egress_gateway.value() if sidecar else None
        self.prerequisites = MeshPrerequisites(
            f"{name}/prerequisites", MeshPrerequisitesArgs(
                custom_resources=custom_resources(config), check_istio=not (config.istio.install or sidecar),
                egress_gateway=gateway_ref,
                minimum_istio_version=config.istio.minor, istio_namespace=config.istio.namespace,
                why_minimum=(f"the stack renders for {PROJECT}:istio.version {config.istio.version}; set it to the "
                             "cluster's version (what newer versions add is then left out), or upgrade Istio")),
            child_options(self, opts, depends_on=installed))
        ready = child_options(self, opts, depends_on=[self.prerequisites.ready, *installed])
        admission = config.service_entry_admission
        if admission.enabled:
            ServiceEntryAdmission(f"{name}/service-entry-admission", ServiceEntryAdmissionArgs(
                egress_namespace=config.egress_namespace, other_namespaces=admission.allowed_namespaces), ready)
        waypoint: Waypoint | None = None
        egress_gateway: EgressGatewayRef | None = None
        if gateway_ref is not None:
            self.gateway = SidecarEgressGateway(f"{name}/egress-gateway", SidecarEgressGatewayArgs(
                gateway=gateway_ref, namespace=config.egress_namespace, create_namespace=config.create_egress_namespace,
            ), ready)
            egress_gateway = self.gateway.gateway
            self.door = {"egressGateway": pulumi.Output.from_input(gateway_ref.host)}
        else:
            self.gateway = EgressGateway(f"{name}/egress-gateway", EgressGatewayArgs(
                namespace=config.egress_namespace, create_namespace=config.create_egress_namespace,
                waypoint_name=config.waypoint_name,
            ), ready)
            waypoint = self.gateway.waypoint
            self.door = {"waypoint": self.gateway.waypoint_name}
        visible_to = granted_namespaces(config) if sidecar else {target: [] for target in config.targets}
        protection = config.bypass_protection
        passthrough = config.istio.minor >= IP_PASSTHROUGH_SINCE

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
                waypoint=waypoint, egress_gateway=egress_gateway, visible_to=visible_to[database.name],
                namespace=config.egress_namespace, port=database.port,
                address=database.address, service_name=database.name,
                stand_in_namespace=config.database_namespace if database.is_stand_in else None,
                pin_address=protection.service_entry_addresses, ip_passthrough=passthrough,
                stand_in_ingress_policy=protection.database_ingress_policy,
            ), child_options(self, opts, depends_on=[self.prerequisites.ready, *installed,
                                                     database_namespace if database.is_stand_in else None]))
            for database in config.databases
        }
        self.services = {
            service.name: ExternalService(f"{name}/service/{service.name}", ExternalServiceArgs(
                address=service.host, ports=[port.value() for port in service.ports], waypoint=waypoint,
                egress_gateway=egress_gateway, visible_to=visible_to[service.name], namespace=config.egress_namespace,
                service_name=service.name, pin_address=protection.service_entry_addresses, ip_passthrough=passthrough,
                tls_origination=service.tls_origination, tls_credential_name=service.tls_credential_name,
                request_headers=dict(service.request_headers),
            ), ready)
            for service in config.services
        }
        self.grants = {
            grant.namespace: NamespaceGrant(f"{name}/grant/{grant.namespace}", NamespaceGrantArgs(
                namespace=grant.namespace, targets=self._targets(grant), create_namespace=grant.create_namespace,
                service_accounts=grant.service_accounts, trust_domain=config.trust_domain, test_client=config.test_clients,
                egress_lockdown=config.lockdown(grant).enabled, lockdown_allow_cidrs=config.lockdown(grant).allow_cidrs,
                dataplane=config.dataplane,
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
