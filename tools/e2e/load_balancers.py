"""LoadBalancer addresses on kind, from MetalLB in layer-2 mode.

Why MetalLB and not cloud-provider-kind: the stand-in databases admit only the egress waypoint's
pods (their ingress NetworkPolicy, which also keeps locked-down clients from dialling
`postgres-1.db.svc` directly). MetalLB's addresses are virtual IPs kube-proxy translates inside the
node, so the database sees the waypoint pod; kindnet's policy engine judges the packet before
source NAT (kube-network-policies: its postrouting chain runs at srcnat-5). cloud-provider-kind's
LoadBalancer is an Envoy container outside the cluster (ipMode Proxy) forwarding to the node port,
so the database would see that container and refuse every granted connection; it also installs its
own Gateway API CRDs, which the stack installs, and needs sudo on macOS.
"""

from __future__ import annotations

import ipaddress
import json

METALLB_VERSION = "v0.16.1"
METALLB_MANIFEST = f"https://raw.githubusercontent.com/metallb/metallb/{METALLB_VERSION}/config/manifests/metallb-native.yaml"
METALLB_NAMESPACE = "metallb-system"
KIND_NETWORK = "kind"
POOL_NAME = "ambient-egress-e2e"
# The top of the kind network, which Docker hands out last: 50 addresses, as kind's own guide does.
_POOL_SIZE = 50
_POOL_END_GAP = 5


class NoAddressPool(Exception):
    """The kind Docker network offers no IPv4 range; the message says what it offers."""


def address_pool(ipam_config: str) -> tuple[str, str]:
    """First and last address for MetalLB, from `docker network inspect kind --format '{{json .IPAM.Config}}'`."""
    try:
        entries = json.loads(ipam_config)
    except ValueError:
        raise NoAddressPool(f"docker printed no JSON for the {KIND_NETWORK} network: {ipam_config.strip()[:200]!r}") from None
    subnets = [entry.get("Subnet", "") for entry in entries or [] if isinstance(entry, dict)]
    for subnet in subnets:
        try:
            network = ipaddress.ip_network(subnet)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.num_addresses > 2 * (_POOL_SIZE + _POOL_END_GAP):
            last = network.broadcast_address - _POOL_END_GAP
            return str(last - _POOL_SIZE), str(last)
    raise NoAddressPool(f"the {KIND_NETWORK} Docker network has no IPv4 subnet large enough for {_POOL_SIZE} addresses "
                        f"(subnets: {', '.join(subnets) or 'none'})")


def pool_manifests(first: str, last: str) -> str:
    """The IPAddressPool MetalLB assigns from, and its layer-2 announcement."""
    return f"""\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: {POOL_NAME}
  namespace: {METALLB_NAMESPACE}
spec:
  addresses:
    - {first}-{last}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: {POOL_NAME}
  namespace: {METALLB_NAMESPACE}
spec:
  ipAddressPools: [{POOL_NAME}]
"""
