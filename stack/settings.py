"""The stack-wide settings of the config: protections against routes around the egress door, and
the mesh the stack runs on (Istio, the Gateway API, sidecar mode's egress gateway)."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ModelWrapValidatorHandler, StrictStr, WithJsonSchema, model_validator

from components.names import shown
from components.values import DEFAULT_EGRESS_GATEWAY_SELECTOR, DEFAULT_ISTIO_NAMESPACE, Dataplane, EgressGatewayRef

from .base import Model, at, raise_problems, validated_with
from .errors import did_you_mean, problem
from .types import Cidr, Flag, GatewayApiVersion, IstioVersion, Label, NamespaceName, Port

DEFAULT_ISTIO_VERSION = "1.30"
DEFAULT_GATEWAY_API_VERSION = "v1.4.0"


# --- protections --------------------------------------------------------------------------------------


class BypassProtection(Model):
    """The measures that stop clients from reaching a database around the egress waypoint."""

    service_entry_addresses: Flag = True
    """Put an IP-addressed database's IP on its ServiceEntry, so raw-IP connections meet the waypoint too."""
    database_ingress_policy: Flag = True
    """A NetworkPolicy that lets stand-in pods accept connections from the egress waypoint only."""

    @model_validator(mode="wrap")
    @classmethod
    def _retired(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        found = []
        if isinstance(data, dict) and "clientEgressPolicy" in data:
            found.append(at(("clientEgressPolicy",), "was replaced by egressLockdown, on by default for every grant; "
                                                      "remove it", data["clientEgressPolicy"]))
            data = {key: value for key, value in data.items() if key != "clientEgressPolicy"}
        return validated_with(found, handler, data)


class EgressLockdown(Model):
    """A NetworkPolicy per granted namespace: its pods send only to pods in the cluster (the egress
    waypoint among them) and to `allowCidrs`, so the waypoint is the only way out."""

    enabled: Flag = True
    allow_cidrs: tuple[Cidr, ...] = ()
    """Addresses outside the cluster's pods the namespace still needs: the API server, NodeLocal DNS."""


class ServiceEntryAdmission(Model):
    """A ValidatingAdmissionPolicy that refuses ServiceEntries outside the egress namespace."""

    enabled: Flag = True
    allowed_namespaces: tuple[NamespaceName, ...] = ()
    """Namespaces that may keep ServiceEntries of their own."""


def _dataplane(value: Any) -> Dataplane:
    choices = [str(mode) for mode in Dataplane]
    if value not in choices:
        raise problem(f"must be one of {', '.join(choices)} (got {shown(value)}){did_you_mean(str(value).lower(), choices)}")
    return Dataplane(value)


DataplaneMode = Annotated[Dataplane, BeforeValidator(_dataplane), WithJsonSchema({"enum": [str(mode) for mode in Dataplane]})]


# --- the mesh --------------------------------------------------------------------------------------------


class Istio(Model):
    """The Istio the cluster runs, or the stack installs."""

    version: IstioVersion = DEFAULT_ISTIO_VERSION
    """Its minor decides what renders (`resolution: NONE` from 1.28); installing pins the charts to it."""
    install: Flag = False
    """Install Istio in ambient mode from its Helm charts (base, istiod, cni, ztunnel) at `version`."""
    namespace: NamespaceName = DEFAULT_ISTIO_NAMESPACE
    """Where Istio runs: ztunnel is looked for, or installed, there."""

    @model_validator(mode="after")
    def _pinned(self) -> Istio:
        if self.install and self.version.count(".") != 2:
            raise_problems([at(("version",), f"must name a release to install, such as \"{self.version}.0\" (got "
                                      f"{shown(self.version)}): the Helm charts are pinned to it", self.version)])
        return self

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


class EgressGatewayConfig(Model):
    """The Istio egress gateway sidecar mode routes through: it must exist, and its authorization
    becomes the stack's (every connection through it is refused until granted)."""

    namespace: NamespaceName = DEFAULT_ISTIO_NAMESPACE
    service: Label = "istio-egressgateway"
    selector: dict[StrictStr, StrictStr] = Field(default_factory=lambda: dict(DEFAULT_EGRESS_GATEWAY_SELECTOR))
    """The gateway pods' labels."""
    port: Port = 443
    """The gateway port sidecars reach it on over mutual TLS; every target shares it, told apart by SNI."""

    def value(self) -> EgressGatewayRef:
        return EgressGatewayRef(namespace=self.namespace, service=self.service, selector=dict(self.selector), port=self.port)


class SidecarMode(Model):
    egress_gateway: EgressGatewayConfig = Field(default_factory=lambda: EgressGatewayConfig())


class GatewayApi(Model):
    """The Gateway API CRDs the waypoint and routes are made of."""

    install: Flag = False
    """Install the standard-channel CRDs of `version`."""
    version: GatewayApiVersion = DEFAULT_GATEWAY_API_VERSION
