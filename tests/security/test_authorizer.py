"""The ACL authorizer's decisions: Kafka's rules case by case, and the indexed matcher
against a brute-force reading of the same rules over random bindings."""

from __future__ import annotations

import random

import pytest

from odradek.security.acl import (
    WILDCARD,
    AccessControlEntry,
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourcePattern,
    ResourceType,
    binding_error,
    decode_entries,
    encode_entries,
)
from odradek.security.authorizer import Authorizer, parse_super_users

ALICE, BOB = "User:alice", "User:bob"
HOST = "127.0.0.1"
Op = AclOperation
TOPIC = ResourceType.TOPIC


def _add(
    a: Authorizer,
    kind: ResourceType,
    name: str,
    pattern: PatternType,
    *entries: tuple[str, str, AclOperation, AclPermission],
) -> None:
    p = ResourcePattern(kind, name, pattern)
    a.set_resource(p, a.entries(p) | {AccessControlEntry(*e) for e in entries})


def allow(
    principal: str, op: AclOperation, host: str = "*"
) -> tuple[str, str, AclOperation, AclPermission]:
    return (principal, host, op, AclPermission.ALLOW)


def deny(
    principal: str, op: AclOperation, host: str = "*"
) -> tuple[str, str, AclOperation, AclPermission]:
    return (principal, host, op, AclPermission.DENY)


def test_no_acls_follows_allow_everyone_if_no_acl_found() -> None:
    """A resource without any ACL is refused by default and allowed with the setting on;
    once any ACL names it, the setting no longer matters."""
    strict, lenient = Authorizer(), Authorizer(allow_if_no_acl=True)
    assert not strict.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    assert lenient.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    _add(lenient, TOPIC, "t", PatternType.LITERAL, allow(BOB, Op.READ))
    assert not lenient.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    assert lenient.authorize(ALICE, HOST, Op.READ, TOPIC, "other")


def test_deny_beats_allow_and_wildcards_apply() -> None:
    """A DENY for the principal (or User:*) refuses even where an ALLOW matches; the
    literal "*" resource and the "*" host apply to every name and host."""
    a = Authorizer()
    _add(a, TOPIC, WILDCARD, PatternType.LITERAL, allow("User:*", Op.ALL))
    assert a.authorize(ALICE, HOST, Op.WRITE, TOPIC, "anything")
    _add(a, TOPIC, "secret", PatternType.LITERAL, deny(ALICE, Op.READ))
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "secret")
    assert a.authorize(ALICE, HOST, Op.WRITE, TOPIC, "secret")
    assert a.authorize(BOB, HOST, Op.READ, TOPIC, "secret")
    _add(a, TOPIC, "secret", PatternType.LITERAL, deny("User:*", Op.ALL, HOST))
    assert not a.authorize(BOB, HOST, Op.READ, TOPIC, "secret")
    assert a.authorize(BOB, "10.0.0.1", Op.READ, TOPIC, "secret")


def test_prefixed_acls_match_names_that_start_with_the_prefix() -> None:
    """PREFIXED "pay" covers "pay" and "payments" but not "pa" or "xpay"."""
    a = Authorizer()
    _add(a, TOPIC, "pay", PatternType.PREFIXED, allow(ALICE, Op.READ))
    assert a.authorize(ALICE, HOST, Op.READ, TOPIC, "payments")
    assert a.authorize(ALICE, HOST, Op.READ, TOPIC, "pay")
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "pa")
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "xpay")
    _add(a, TOPIC, "payments-", PatternType.PREFIXED, deny(ALICE, Op.READ))
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "payments-eu")
    assert a.authorize(ALICE, HOST, Op.READ, TOPIC, "payments")


def test_implied_operations() -> None:
    """READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS,
    ALL implies everything; a DENY of DESCRIBE does not refuse READ."""
    for op in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.ALL):
        a = Authorizer()
        _add(a, TOPIC, "t", PatternType.LITERAL, allow(ALICE, op))
        assert a.authorize(ALICE, HOST, Op.DESCRIBE, TOPIC, "t"), op
    a = Authorizer()
    _add(a, TOPIC, "t", PatternType.LITERAL, allow(ALICE, Op.ALTER_CONFIGS))
    assert a.authorize(ALICE, HOST, Op.DESCRIBE_CONFIGS, TOPIC, "t")
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    _add(a, TOPIC, "t", PatternType.LITERAL, allow(ALICE, Op.READ), deny(ALICE, Op.DESCRIBE))
    assert a.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    assert not a.authorize(ALICE, HOST, Op.DESCRIBE, TOPIC, "t")


def test_super_users_may_do_anything() -> None:
    """super.users (semicolon-separated) bypass every ACL, DENYs included."""
    a = Authorizer(parse_super_users("User:admin; User:ops"))
    _add(a, TOPIC, WILDCARD, PatternType.LITERAL, deny("User:*", Op.ALL))
    assert a.authorize("User:ops", HOST, Op.WRITE, TOPIC, "t")
    assert not a.authorize(ALICE, HOST, Op.WRITE, TOPIC, "t")


def test_changes_apply_at_once_despite_the_cache() -> None:
    """An answer cached before a change is not reused after it."""
    a = Authorizer()
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    _add(a, TOPIC, "t", PatternType.LITERAL, allow(ALICE, Op.READ))
    assert a.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    a.set_resource(ResourcePattern(TOPIC, "t", PatternType.LITERAL), ())
    assert not a.authorize(ALICE, HOST, Op.READ, TOPIC, "t")
    assert a.patterns() == []


def test_authorize_any_by_resource_type() -> None:
    """Some topic writable (Kafka's authorizeByResourceType): an ALLOW on a literal or
    prefix counts unless a DENY covers it whole; a DENY of "*" refuses everything."""
    a = Authorizer()
    assert not a.authorize_any(ALICE, HOST, Op.WRITE, TOPIC)
    _add(a, TOPIC, "orders", PatternType.LITERAL, allow(ALICE, Op.WRITE))
    assert a.authorize_any(ALICE, HOST, Op.WRITE, TOPIC)
    _add(a, TOPIC, "ord", PatternType.PREFIXED, deny(ALICE, Op.WRITE))
    assert not a.authorize_any(ALICE, HOST, Op.WRITE, TOPIC)
    _add(a, TOPIC, "x", PatternType.PREFIXED, allow(ALICE, Op.WRITE))
    assert a.authorize_any(ALICE, HOST, Op.WRITE, TOPIC)
    _add(a, TOPIC, WILDCARD, PatternType.LITERAL, deny("User:*", Op.WRITE))
    assert not a.authorize_any(ALICE, HOST, Op.WRITE, TOPIC)


def test_authorized_operations_bit_field() -> None:
    """Bits of the operations allowed, among those the resource type supports."""
    a = Authorizer()
    _add(a, ResourceType.GROUP, "g", PatternType.LITERAL, allow(ALICE, Op.READ))
    bits = a.authorized_operations(ALICE, HOST, ResourceType.GROUP, "g")
    assert bits == (1 << Op.READ) | (1 << Op.DESCRIBE)


def test_validation_of_new_bindings() -> None:
    """CreateAcls refuses ANY/UNKNOWN elements, MATCH patterns, bad principals, a cluster
    not named kafka-cluster and names with '/'."""
    good = AclBinding(
        ResourcePattern(TOPIC, "t", PatternType.LITERAL),
        AccessControlEntry(ALICE, "*", Op.READ, AclPermission.ALLOW),
    )
    assert binding_error(good) is None
    bad = [
        AclBinding(ResourcePattern(ResourceType.ANY, "t", PatternType.LITERAL), good.entry),
        AclBinding(ResourcePattern(TOPIC, "t", PatternType.MATCH), good.entry),
        AclBinding(ResourcePattern(TOPIC, "a/b", PatternType.LITERAL), good.entry),
        AclBinding(ResourcePattern(ResourceType.CLUSTER, "c", PatternType.LITERAL), good.entry),
        AclBinding(good.pattern, AccessControlEntry("alice", "*", Op.READ, AclPermission.ALLOW)),
        AclBinding(good.pattern, AccessControlEntry(ALICE, "*", Op.ANY, AclPermission.ALLOW)),
        AclBinding(good.pattern, AccessControlEntry(ALICE, "*", Op.READ, AclPermission.ANY)),
    ]
    assert all(binding_error(b) is not None for b in bad)


def test_zookeeper_json_round_trip() -> None:
    """Entries survive Kafka's znode JSON, with Kafka's CamelCase names."""
    entries = frozenset(
        {
            AccessControlEntry(ALICE, "*", Op.DESCRIBE_CONFIGS, AclPermission.ALLOW),
            AccessControlEntry(BOB, HOST, Op.IDEMPOTENT_WRITE, AclPermission.DENY),
        }
    )
    data = encode_entries(entries)
    assert b'"operation":"DescribeConfigs"' in data and b'"permissionType":"Deny"' in data
    assert decode_entries(data) == entries


def test_filters_match_as_kafka_filters() -> None:
    """MATCH finds the literal, the "*" and the prefixes that apply to a name; ANY the
    patterns with exactly that name; LITERAL/PREFIXED only their own type."""
    lit = ResourcePattern(TOPIC, "payments", PatternType.LITERAL)
    star = ResourcePattern(TOPIC, WILDCARD, PatternType.LITERAL)
    pre = ResourcePattern(TOPIC, "pay", PatternType.PREFIXED)
    pre_same = ResourcePattern(TOPIC, "payments", PatternType.PREFIXED)
    match = AclFilter(TOPIC, "payments", PatternType.MATCH)
    assert all(match.matches_pattern(p) for p in (lit, star, pre, pre_same))
    anyf = AclFilter(TOPIC, "payments", PatternType.ANY)
    assert [anyf.matches_pattern(p) for p in (lit, star, pre, pre_same)] == [
        True,
        False,
        False,
        True,
    ]
    prefixed = AclFilter(ResourceType.ANY, None, PatternType.PREFIXED)
    assert [prefixed.matches_pattern(p) for p in (lit, star, pre)] == [False, False, True]


# -- the indexed matcher against a brute-force one -------------------------------------

NAMES = ["a", "ab", "abc", "b", "ba", "*"]
PRINCIPALS = ["User:a", "User:b", "User:*"]
HOSTS = ["1.1.1.1", "2.2.2.2", "*"]
OPS = [Op.READ, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.ALL, Op.DELETE]


def _brute(
    bindings: list[AclBinding],
    allow_if_none: bool,
    principal: str,
    host: str,
    op: AclOperation,
    name: str,
) -> bool:
    def applies(b: AclBinding) -> bool:
        p = b.pattern
        if p.pattern_type == PatternType.LITERAL:
            return p.name in (name, "*")
        return name.startswith(p.name)

    relevant = [b.entry for b in bindings if b.pattern.resource_type == TOPIC and applies(b)]
    if not relevant:
        return allow_if_none
    mine = [e for e in relevant if e.principal in (principal, "User:*") and e.host in (host, "*")]
    if any(
        e.permission == AclPermission.DENY and (e.operation == op or e.operation == Op.ALL)
        for e in mine
    ):
        return False
    implied = {op, Op.ALL}
    if op == Op.DESCRIBE:
        implied |= {Op.READ, Op.WRITE, Op.DELETE, Op.ALTER}
    if op == Op.DESCRIBE_CONFIGS:
        implied |= {Op.ALTER_CONFIGS}
    return any(e.permission == AclPermission.ALLOW and e.operation in implied for e in mine)


@pytest.mark.parametrize("seed", range(40))
def test_indexed_matches_brute_force(seed: int) -> None:
    """Random bindings (literal, prefixed, wildcards, both permissions), then random
    removals: every (principal, host, operation, name) gets the brute-force answer."""
    rng = random.Random(seed)
    allow_if_none = rng.random() < 0.5
    a = Authorizer(allow_if_no_acl=allow_if_none)
    bindings: list[AclBinding] = []
    for _ in range(rng.randint(0, 12)):
        name = rng.choice(NAMES)
        kind = (
            rng.choice([PatternType.LITERAL, PatternType.PREFIXED])
            if name != "*"
            else PatternType.LITERAL
        )
        b = AclBinding(
            ResourcePattern(rng.choice([TOPIC, TOPIC, ResourceType.GROUP]), name, kind),
            AccessControlEntry(
                rng.choice(PRINCIPALS),
                rng.choice(HOSTS),
                rng.choice(OPS),
                rng.choice([AclPermission.ALLOW, AclPermission.DENY]),
            ),
        )
        bindings.append(b)
        a.set_resource(b.pattern, a.entries(b.pattern) | {b.entry})
    for round_ in range(2):
        for principal in ("User:a", "User:b"):
            for host in ("1.1.1.1", "2.2.2.2"):
                for op in OPS:
                    for name in ["a", "ab", "abc", "abcd", "b", "bab", "c", "*"]:
                        want = _brute(bindings, allow_if_none, principal, host, op, name)
                        got = a.authorize(principal, host, op, TOPIC, name)
                        assert got == want, (round_, principal, host, op, name, bindings)
        # Remove a random half and check again (the cache must not answer stale).
        rng.shuffle(bindings)
        gone, bindings = bindings[: len(bindings) // 2], bindings[len(bindings) // 2 :]
        for b in gone:
            if b not in bindings:
                a.set_resource(b.pattern, a.entries(b.pattern) - {b.entry})
