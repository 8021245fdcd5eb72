"""Pulumi components for namespace-scoped egress access control on an Istio ambient mesh.

The library: value types, the manifests of every object, and the ComponentResources that register
them. It knows nothing of any program's config; a program builds the args and composes the parts.
"""

from .admission import ServiceEntryAdmission, ServiceEntryAdmissionArgs
from .egress_gateway import EgressGateway, EgressGatewayArgs
from .external_database import ExternalDatabase, ExternalDatabaseArgs
from .external_service import ExternalService, ExternalServiceArgs
from .grants import Access, AccessGrant, EgressTarget, Grantee
from .install import GatewayApiCrds, GatewayApiCrdsArgs, IstioAmbient, IstioAmbientArgs
from .namespace_grant import NamespaceGrant, NamespaceGrantArgs
from .prerequisites import MeshPrerequisites, MeshPrerequisitesArgs
from .sidecar_gateway import SidecarEgressGateway, SidecarEgressGatewayArgs
from .values import Dataplane, EgressGatewayRef, Protocol, RouteNamespaces, ServicePort, Waypoint

__all__ = [
    "Access",
    "AccessGrant",
    "Dataplane",
    "EgressGateway",
    "EgressGatewayArgs",
    "EgressGatewayRef",
    "EgressTarget",
    "ExternalDatabase",
    "ExternalDatabaseArgs",
    "ExternalService",
    "ExternalServiceArgs",
    "GatewayApiCrds",
    "GatewayApiCrdsArgs",
    "Grantee",
    "IstioAmbient",
    "IstioAmbientArgs",
    "MeshPrerequisites",
    "MeshPrerequisitesArgs",
    "NamespaceGrant",
    "NamespaceGrantArgs",
    "Protocol",
    "RouteNamespaces",
    "ServiceEntryAdmission",
    "ServiceEntryAdmissionArgs",
    "ServicePort",
    "SidecarEgressGateway",
    "SidecarEgressGatewayArgs",
    "Waypoint",
]
