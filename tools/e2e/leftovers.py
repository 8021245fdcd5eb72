"""After `pulumi destroy`: is anything the stack created still in the cluster?

What to look for comes from the stack's config (the namespaces it owns, whether it installed Istio
and the Gateway API CRDs) and from the label every object of the project carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.manifests import ISTIO_CHARTS
from stack import StackConfig
from tools.verify.kubectl import PART_OF_SELECTOR, REQUEST_TIMEOUT_SECONDS, Kubectl
from tools.verify.process import failure

LABELLED_RESOURCES = (
    "serviceentries.networking.istio.io",
    "authorizationpolicies.security.istio.io",
    "validatingadmissionpolicies.admissionregistration.k8s.io",
    "validatingadmissionpolicybindings.admissionregistration.k8s.io",
)
GATEWAY_API_GROUP = ".gateway.networking.k8s.io"
# Helm keeps each release revision in a Secret labelled with its owner and name.
HELM_RELEASE_SELECTOR = "owner=helm"


@dataclass(frozen=True)
class Leftovers:
    found: list[str]
    """What is still there, one object or release a line."""
    unchecked: list[str]
    """What could not be looked at, and why: not clean until looked at."""

    @property
    def clean(self) -> bool:
        return not self.found and not self.unchecked


def owned_namespaces(config: StackConfig) -> list[str]:
    """The namespaces the stack creates, and so deletes."""
    namespaces = [config.egress_namespace] if config.create_egress_namespace else []
    if config.create_database_namespace and any(database.is_stand_in for database in config.databases):
        namespaces.append(config.database_namespace)
    namespaces += [grant.namespace for grant in config.grants if grant.create_namespace]
    return namespaces


def describe_leftover_search(config: StackConfig) -> str:
    namespaces = owned_namespaces(config)
    what = [f"namespaces {', '.join(namespaces)}"] if namespaces else []
    what.append(f"objects labelled {PART_OF_SELECTOR}")
    if config.istio.install:
        what.append(f"Istio's Helm releases in {config.istio.namespace}")
    if config.gateway_api.install:
        what.append("the Gateway API CRDs")
    return ", ".join(what)


def _names(kubectl: Kubectl, *args: str, what: str, unchecked: list[str]) -> list[str]:
    """`kubectl get ... -o name`; a resource type the cluster no longer has holds nothing."""
    run = kubectl.run("get", *args, "-o", "name", f"--request-timeout={REQUEST_TIMEOUT_SECONDS}s")
    if run.exit_code == 0:
        return run.stdout.split()
    if "doesn't have a resource type" not in run.stderr:
        unchecked.append(f"{what}: {'no answer' if run.timed_out else failure(run)}")
    return []


def find_leftovers(kubectl: Kubectl, config: StackConfig) -> Leftovers:
    found: list[str] = []
    unchecked: list[str] = []
    namespaces = owned_namespaces(config)
    if namespaces:
        found += _names(kubectl, "namespaces", *namespaces, "--ignore-not-found", what="namespaces", unchecked=unchecked)
    for resource in LABELLED_RESOURCES:
        found += _names(kubectl, resource, "--all-namespaces", "-l", PART_OF_SELECTOR, what=resource, unchecked=unchecked)
    if config.istio.install:
        secrets = _names(kubectl, "secrets", "-n", config.istio.namespace, "-l", HELM_RELEASE_SELECTOR,
                         what=f"Helm releases in {config.istio.namespace}", unchecked=unchecked)
        found += [f"Helm release {release} ({secret})" for secret in secrets for release in ISTIO_CHARTS.values()
                  if secret.startswith(f"secret/sh.helm.release.v1.{release}.v")]
    if config.gateway_api.install:
        crds = _names(kubectl, "customresourcedefinitions", what="CustomResourceDefinitions", unchecked=unchecked)
        found += [crd for crd in crds if crd.endswith(GATEWAY_API_GROUP)]
    return Leftovers(found, unchecked)
