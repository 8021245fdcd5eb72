"""AuthorizationPolicy rules as clauses over request attributes, and Istio's matching of them.

Every field of a rule constrains one request attribute (the names of Istio's `when` keys), so
`from`, `to` and `when` share one matcher. An attribute the request does not carry is absent:
a clause requiring a value never holds for it and a `not...` clause always does, as in Envoy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .manifests import Kind, ObjectRef, Resource
from .matching import header_value_matches, host_matches, namespace_matches, path_matches, value_matches

Attributes = Mapping[str, str]

SOURCE_NAMESPACE = "source.namespace"
SOURCE_PRINCIPAL = "source.principal"
DESTINATION_PORT = "destination.port"
REQUEST_METHOD = "request.method"
REQUEST_PATH = "request.path"
REQUEST_HOST = "request.host"
REQUEST_HEADERS = "request.headers["
# Only an HTTP proxy sees `request.*` attributes; on plain TCP they do not exist.
_HTTP_ONLY_PREFIX = "request."

_SOURCE_FIELDS = {
    "principals": SOURCE_PRINCIPAL,
    "requestPrincipals": "request.auth.principal",
    "namespaces": SOURCE_NAMESPACE,
    "ipBlocks": "source.ip",
    "remoteIpBlocks": "remote.ip",
}
_OPERATION_FIELDS = {
    "hosts": REQUEST_HOST,
    "ports": DESTINATION_PORT,
    "methods": REQUEST_METHOD,
    "paths": REQUEST_PATH,
}
# Istio documents these as exact-match only: no `*` wildcards.
_EXACT_ONLY_FIELDS = {"ports", "ipBlocks", "remoteIpBlocks"}
# How Istio matches each attribute's values (see `matching`); the rest use its plain string match.
_MATCHERS: Mapping[str, Callable[[str, str], bool]] = {
    SOURCE_NAMESPACE: namespace_matches,
    REQUEST_HOST: host_matches,
    REQUEST_METHOD: header_value_matches,
    REQUEST_PATH: path_matches,
}

# Istio's trust domain unless the mesh configures another.
DEFAULT_TRUST_DOMAIN = "cluster.local"
_PRINCIPAL = re.compile(r"^(?P<trust_domain>[^/]*)/ns/(?P<namespace>[^/]+)/sa/(?P<service_account>[^/]+)$")


@dataclass(frozen=True, order=True)
class Principal:
    """A SPIFFE identity as Istio writes it: `<trust domain>/ns/<namespace>/sa/<service account>`.
    Any part may be a pattern when it comes from a policy (`*/ns/shop/sa/*`)."""

    trust_domain: str
    namespace: str
    service_account: str

    @classmethod
    def parse(cls, value: str) -> Principal | None:
        """None for anything not of that form, e.g. a bare `*`."""
        match = _PRINCIPAL.match(value)
        return cls(**match.groupdict()) if match else None

    def __str__(self) -> str:
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class Clause:
    field: str  # as written in the policy, e.g. `notNamespaces` or `when[request.headers[x]]`
    attribute: str
    values: tuple[str, ...]
    negated: bool = False
    exact: bool = False

    @property
    def http_only(self) -> bool:
        return self.attribute.startswith(_HTTP_ONLY_PREFIX)

    def holds(self, attributes: Attributes) -> bool:
        value = attributes.get(self.attribute)
        matched = value is not None and any(self._matches(pattern, value) for pattern in self.values)
        return matched != self.negated

    def _matches(self, pattern: str, value: str) -> bool:
        if self.exact:
            return pattern == value
        if self.attribute.startswith(REQUEST_HEADERS):
            return header_value_matches(pattern, value)
        return _MATCHERS.get(self.attribute, value_matches)(pattern, value)


Conjunction = tuple[Clause, ...]


def _all_hold(clauses: Conjunction, attributes: Attributes) -> bool:
    return all(clause.holds(attributes) for clause in clauses)


def _any_holds(alternatives: tuple[Conjunction, ...], attributes: Attributes) -> bool:
    # An absent `from` or `to` list places no constraint.
    return not alternatives or any(_all_hold(clauses, attributes) for clauses in alternatives)


@dataclass(frozen=True)
class Rule:
    sources: tuple[Conjunction, ...]  # `from` entries, OR'ed
    operations: tuple[Conjunction, ...]  # `to` entries, OR'ed
    conditions: Conjunction  # `when` entries, AND'ed

    def clauses(self) -> Iterator[Clause]:
        for conjunction in (*self.sources, *self.operations, self.conditions):
            yield from conjunction

    def http_only_fields(self) -> tuple[str, ...]:
        return tuple(sorted({clause.field for clause in self.clauses() if clause.http_only}))

    def matches(self, attributes: Attributes) -> bool:
        return (
            _any_holds(self.sources, attributes)
            and _any_holds(self.operations, attributes)
            and _all_hold(self.conditions, attributes)
        )

    def may_match_port(self, port: int) -> bool:
        """Whether the rule's port constraints alone admit `port`; its other clauses are not judged."""
        port_only = self._keeping(lambda clause: clause.attribute == DESTINATION_PORT)
        return port_only.matches({DESTINATION_PORT: str(port)})

    def without_http_only_fields(self) -> Rule:
        return self._keeping(lambda clause: not clause.http_only)

    def _keeping(self, keep: Callable[[Clause], bool]) -> Rule:
        def kept(clauses: Conjunction) -> Conjunction:
            return tuple(clause for clause in clauses if keep(clause))

        return replace(
            self,
            sources=tuple(kept(c) for c in self.sources),
            operations=tuple(kept(c) for c in self.operations),
            conditions=kept(self.conditions),
        )


@dataclass(frozen=True)
class TargetRef:
    kind: Kind
    name: str


@dataclass(frozen=True)
class Policy:
    ref: ObjectRef
    action: str
    rules: tuple[Rule, ...]
    targets: tuple[TargetRef, ...]

    def rules_for(self, *, http: bool) -> tuple[Rule, ...]:
        """The rules as enforced: on TCP an ALLOW rule with HTTP-only fields is dropped whole, while
        a DENY rule loses just those fields and so matches more traffic (Istio's fail-closed choice)."""
        if http:
            return self.rules
        if self.action == "DENY":
            return tuple(rule.without_http_only_fields() for rule in self.rules)
        return tuple(rule for rule in self.rules if not rule.http_only_fields())

    def matches(self, attributes: Attributes, *, http: bool) -> bool:
        # No rules at all matches nothing: that is what makes an empty ALLOW policy "allow-nothing".
        return any(rule.matches(attributes) for rule in self.rules_for(http=http))

    def source_namespaces(self) -> frozenset[str]:
        """Namespaces the rules name literally as a source namespace or in a principal; wildcards are skipped."""
        named = {*self._named(SOURCE_NAMESPACE), *(principal.namespace for principal in self._named_principals())}
        return frozenset(namespace for namespace in named if "*" not in namespace)

    def source_principals(self) -> frozenset[Principal]:
        """Principals the rules name with a literal namespace and service account; the trust domain may be a pattern."""
        return frozenset(
            principal
            for principal in self._named_principals()
            if "*" not in principal.namespace and "*" not in principal.service_account
        )

    def _named_principals(self) -> Iterator[Principal]:
        return filter(None, map(Principal.parse, self._named(SOURCE_PRINCIPAL)))

    def _named(self, attribute: str) -> Iterator[str]:
        """Values the rules require of `attribute`; `not...` clauses name what is excluded, so they are skipped."""
        for rule in self.rules:
            for clause in rule.clauses():
                if clause.attribute == attribute and not clause.negated:
                    yield from clause.values


def parse_policy(resource: Resource) -> Policy:
    spec = resource.spec
    # `targetRef` (singular) is the deprecated spelling of a one-element `targetRefs`.
    refs = spec.get("targetRefs") or ([spec["targetRef"]] if spec.get("targetRef") else [])
    return Policy(
        ref=resource.ref,
        action=spec.get("action", "ALLOW"),
        rules=tuple(_parse_rule(rule or {}) for rule in spec.get("rules") or []),
        targets=tuple(TargetRef(Kind(ref.get("group", ""), ref.get("kind", "")), ref.get("name", "")) for ref in refs),
    )


def _parse_rule(rule: Mapping[str, Any]) -> Rule:
    sources = rule.get("from") or []
    operations = rule.get("to") or []
    return Rule(
        sources=tuple(_field_clauses(entry.get("source") or {}, _SOURCE_FIELDS) for entry in sources),
        operations=tuple(_field_clauses(entry.get("operation") or {}, _OPERATION_FIELDS) for entry in operations),
        conditions=tuple(clause for condition in rule.get("when") or [] for clause in _condition_clauses(condition)),
    )


def _field_clauses(section: Mapping[str, Any], fields: Mapping[str, str]) -> Conjunction:
    clauses = []
    for field, attribute in fields.items():
        negated_field = "not" + field[0].upper() + field[1:]
        for name, negated in ((field, False), (negated_field, True)):
            if name in section:
                values = tuple(str(value) for value in section[name] or [])
                clauses.append(Clause(name, attribute, values, negated, exact=field in _EXACT_ONLY_FIELDS))
    return tuple(clauses)


def _condition_clauses(condition: Mapping[str, Any]) -> Iterator[Clause]:
    key = condition.get("key", "")
    for name, negated in (("values", False), ("notValues", True)):
        if name in condition:
            values = tuple(str(value) for value in condition[name] or [])
            yield Clause(f"when[{key}]", key, values, negated)
