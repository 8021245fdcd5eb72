"""Pulumi components for namespace-scoped egress access control on an Istio ambient mesh."""

from .config import BypassProtection, ConfigError, Database, Grant, StackConfig, load_stack_file, parse_config
from .egress_gateway import EgressGateway, EgressGatewayArgs
from .external_database import ExternalDatabase, ExternalDatabaseArgs
from .namespace_grant import NamespaceGrant, NamespaceGrantArgs
from .stack import EgressAccessControl, load_pulumi_config

__all__ = [
    "BypassProtection", "ConfigError", "Database", "EgressAccessControl", "EgressGateway", "EgressGatewayArgs",
    "ExternalDatabase", "ExternalDatabaseArgs", "Grant", "NamespaceGrant", "NamespaceGrantArgs", "StackConfig",
    "load_pulumi_config", "load_stack_file", "parse_config",
]
