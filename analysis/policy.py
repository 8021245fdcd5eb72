"""AuthorizationPolicy rules as clauses over request attributes, and how each clause matches.

Every field of a rule constrains one attribute (the names of Istio's `when` keys), so `from`, `to`
and `when` share one evaluator, which follows `pilot/pkg/security/authz/model/model.go` and
`generator.go`. A clause says yes or no, depends on the HTTP request (a method the request leaves
open), or is unknown: the analysis does not evaluate it (client IPs, JWTs), the installed Istio does
not know the field, or Istio rejects it (an unknown `when` key). See `truth` for how they combine.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .istio import Behaviour, Istio
from .manifests import Kind, ObjectRef, Resource
from .matching import header_value_matches, host_matches, namespace_matches, path_matches, value_matches
from .truth import NO, YES, Match, all_of, any_of, depends_on, unknown

SOURCE_NAMESPACE = "source.namespace"
SOURCE_PRINCIPAL = "source.principal"
SOURCE_SERVICE_ACCOUNT = "source.serviceAccount"
SOURCE_TRUST_DOMAIN = "source.trustDomain"
DESTINATION_PORT = "destination.port"
CONNECTION_SNI = "connection.sni"
# Internal names for `to.operation` fields: no `when` key has them.
REQUEST_HOST = "request.host"
REQUEST_METHOD = "request.method"
REQUEST_PATH = "request.path"
REQUEST_HEADER = re.compile(r"request\.headers\[(?P<name>[^\]]+)\]")
# Only an HTTP proxy sees `request.*` attributes; on plain TCP they do not exist.
_HTTP_ONLY_PREFIX = "request."

_SOURCE_FIELDS = {
    "principals": SOURCE_PRINCIPAL,
    "requestPrincipals": "request.auth.principal",
    "namespaces": SOURCE_NAMESPACE,
    "serviceAccounts": SOURCE_SERVICE_ACCOUNT,
    "trustDomains": SOURCE_TRUST_DOMAIN,
    "ipBlocks": "source.ip",
    "remoteIpBlocks": "remote.ip",
}
_OPERATION_FIELDS = {
    "hosts": REQUEST_HOST,
    "ports": DESTINATION_PORT,
    "methods": REQUEST_METHOD,
    "paths": REQUEST_PATH,
}
# Attributes Istio knows but the manifests cannot tell, and why; by exact name or by prefix.
_NOT_EVALUATED = {
    "source.ip": "client pod IPs are not in the manifests",
    "remote.ip": "original client IPs are not in the manifests",
    "destination.ip": "the address a client dials is not modelled",
    CONNECTION_SNI: "the TLS server name a client sends is not modelled",
    "request.auth.": "request JWTs are not evaluated",
    "experimental.envoy.filters.": "Envoy filter metadata is not modelled",
}
# `when` keys Istio accepts (pkg/config/security/security.go ValidateAttribute), beyond those above.
_CONDITION_KEYS = {SOURCE_NAMESPACE, SOURCE_PRINCIPAL, SOURCE_SERVICE_ACCOUNT, SOURCE_TRUST_DOMAIN, DESTINATION_PORT}
_SINCE = {SOURCE_SERVICE_ACCOUNT: Behaviour.SERVICE_ACCOUNTS, SOURCE_TRUST_DOMAIN: Behaviour.TRUST_DOMAINS}
# The attributes read from the peer's mTLS certificate (authz/model/generator.go).
PEER_IDENTITY = {SOURCE_PRINCIPAL, SOURCE_NAMESPACE, SOURCE_SERVICE_ACCOUNT, SOURCE_TRUST_DOMAIN}
# strconv.ParseBool's true values: istiod reads `istio.io/dry-run` with it (authz/builder/builder.go isDryRun).
_DRY_RUN = "istio.io/dry-run"
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}

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
class Facts:
    """What the waypoint knows of one request, as far as the analysis knows it."""

    namespace: str
    service_account: str | None  # None: not given, so clauses on the identity may be undecided
    trust_domain: str
    port: int  # the ServiceEntry port the client dialled
    host: str
    method: str | None  # None: any method
    path: str | None  # None: any path
    headers: Mapping[str, str] | None  # names in lower case; None: any headers
    # What only an egress gateway knows (see `egress_gateway`); a waypoint leaves them unevaluated.
    sni: str | None = None  # the TLS server name of the connection, "" for plaintext
    # Whether the connection carries the client's mTLS identity: None when that turns on what the
    # manifests do not show. Without it, identity clauses match no one (authorization_policy.proto:
    # "This field requires mTLS enabled").
    mutual_tls: bool | None = True

    def principal_match(self, pattern: str) -> bool | None:
        """Whether the client's principal matches `pattern`; None when that turns on the service
        account the request leaves open. Everything before the account is known, and an account
        name is non-empty and holds no `/`, which settles most patterns without it."""
        known = f"{self.trust_domain}/ns/{self.namespace}/sa/"
        if self.service_account is not None:
            return value_matches(pattern, known + self.service_account)
        if pattern == "*":
            return True
        if pattern.startswith("*"):
            suffix = pattern[1:]
            if "/" not in suffix:
                return None  # only the account's own end can match it
            account = suffix.rpartition("/")[2]
            return None if account and (known + account).endswith(suffix) else False
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            if known.startswith(prefix):
                return True
            return None if prefix.startswith(known) and "/" not in prefix[len(known) :] else False
        account = pattern[len(known) :]
        return None if pattern.startswith(known) and account and "/" not in account else False


@dataclass(frozen=True)
class Clause:
    """One field of a rule; what it reads is worked out once (a policy is judged for many clients)."""

    field: str  # as written in the policy, e.g. `notNamespaces` or `when[request.headers[x]]`
    attribute: str
    values: tuple[str, ...]
    negated: bool = False

    @functools.cached_property
    def http_only(self) -> bool:
        # An unknown key fails the whole rule before Istio looks at the protocol (model.go New), so
        # it is never dropped the way HTTP-only fields are on TCP.
        return self.attribute.startswith(_HTTP_ONLY_PREFIX) and not self.unknown_key

    @functools.cached_property
    def not_evaluated(self) -> str | None:
        """Why the analysis cannot evaluate the clause from manifests, if it cannot."""
        return next((why for name, why in _NOT_EVALUATED.items() if self.attribute.startswith(name)), None)

    @functools.cached_property
    def behaviour(self) -> Behaviour | None:
        """The release-dependent behaviour the clause needs, if any."""
        return _SINCE.get(self.attribute)

    @functools.cached_property
    def unknown_key(self) -> bool:
        """A `when` key Istio does not know: its validation rejects the policy, istiod skips the rule."""
        if not self.field.startswith("when["):
            return False
        known = self.attribute in _CONDITION_KEYS or REQUEST_HEADER.fullmatch(self.attribute) is not None
        return not known and self.not_evaluated is None

    def evaluate(self, facts: Facts, istio: Istio) -> Match:
        match = self._positive(facts, istio)
        return match.negated() if self.negated else match

    def _positive(self, facts: Facts, istio: Istio) -> Match:
        behaviour = self.behaviour
        if behaviour is not None and not istio.has(behaviour):
            return unknown(self.field, f"Istio {istio.version} does not know it; {behaviour.since} does")
        if self.unknown_key:
            return unknown(self.field, "not an Istio attribute: Istio rejects the policy")
        if self.attribute in PEER_IDENTITY and facts.mutual_tls is not True:
            if facts.mutual_tls is None:
                return unknown(self.field, "whether the connection is in mutual TLS is left to auto mTLS")
            return NO
        if self.attribute == CONNECTION_SNI and facts.sni is not None:
            return self._values_match(facts.sni)
        why = self.not_evaluated
        if why is not None:
            return unknown(self.field, why)
        header = REQUEST_HEADER.fullmatch(self.attribute)
        if header is not None:
            return self._header(facts, header["name"].lower())
        if self.attribute == SOURCE_PRINCIPAL:
            return self._by_identity(map(facts.principal_match, self.values))
        if self.attribute == SOURCE_SERVICE_ACCOUNT:
            return self._by_identity(_service_account_match(value, facts) for value in self.values)
        request_value = {REQUEST_METHOD: facts.method, REQUEST_PATH: facts.path}
        if self.attribute in request_value:
            value = request_value[self.attribute]
            if value is None:
                return depends_on(self.field)
            return self._values_match(value)
        known_value = {
            SOURCE_NAMESPACE: facts.namespace,
            SOURCE_TRUST_DOMAIN: facts.trust_domain,
            DESTINATION_PORT: str(facts.port),
            REQUEST_HOST: facts.host,
        }
        return self._values_match(known_value[self.attribute])

    def _values_match(self, value: str) -> Match:
        matches = _MATCHERS.get(self.attribute, value_matches)
        return YES if any(matches(pattern, value) for pattern in self.values) else NO

    def _header(self, facts: Facts, name: str) -> Match:
        if facts.headers is None:
            return depends_on(self.field)
        value = facts.headers.get(name)
        # A header the request does not carry matches no value, so a `notValues` clause holds.
        return NO if value is None else YES if any(header_value_matches(p, value) for p in self.values) else NO

    def _by_identity(self, verdicts: Iterable[bool | None]) -> Match:
        """Any value matching decides; one that turns on the unnamed service account leaves it open."""
        results = list(verdicts)
        if True in results:
            return YES
        return unknown(self.field, "the request names no service account") if None in results else NO


def _exact(pattern: str, value: str) -> bool:
    return pattern == value


# How Istio matches each attribute's values (see `matching`); others use its plain string match.
_MATCHERS: Mapping[str, Callable[[str, str], bool]] = {
    SOURCE_NAMESPACE: namespace_matches,
    DESTINATION_PORT: _exact,  # ports take exact values only
    REQUEST_HOST: host_matches,
    REQUEST_METHOD: header_value_matches,
    REQUEST_PATH: path_matches,
}


def _service_account_match(value: str, facts: Facts) -> bool | None:
    """`<namespace>/<service account>`, exactly: serviceAccounts take no wildcards."""
    namespace, _, account = value.partition("/")
    if namespace != facts.namespace:
        return False
    return None if facts.service_account is None else account == facts.service_account


Conjunction = tuple[Clause, ...]


def _alternatives(conjunctions: tuple[Conjunction, ...], facts: Facts, istio: Istio) -> Match:
    # An absent `from` or `to` list places no constraint.
    if not conjunctions:
        return YES
    return any_of(all_of(clause.evaluate(facts, istio) for clause in clauses) for clauses in conjunctions)


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

    def evaluate(self, facts: Facts, istio: Istio) -> Match:
        sources = _alternatives(self.sources, facts, istio)
        operations = _alternatives(self.operations, facts, istio)
        return all_of([sources, operations, *(clause.evaluate(facts, istio) for clause in self.conditions)])

    def may_match_port(self, port: int) -> bool:
        """Whether the rule's port constraints alone admit `port`; its other clauses are not judged."""

        def admits(clause: Clause) -> bool:
            return clause.attribute != DESTINATION_PORT or (str(port) in clause.values) != clause.negated

        operations_admit = not self.operations or any(all(map(admits, clauses)) for clauses in self.operations)
        return operations_admit and all(map(admits, self.conditions))

    def without_http_only_fields(self) -> Rule:
        def kept(clauses: Conjunction) -> Conjunction:
            return tuple(clause for clause in clauses if not clause.http_only)

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
    # `istio.io/dry-run: "true"`: Istio only logs what the policy would do.
    dry_run: bool = False

    def rules_for(self, *, http: bool) -> tuple[Rule, ...]:
        """The rules as enforced: on TCP an ALLOW rule with HTTP-only fields is dropped whole, while
        a DENY rule loses just those fields and so matches more traffic (Istio's fail-closed choice)."""
        if http:
            return self.rules
        if self.action == "DENY":
            return tuple(rule.without_http_only_fields() for rule in self.rules)
        return tuple(rule for rule in self.rules if not rule.http_only_fields())

    def evaluate(self, facts: Facts, istio: Istio, *, http: bool) -> Match:
        # No rules at all matches nothing: that is what makes an empty ALLOW policy "allow-nothing".
        return any_of(rule.evaluate(facts, istio) for rule in self.rules_for(http=http))

    def clauses(self) -> Iterator[Clause]:
        for rule in self.rules:
            yield from rule.clauses()

    def source_namespaces(self) -> frozenset[str]:
        """Namespaces the rules name literally as a source namespace, in a principal or in a service
        account; wildcards are skipped."""
        named = {
            *self._named(SOURCE_NAMESPACE),
            *(principal.namespace for principal in self._named_principals()),
            *(namespace for namespace, _ in self.source_service_accounts()),
        }
        return frozenset(namespace for namespace in named if "*" not in namespace)

    def source_principals(self) -> frozenset[Principal]:
        """Principals the rules name with a literal namespace and service account; the trust domain may be a pattern."""
        return frozenset(
            principal
            for principal in self._named_principals()
            if "*" not in principal.namespace and "*" not in principal.service_account
        )

    def source_service_accounts(self) -> frozenset[tuple[str, str]]:
        """(namespace, service account) pairs the rules name in `serviceAccounts`."""
        pairs = set()
        for value in self._named(SOURCE_SERVICE_ACCOUNT):
            namespace, _, account = value.partition("/")
            pairs.add((namespace, account))
        return frozenset(pairs)

    def _named_principals(self) -> Iterator[Principal]:
        return filter(None, map(Principal.parse, self._named(SOURCE_PRINCIPAL)))

    def _named(self, attribute: str) -> Iterator[str]:
        """Values the rules require of `attribute`; `not...` clauses name what is excluded, so they are skipped."""
        for clause in self.clauses():
            if clause.attribute == attribute and not clause.negated:
                yield from clause.values


def parse_policy(resource: Resource) -> Policy:
    spec = resource.spec
    # `targetRef` (singular) is the deprecated spelling of a one-element `targetRefs`.
    refs = spec.get("targetRefs") or ([spec["targetRef"]] if spec.get("targetRef") else [])
    return Policy(
        ref=resource.ref,
        action=spec.get("action", "ALLOW"),
        rules=tuple(_parse_rule(rule or {}, resource.namespace) for rule in spec.get("rules") or []),
        targets=tuple(TargetRef(Kind(ref.get("group", ""), ref.get("kind", "")), ref.get("name", "")) for ref in refs),
        dry_run=resource.annotations.get(_DRY_RUN) in _GO_TRUE,
    )


def _parse_rule(rule: Mapping[str, Any], namespace: str) -> Rule:
    sources = rule.get("from") or []
    operations = rule.get("to") or []
    return Rule(
        sources=tuple(_field_clauses(entry.get("source") or {}, _SOURCE_FIELDS, namespace) for entry in sources),
        operations=tuple(
            _field_clauses(entry.get("operation") or {}, _OPERATION_FIELDS, namespace) for entry in operations
        ),
        conditions=tuple(
            clause for condition in rule.get("when") or [] for clause in _condition_clauses(condition, namespace)
        ),
    )


def _field_clauses(section: Mapping[str, Any], fields: Mapping[str, str], namespace: str) -> Conjunction:
    clauses = []
    for name, attribute in fields.items():
        negated_name = "not" + name[0].upper() + name[1:]
        for written, negated in ((name, False), (negated_name, True)):
            if written in section:
                values = _values(attribute, section[written], namespace)
                clauses.append(Clause(written, attribute, values, negated))
    return tuple(clauses)


def _condition_clauses(condition: Mapping[str, Any], namespace: str) -> Iterator[Clause]:
    key = condition.get("key", "")
    for name, negated in (("values", False), ("notValues", True)):
        if name in condition:
            yield Clause(f"when[{key}]", key, _values(key, condition[name], namespace), negated)


def _values(attribute: str, values: Any, namespace: str) -> tuple[str, ...]:
    texts = tuple(str(value) for value in values or [])
    if attribute == SOURCE_SERVICE_ACCOUNT:
        # A bare `<service account>` is one in the policy's own namespace (generator.go serviceAccountRegex).
        return tuple(text if "/" in text else f"{namespace}/{text}" for text in texts)
    return texts
