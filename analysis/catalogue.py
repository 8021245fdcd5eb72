"""Every finding the analysis reports, as data: its stable code, severity, the kind of resource it is
reported on, a headline and what it means; and the finding itself. The README's findings table is checked against this
catalogue by a test. A code never changes meaning: retire it rather than reuse it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum, unique

from .manifests import Resource


class Severity(StrEnum):
    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"

    @property
    def rank(self) -> int:
        """Errors sort first."""
        return list(Severity).index(self)


@unique
class Code(StrEnum):
    """A finding code; the member's value is the code itself (`EGW0101`)."""

    severity: Severity
    resource_kind: str
    headline: str
    description: str

    def __new__(cls, code: str, severity: Severity, resource_kind: str, headline: str, description: str) -> Code:
        member = str.__new__(cls, code)
        member._value_ = code
        member.severity = severity
        member.resource_kind = resource_kind
        member.headline = headline
        member.description = description
        return member

    # AuthorizationPolicy
    POLICY_TARGET_NOT_FOUND = (
        "EGW0101", Severity.ERROR, "AuthorizationPolicy", "Policy target not found",
        "targets a ServiceEntry that does not exist",
    )
    POLICY_TARGET_IN_OTHER_NAMESPACE = (
        "EGW0102", Severity.ERROR, "AuthorizationPolicy", "Policy target in another namespace",
        "its target ServiceEntry is in another namespace: the policy must sit beside it",
    )
    ALLOW_RULE_NEVER_MATCHES_TCP = (
        "EGW0103", Severity.ERROR, "AuthorizationPolicy", "ALLOW rule never matches TCP",
        "an ALLOW rule with HTTP-only fields (methods, paths, hosts) on a TCP port: it never matches",
    )
    DENY_RULE_BROADENED_ON_TCP = (
        "EGW0104", Severity.WARNING, "AuthorizationPolicy", "DENY rule broadened on TCP",
        "a DENY rule with HTTP-only fields on a TCP port: Istio drops them, so it denies more",
    )
    POLICY_PORT_NOT_EXPOSED = (
        "EGW0105", Severity.ERROR, "AuthorizationPolicy", "Policy port not exposed",
        "a port the target ServiceEntry does not expose",
    )
    SOURCE_NAMESPACE_NOT_AMBIENT = (
        "EGW0106", Severity.WARNING, "AuthorizationPolicy", "Source namespace not ambient",
        "a source namespace that is not ambient-enrolled: nothing enforces its traffic",
    )
    SOURCE_NAMESPACE_NOT_FOUND = (
        "EGW0107", Severity.WARNING, "AuthorizationPolicy", "Source namespace not found",
        "a source namespace with no Namespace manifest",
    )
    UNKNOWN_CONDITION_KEY = (
        "EGW0108", Severity.ERROR, "AuthorizationPolicy", "Unknown condition key",
        "a `when` key Istio does not know: its validation rejects the policy",
    )
    FIELD_NEEDS_NEWER_ISTIO = (
        "EGW0109", Severity.ERROR, "AuthorizationPolicy", "Field needs a newer Istio",
        "a rule field the Istio release analysed for does not have (`serviceAccounts` before 1.25, "
        "`trustDomains` before 1.30.2)",
    )
    PATH_PATTERN_PROBLEM = (
        "EGW0110", Severity.ERROR, "AuthorizationPolicy", "Path pattern problem",
        "a path Istio rejects, or one that cannot match what it says",
    )
    POLICY_IGNORED_BY_WAYPOINT = (
        "EGW0111", Severity.WARNING, "AuthorizationPolicy", "Policy ignored by waypoints",
        "beside a ServiceEntry or waypoint but without targetRefs: waypoints apply only targetRefs policies",
    )
    GATEWAY_CLASS_POLICY_IGNORED = (
        "EGW0112", Severity.ERROR, "AuthorizationPolicy", "GatewayClass policy ignored",
        "targets a GatewayClass, which applies only as `istio-waypoint`, from the root namespace, on Istio 1.25+",
    )
    POLICY_DRY_RUN = (
        "EGW0113", Severity.INFO, "AuthorizationPolicy", "Dry-run policy",
        "`istio.io/dry-run`: Istio only logs what the policy would do; cell reasons say what it would change",
    )
    # ServiceEntry
    SERVICE_ENTRY_NOT_BOUND = (
        "EGW0201", Severity.ERROR, "ServiceEntry", "ServiceEntry not bound",
        "not bound to any waypoint: open, and past the waypoint",
    )
    WAYPOINT_NOT_FOUND = (
        "EGW0202", Severity.ERROR, "ServiceEntry", "Waypoint not found",
        "bound to a waypoint that does not exist",
    )
    SERVICE_ENTRY_WITHOUT_ALLOW_POLICY = (
        "EGW0203", Severity.ERROR, "ServiceEntry", "No ALLOW policy",
        "no ALLOW policy applies: open to every ambient namespace",
    )
    DUPLICATE_HOST = (
        "EGW0204", Severity.ERROR, "ServiceEntry", "Duplicate host",
        "its host is also another ServiceEntry's host",
    )
    WAYPOINT_ATTACHMENT_DENIED = (
        "EGW0205", Severity.ERROR, "ServiceEntry", "Waypoint attachment denied",
        "its waypoint's HBONE listener does not admit the ServiceEntry's namespace (`allowedRoutes`): not "
        "bound, open",
    )
    WAYPOINT_NOT_FOR_SERVICES = (
        "EGW0206", Severity.ERROR, "ServiceEntry", "Waypoint not for services",
        "its waypoint is labelled `istio.io/waypoint-for` `workload` or `none`: not bound, open",
    )
    DROPPED_FROM_AMBIENT = (
        "EGW0207", Severity.ERROR, "ServiceEntry", "Left out of ambient",
        "a CIDR in `addresses` on Istio 1.29 or older: the ServiceEntry is not in ambient at all, so open",
    )
    NO_ADDRESS_TO_CAPTURE = (
        "EGW0208", Severity.ERROR, "ServiceEntry", "No address to capture",
        "no `addresses`, and none allocated (`resolution: NONE`, or auto-allocation turned off): ztunnel never "
        "sends its traffic to the waypoint, so open",
    )
    NO_UPSTREAM_AT_WAYPOINT = (
        "EGW0209", Severity.ERROR, "ServiceEntry", "No upstream at the waypoint",
        "`resolution: NONE` at a waypoint before Istio 1.28: every connection fails (no healthy upstream)",
    )
    SHADOW_SERVICE_ENTRY = (
        "EGW0210", Severity.ERROR, "ServiceEntry", "Shadow ServiceEntry",
        "claims a host or address of a ServiceEntry a waypoint serves, without that waypoint: ztunnel gives it the "
        "connections of clients in its own namespace (for an address before Istio 1.30, of any namespace), and "
        "may give it others'",
    )
    # Namespaces
    DATABASE_NAMESPACE_IN_MESH = (
        "EGW0301", Severity.ERROR, "Namespace", "Database namespace in the mesh",
        "the database namespace is enrolled in the mesh",
    )
    WAYPOINT_NAMESPACE_NOT_AMBIENT = (
        "EGW0302", Severity.WARNING, "Gateway", "Waypoint namespace not ambient",
        "the waypoint's namespace is not ambient",
    )
    # Routes around the waypoint
    RAW_IP_BYPASS = (
        "EGW0401", Severity.ERROR, "ServiceEntry", "Raw-IP bypass",
        "raw-IP connections to its IP bypass the waypoint",
    )
    DATABASE_ADMITS_CLIENTS = (
        "EGW0402", Severity.ERROR, "Service", "Database admits clients",
        "database pods accept connections from namespaces other than the waypoint's",
    )
    DNS_HOST_UNPINNED = (
        "EGW0403", Severity.WARNING, "ServiceEntry", "DNS host unpinned",
        "a DNS host whose IPs cannot be pinned, and client namespaces whose egress lets them dial those IPs",
    )
    SELECTED_PODS_ADMIT_CLIENTS = (
        "EGW0404", Severity.ERROR, "ServiceEntry", "Selected pods admit clients",
        "the pods its `workloadSelector` selects accept connections from namespaces other than the waypoint's",
    )
    WORKLOAD_OPTS_OUT = (
        "EGW0405", Severity.ERROR, "Namespace", "Workload opts out of capture",
        "a workload of an ambient namespace leaves ztunnel's capture (`istio.io/dataplane-mode: none`, a sidecar, "
        "the host network, `ambient.istio.io/dns-capture: \"false\"`) and its egress lets it reach a ServiceEntry's "
        "destination directly",
    )
    # TLS origination
    TLS_NAME_NOT_VERIFIED = (
        "EGW0601", Severity.WARNING, "DestinationRule", "TLS origination without name verification",
        "originates TLS (`SIMPLE`, `MUTUAL`) without checking the server's name: `insecureSkipVerify`, or `sni` with no "
        "`subjectAltNames`, `caCertificates` or `credentialName` (`sni` turns the automatic name check off); istioctl's "
        "IST0128/IST0129 ask for `caCertificates` instead: this is stricter about names and accepts the system CAs",
    )
    # Sidecar mode
    SERVICE_ENTRY_EXPORTED_EVERYWHERE = (
        "EGW0701", Severity.WARNING, "ServiceEntry", "ServiceEntry exported everywhere",
        "no `exportTo` (Istio's default `*`) or `*` in a mesh with sidecars: every namespace's sidecars can route its "
        "host, so REGISTRY_ONLY no longer keeps any namespace from it",
    )
    NO_SIDECAR_RESOURCE = (
        "EGW0702", Severity.WARNING, "Namespace", "No Sidecar resource",
        "a namespace whose pods get sidecars, and no `Sidecar` resource (its own or the root namespace's) narrows what "
        "they import: every host exported to them",
    )
    ROUTED_AROUND_GATEWAY = (
        "EGW0703", Severity.ERROR, "ServiceEntry", "Routed around the egress gateway",
        "its host is visible to a namespace's sidecars but no VirtualService on `mesh` sends it to the egress gateway: "
        "they send it straight out, and the namespace's egress NetworkPolicies let it through",
    )
    GATEWAY_HOP_WITHOUT_MUTUAL_TLS = (
        "EGW0704", Severity.ERROR, "VirtualService", "Gateway hop without mutual TLS",
        "routes to the egress gateway over a hop that is not `ISTIO_MUTUAL`: the gateway sees no client identity, so "
        "namespace and principal rules never match: ALLOW rules on them deny everyone, DENY rules let everyone through",
    )
    WORKLOAD_LEAVES_SIDECAR = (
        "EGW0705", Severity.ERROR, "Namespace", "Workload leaves its sidecar",
        "a workload of a sidecar namespace gets no sidecar (`sidecar.istio.io/inject: \"false\"`, the host network) or "
        "leaves it for some destinations (`traffic.sidecar.istio.io/excludeOutbound*`, `includeOutboundIPRanges`), and "
        "its egress lets it reach a ServiceEntry's destination directly",
    )
    GATEWAY_PATH_BROKEN = (
        "EGW0706", Severity.ERROR, "VirtualService", "Egress gateway path broken",
        "routes a host to the egress gateway, but the connection cannot get through: no DestinationRule subset the "
        "sidecars look up, no Gateway server, a TLS mismatch, no route out of the gateway, or a NetworkPolicy",
    )
    # What the analysis cannot evaluate
    RULE_NOT_EVALUATED = (
        "EGW0501", Severity.WARNING, "AuthorizationPolicy", "Rule not evaluated",
        "a rule field or CUSTOM action the analysis cannot evaluate from manifests: cells that turn on it "
        "read UNDECIDED",
    )
    BINDING_NOT_EVALUATED = (
        "EGW0502", Severity.WARNING, "ServiceEntry", "Binding not evaluated",
        "the manifests do not show whether its waypoint admits its namespace: cells for it read UNDECIDED",
    )


@dataclass(frozen=True)
class Finding:
    code: Code
    resource: str  # "Kind namespace/name"
    message: str
    severity: Severity = field(init=False)  # the code's, from the catalogue

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", self.code.severity)

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] ({self.resource}) {self.message}"

    def sort_key(self) -> tuple[int, str, str, str]:
        return self.severity.rank, self.code, self.resource, self.message


def report(code: Code, resource: Resource | str, message: str) -> Finding:
    """`resource` is the object, or its `Kind namespace/name` label when only its address is at hand."""
    return Finding(code, str(resource), message)


def name_list(names: Sequence[str], most: int = 5) -> str:
    """Up to `most` names, then how many more there are."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
