"""Every Kubernetes, Istio and Gateway API object the project renders, as plain dicts.

Pure functions: the components call them, and the tests, the plan and the schema checks read what
they return, so each object and its labels has one definition. A value only known at deploy time
(a LoadBalancer's address) may be passed in as a Pulumi Output; a builder places such a value
without looking at it, and every decision about it is made where it resolves.

  core       namespaces and their labels, identities, the stand-in database, test clients, NetworkPolicies
  mesh       the waypoint, its access logs, ServiceEntries, TLS origination, request headers
  policies   AuthorizationPolicies: allow-nothing baselines and grant rules
  admission  the ValidatingAdmissionPolicy that keeps ServiceEntries in the egress namespace
  install    Istio's ambient Helm charts and the Gateway API CRDs, when the stack installs them
  sidecar    sidecar mode: routes through an Istio egress gateway, its policies, visibility
"""

from .admission import service_entry_namespaces_policy
from .core import (
    AMBIENT,
    CLIENT_IMAGE,
    DATABASE_COMPONENT,
    DATAPLANE_MODE,
    EGRESS_LOCKDOWN_NAME,
    GATEWAY_NAME_LABEL,
    NAMESPACE_NAME_LABEL,
    PART_OF,
    POSTGRES_CONTAINER_PORT,
    POSTGRES_IMAGE,
    POSTGRES_USER,
    TEST_CLIENT_NAME,
    egress_lockdown_policy,
    metadata,
    namespace,
    namespace_labels,
    service_account,
    stand_in_deployment,
    stand_in_ingress_policy,
    stand_in_secret,
    stand_in_service,
    test_client_pod,
)
from .install import ISTIO_CHART_REPOSITORY, ISTIO_CHARTS, gateway_api_crds_url, istio_chart_values
from .mesh import (
    GATEWAY_REF,
    SERVICE_ENTRY_REF,
    TLS_PORT,
    USE_WAYPOINT,
    USE_WAYPOINT_NAMESPACE,
    WAYPOINT_READY_TIMEOUT_SECONDS,
    request_header_route,
    service_entry,
    tls_origination_rule,
    waypoint_access_logging,
    waypoint_gateway,
)
from .policies import access_rule, allow_nothing_policy, grant_policy, grant_policy_name
from .sidecar import (
    INJECTION,
    SIDECAR_NAME,
    egress_gateway_server,
    egress_gateway_subset,
    egress_route,
    export_to,
    gateway_access_rule,
    gateway_allow_nothing,
    gateway_grant_policy,
    gateway_service_entry,
    gateway_tls_origination,
    injected_namespace,
    injection_labels,
    visibility,
)

__all__ = [
    "AMBIENT",
    "CLIENT_IMAGE",
    "DATABASE_COMPONENT",
    "DATAPLANE_MODE",
    "EGRESS_LOCKDOWN_NAME",
    "GATEWAY_NAME_LABEL",
    "GATEWAY_REF",
    "INJECTION",
    "ISTIO_CHARTS",
    "ISTIO_CHART_REPOSITORY",
    "NAMESPACE_NAME_LABEL",
    "PART_OF",
    "POSTGRES_CONTAINER_PORT",
    "POSTGRES_IMAGE",
    "POSTGRES_USER",
    "SERVICE_ENTRY_REF",
    "SIDECAR_NAME",
    "TEST_CLIENT_NAME",
    "TLS_PORT",
    "USE_WAYPOINT",
    "USE_WAYPOINT_NAMESPACE",
    "WAYPOINT_READY_TIMEOUT_SECONDS",
    "access_rule",
    "allow_nothing_policy",
    "egress_gateway_server",
    "egress_gateway_subset",
    "egress_lockdown_policy",
    "egress_route",
    "export_to",
    "gateway_access_rule",
    "gateway_allow_nothing",
    "gateway_api_crds_url",
    "gateway_grant_policy",
    "gateway_service_entry",
    "gateway_tls_origination",
    "grant_policy",
    "grant_policy_name",
    "injected_namespace",
    "injection_labels",
    "istio_chart_values",
    "metadata",
    "namespace",
    "namespace_labels",
    "request_header_route",
    "service_account",
    "service_entry",
    "service_entry_namespaces_policy",
    "stand_in_deployment",
    "stand_in_ingress_policy",
    "stand_in_secret",
    "stand_in_service",
    "test_client_pod",
    "tls_origination_rule",
    "visibility",
    "waypoint_access_logging",
    "waypoint_gateway",
]
