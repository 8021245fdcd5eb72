"""Pulumi components for namespace-scoped egress access control on an Istio ambient mesh."""

from .config import (
    Access, BypassProtection, ConfigError, Database, Grant, SampleRequest, Service, ServicePort, StackConfig,
    load_stack_file, parse_config,
)
from .egress_gateway import EgressGateway, EgressGatewayArgs
from .external_database import ExternalDatabase, ExternalDatabaseArgs
from .external_service import ExternalService, ExternalServiceArgs
from .namespace_grant import NamespaceGrant, NamespaceGrantArgs, ServiceGrant
from .stack import EgressAccessControl, load_pulumi_config

__all__ = [
    "Access", "BypassProtection", "ConfigError", "Database", "EgressAccessControl", "EgressGateway",
    "EgressGatewayArgs", "ExternalDatabase", "ExternalDatabaseArgs", "ExternalService", "ExternalServiceArgs",
    "Grant", "NamespaceGrant", "NamespaceGrantArgs", "SampleRequest", "Service", "ServiceGrant", "ServicePort",
    "StackConfig", "load_pulumi_config", "load_stack_file", "parse_config",
]
