"""Whether a namespace's pods reach any other external destination: the access matrix's last column.

"Any other external destination" is an address outside the cluster that no ServiceEntry claims:
the internet, a database nobody declared, and the real IPs behind a ServiceEntry's DNS name (ztunnel
captures only the address Istio allocates for the name). ztunnel passes connections to such an
address straight through (`src/proxy/outbound.rs`), and a pod that opts out of capture dials it
directly too, so only the egress NetworkPolicies of the pod's namespace can stop them; ambient
never bypasses NetworkPolicy (istio.io `ambient/usage/networkpolicy`). Their semantics are
Kubernetes': a pod no egress policy selects may send anywhere, and a selected pod may send wherever
one of the policies selecting it allows. The verdict, for the pods of a namespace:

  OPEN  some pod is not isolated for egress: no egress policy surely selects it (pods' labels are not
        in the manifests, so only a policy selecting every pod isolates them all); or a policy that
        may select one of them has an egress rule without `to` (every destination), or an ipBlock
        whose allowed part (`cidr` less its `except` ranges) holds a network of more than
        `LISTED_ADDRESSES` addresses: `0.0.0.0/0` with exceptions, or a whole private network, in
        which some undeclared destination lives; or the namespace has a host-network pod, which
        NetworkPolicy does not govern. The reason names the policy and the block.
  DENY  otherwise: the pods send only to pods in the cluster, the egress waypoint among them, and
        to listed addresses, each network of at most `LISTED_ADDRESSES` (an API server, a
        NodeLocal DNS address), which the reason names.

NetworkPolicies select pods by label, never by service account, so every row of a namespace gets
its namespace's verdict. Rule `ports` are not judged: a rule counts as allowing every port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from .manifests import Mesh, MeshIndex, as_index
from .netpol import CLIENT_PODS, Direction, IPNetwork, Labels, governing
from .verdict import Decision, Verdict
from .workloads import Workload, workloads

# The most addresses one allowed network may hold and still be a listed destination: an IPv4 /24
# or an IPv6 /120. A broader one is a network that holds destinations nobody listed.
LISTED_ADDRESSES = 256


def external_egress(mesh: Mesh, namespace: str) -> Verdict:
    """The verdict for any other external destination from the pods of `namespace`; worked out once per index."""
    index = as_index(mesh)

    def build() -> Verdict:
        host_network = [workload for workload in workloads(index, namespace) if workload.host_network]
        if host_network:
            return _host_network(host_network[0])
        return pods_external_egress(index, namespace, CLIENT_PODS)

    return index.derived(("external egress", namespace), build)


def workload_external_egress(index: MeshIndex, workload: Workload) -> Verdict:
    """`external_egress` for one workload's pods, whose labels the manifests show."""
    if workload.host_network:
        return _host_network(workload)
    return pods_external_egress(index, workload.namespace, Labels(workload.labels))


def _host_network(workload: Workload) -> Verdict:
    governs = "which no NetworkPolicy governs, so its pods send anywhere"
    return Verdict(Decision.OPEN, f"{workload} runs in the host network, {governs}")


def pods_external_egress(index: MeshIndex, namespace: str, pods: Labels) -> Verdict:
    """`external_egress` for the pods of `namespace` with `pods`' labels, as NetworkPolicies judge them."""
    policies = governing(index, namespace, pods, Direction.EGRESS)
    if policies is None:
        return Verdict(
            Decision.OPEN,
            f"no egress NetworkPolicy of namespace {namespace} selects every pod, so a pod it does not select "
            "sends anywhere",
        )
    listed: set[IPNetwork] = set()
    in_cluster = False
    for policy in policies:
        for peers in policy.rules[Direction.EGRESS]:
            if not peers:
                return Verdict(Decision.OPEN, f"NetworkPolicy {policy.ref} has an egress rule without `to`: every destination")
            for peer in peers:
                if peer.ip_block is None:
                    in_cluster = True
                    continue
                for network in peer.networks():
                    if network.num_addresses > LISTED_ADDRESSES:
                        block = _written(peer.ip_block)
                        return Verdict(
                            Decision.OPEN,
                            f"NetworkPolicy {policy.ref} allows egress to ipBlock {block}, which holds {network} "
                            f"({network.num_addresses:,} addresses, more than the {LISTED_ADDRESSES} of a listed "
                            "destination)",
                        )
                    listed.add(network)
    names = ", ".join(str(policy.ref) for policy in policies)
    return Verdict(Decision.DENY, f"egress NetworkPolicies ({names}) let pods send only to {_destinations(in_cluster, listed)}")


def _written(ip_block: Mapping[str, Any]) -> str:
    cidr, excepted = ip_block.get("cidr", ""), ip_block.get("except") or []
    return f"{cidr} except {', '.join(map(str, excepted))}" if excepted else str(cidr)


def _destinations(in_cluster: bool, listed: set[IPNetwork]) -> str:
    parts = ["pods in the cluster"] if in_cluster else []
    v4 = sorted(network for network in listed if isinstance(network, ipaddress.IPv4Network))
    v6 = sorted(network for network in listed if isinstance(network, ipaddress.IPv6Network))
    parts += [*map(str, ipaddress.collapse_addresses(v4)), *map(str, ipaddress.collapse_addresses(v6))]
    return ", ".join(parts) if parts else "nowhere (every egress connection is denied)"
