"""The Istio installation the analysis judges the manifests for: its release, since the semantics
of some fields changed between releases, and its root namespace.

Each `Behaviour` names the first release that has it; the README's version table is checked
against this list by a test. The analysis assumes what Istio's defaults are from 1.25 on: DNS
capture and IP auto-allocation turned on (on 1.24 they are install options, which istio.io's
egress guide turns on), and waypoints that are ready (`status.addresses` reported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum

# Istio's root namespace unless the mesh config's `rootNamespace` says otherwise.
DEFAULT_ROOT_NAMESPACE = "istio-system"
_OLDEST_MINOR = 24
_NEWEST_MINOR = 31
_VERSION = re.compile(r"v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?")


class IstioVersionError(ValueError):
    """A version the analysis cannot read, or one it has no semantics for."""


@dataclass(frozen=True)
class IstioVersion:
    """`1.MINOR`, or `1.MINOR.PATCH`; without a patch, the newest patch release of that minor."""

    minor: int
    patch: int | None = None

    @classmethod
    def parse(cls, text: str) -> IstioVersion:
        match = _VERSION.fullmatch(text.strip())
        if match is None:
            raise IstioVersionError(f"Istio version must look like 1.28 or 1.28.2 (got {text!r})")
        version = cls(int(match["minor"]), int(match["patch"]) if match["patch"] else None)
        if match["major"] != "1" or not _OLDEST_MINOR <= version.minor <= _NEWEST_MINOR:
            raise IstioVersionError(
                f"the analysis knows Istio 1.{_OLDEST_MINOR} to 1.{_NEWEST_MINOR} (got {text.strip()})"
            )
        return version

    def at_least(self, other: IstioVersion) -> bool:
        if self.minor != other.minor:
            return self.minor > other.minor
        # Without a patch, this is its minor's newest patch release, which has every patch's changes.
        return self.patch is None or other.patch is None or self.patch >= other.patch

    def __str__(self) -> str:
        return f"1.{self.minor}" if self.patch is None else f"1.{self.minor}.{self.patch}"


# The newest generally available release: the analysis's default.
NEWEST_SUPPORTED = IstioVersion(30)


class Behaviour(Enum):
    """A behaviour the analysis models that not every supported release has."""

    since: IstioVersion
    description: str
    evidence: str

    def __init__(self, since: IstioVersion, description: str, evidence: str) -> None:
        self.since = since
        self.description = description
        self.evidence = evidence

    GATEWAY_CLASS_POLICIES = (
        IstioVersion(25, 0),
        "an AuthorizationPolicy in the root namespace targeting GatewayClass `istio-waypoint` applies to "
        "every waypoint; before, it applies nowhere",
        "`pilot/pkg/model/policyattachment.go` (`ShouldAttachPolicy`)",
    )
    SERVICE_ACCOUNTS = (
        IstioVersion(25, 0),
        "`source.serviceAccounts` / `notServiceAccounts` and the `source.serviceAccount` condition; before, "
        "the analysis cannot tell what the field does (the API drops or rejects it), so cells read UNDECIDED",
        "`pilot/pkg/security/authz/model/model.go` at 1.25.0",
    )
    POD_DNS_CAPTURE_OPT_OUT = (
        IstioVersion(25, 0),
        'a pod annotated `ambient.istio.io/dns-capture: "false"` resolves names with the cluster\'s DNS, so a '
        "DNS-named ServiceEntry host leads it to the real addresses, which ztunnel passes through; before, the "
        "annotation does nothing",
        "release note `54935.yaml`",
    )
    RESOLUTION_NONE_PASSTHROUGH = (
        IstioVersion(28, 0),
        "a `resolution: NONE` ServiceEntry with `addresses` passes through the egress waypoint to the "
        "address dialled; before, the waypoint has no endpoint for it and every connection fails",
        "release note `57656.yaml`",
    )
    CIDR_ADDRESSES = (
        IstioVersion(30, 0),
        "a CIDR in a ServiceEntry's `addresses` pins the range; before, a CIDR that is not a single IP drops "
        "the ServiceEntry from ambient (not bound, so its traffic is OPEN)",
        "release note `59797.yaml`; `services.go` at 1.29.0",
    )
    LOCAL_ADDRESS_PREFERENCE = (
        IstioVersion(30, 0),
        "when ServiceEntries of several namespaces claim one address, ztunnel sends a client's connections to "
        "the one in the client's namespace; before, to the one written last, mesh-wide (for a host, ztunnel's DNS "
        "prefers the client's namespace in every release)",
        "ztunnel `src/state/service.rs` (`get_best_by_vip`), ztunnel PR #1829",
    )
    TRUST_DOMAINS = (
        IstioVersion(30, 2),
        "`source.trustDomains` / `notTrustDomains` and the `source.trustDomain` condition; before, cells "
        "that depend on them read UNDECIDED",
        "`pilot/pkg/security/authz/model/model.go` at 1.30.2",
    )


class OutboundTrafficPolicy(StrEnum):
    """What a sidecar does with a connection to a host its registry does not hold (mesh config
    `outboundTrafficPolicy.mode`; a `Sidecar` resource's own setting overrides it). Istio's default
    is ALLOW_ANY (`mesh/v1alpha1/config.proto`; `pkg/config/mesh/mesh.go` DefaultMeshConfig). The
    manifests do not show the mesh config, so the analysis is told it, and assumes the default.
    ztunnel never enforces it (see `egress`)."""

    ALLOW_ANY = "ALLOW_ANY"  # passed through to the address dialled
    REGISTRY_ONLY = "REGISTRY_ONLY"  # refused (the sidecar's BlackHoleCluster)


@dataclass(frozen=True)
class Istio:
    """What the analysis needs to know of the installation, beside the manifests."""

    version: IstioVersion = NEWEST_SUPPORTED
    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    outbound_traffic_policy: OutboundTrafficPolicy = OutboundTrafficPolicy.ALLOW_ANY

    @classmethod
    def of(
        cls,
        version: IstioVersion | str,
        root_namespace: str = DEFAULT_ROOT_NAMESPACE,
        outbound_traffic_policy: OutboundTrafficPolicy | str = OutboundTrafficPolicy.ALLOW_ANY,
    ) -> Istio:
        """From the public API's arguments: a version object or its text, a policy or its name."""
        parsed = version if isinstance(version, IstioVersion) else IstioVersion.parse(version)
        return cls(parsed, root_namespace, OutboundTrafficPolicy(outbound_traffic_policy))

    def has(self, behaviour: Behaviour) -> bool:
        return self.version.at_least(behaviour.since)
