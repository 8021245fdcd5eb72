"""Which clients the policies of one ServiceEntry port can tell apart, so that the access matrix
judges each kind of client once and every cell of that kind is a lookup.

An ambient client's verdict turns on its identity only through the source clauses of the
applicable policies, in `from` and in `when` alike: `source.namespace` (namespaces),
`source.principal` (principals), `source.serviceAccount` (serviceAccounts) and `source.trustDomain`
(trustDomains). Everything else a clause reads is the same for every cell of a column (the port,
the host, the request asked about) or is not evaluated (ipBlocks, JWTs), and so the same unknown.

A literal value compares equal or not, so all the namespaces no literal value names give each such
clause the same answer: a namespace, principal or service account of another namespace does not
match them. Among those namespaces, clients differ only by their trust domain and by the patterns
(a value with `*`) they match, and that is their key. A namespace a literal value names is a kind
of its own, keyed by its whole identity.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from .matching import WILDCARD, namespace_matches, value_matches
from .policy import SOURCE_NAMESPACE, SOURCE_PRINCIPAL, SOURCE_SERVICE_ACCOUNT, Policy, Principal

# The attributes whose patterns can tell two namespaces apart; trust domain patterns turn on the
# trust domain alone, which every key holds.
_PATTERN_ATTRIBUTES = (SOURCE_NAMESPACE, SOURCE_PRINCIPAL)


@dataclass(frozen=True)
class SourceKinds:
    named: frozenset[str]  # namespaces a literal value names
    patterns: tuple[tuple[str, str], ...]  # (attribute, value with `*`), sorted

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> SourceKinds:
        named: set[str] = set()
        patterns: set[tuple[str, str]] = set()
        for policy in policies:
            for clause in policy.clauses():
                for value in clause.values:
                    if clause.attribute in _PATTERN_ATTRIBUTES and WILDCARD in value:
                        patterns.add((clause.attribute, value))
                    elif clause.attribute == SOURCE_NAMESPACE:
                        named.add(value)
                    elif clause.attribute == SOURCE_PRINCIPAL:
                        # A literal that is no principal matches no client, whatever its namespace.
                        principal = Principal.parse(value)
                        if principal is not None:
                            named.add(principal.namespace)
                    elif clause.attribute == SOURCE_SERVICE_ACCOUNT:
                        named.add(value.partition("/")[0])
        return cls(frozenset(named), tuple(sorted(patterns)))

    def key(self, namespace: str, service_account: str, trust_domain: str) -> Hashable:
        """Equal for two clients exactly when no applicable policy can tell them apart."""
        if namespace in self.named:
            return ("named", namespace, service_account, trust_domain)
        matched = tuple(
            _pattern_matches(attribute, pattern, namespace, service_account, trust_domain)
            for attribute, pattern in self.patterns
        )
        return ("other", trust_domain, matched)


@functools.lru_cache(maxsize=1 << 16)
def _pattern_matches(attribute: str, pattern: str, namespace: str, service_account: str, trust_domain: str) -> bool:
    if attribute == SOURCE_NAMESPACE:
        return namespace_matches(pattern, namespace)
    return value_matches(pattern, f"{trust_domain}/ns/{namespace}/sa/{service_account}")
