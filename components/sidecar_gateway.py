"""SidecarEgressGateway: the egress door of a sidecar-mode mesh, an Istio egress gateway that
already runs, closed by this stack until granted."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pulumi

from . import manifests
from .names import check_namespace_ownership, dns_label_problem
from .resources import child_options, kubernetes_object, kubernetes_read
from .values import DEFAULT_EGRESS_NAMESPACE, EgressGatewayRef

TYPE_TOKEN = "ambient-egress:index:SidecarEgressGateway"


@dataclass(frozen=True, kw_only=True)
class SidecarEgressGatewayArgs:
    gateway: EgressGatewayRef = field(default_factory=EgressGatewayRef)
    """The egress gateway's namespace, Service, pod labels and port. Its authorization becomes
    this stack's: give the stack a gateway of its own, not one other teams route through."""
    namespace: str = DEFAULT_EGRESS_NAMESPACE
    """Where the targets' ServiceEntries, routes and gateway servers live."""
    create_namespace: bool = True

    def __post_init__(self) -> None:
        for field_name, value in (("namespace", self.namespace), ("gateway.namespace", self.gateway.namespace),
                                  ("gateway.service", self.gateway.service)):
            if problem := dns_label_problem(value):
                raise ValueError(f"SidecarEgressGatewayArgs.{field_name}: {value!r} {problem}")
        if not self.gateway.selector:
            raise ValueError("SidecarEgressGatewayArgs.gateway.selector: name the gateway pods' labels, "
                             "e.g. {istio: egressgateway}")
        check_namespace_ownership("SidecarEgressGatewayArgs", self.namespace, owned=self.create_namespace)


class SidecarEgressGateway(pulumi.ComponentResource):
    """The egress namespace and an allow-nothing policy on the gateway's pods: every connection
    through the gateway is refused until a grant allows it."""

    gateway: EgressGatewayRef
    """The gateway as targets route through it, with the baseline to wait for."""
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: SidecarEgressGatewayArgs | None = None, opts: pulumi.ResourceOptions | None = None):
        args = args or SidecarEgressGatewayArgs()
        super().__init__(TYPE_TOKEN, name, None, opts)
        if args.create_namespace:
            namespace = kubernetes_object(f"{name}/namespace", manifests.namespace(args.namespace, ambient=False),
                                          child_options(self, opts))
        else:
            namespace = kubernetes_read(f"{name}/existing-namespace: create it, or let the gateway own it",
                                        "v1", "Namespace", args.namespace, child_options(self, opts))
        baseline = kubernetes_object(
            f"{name}/allow-nothing", manifests.gateway_allow_nothing(f"{args.namespace}-egress-allow-nothing", args.gateway),
            child_options(self, opts, depends_on=[namespace]))
        self.gateway = replace(args.gateway, policy=baseline)
        self.namespace = namespace.metadata.apply(lambda _: args.namespace)
        self.register_outputs({"namespace": self.namespace})
