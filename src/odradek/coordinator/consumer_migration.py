"""Online migration of a group with members between the classic and the consumer
protocols (KIP-848, `group.consumer.migration.policy`).

Upgrade: a ConsumerGroupHeartbeat joining a classic group that has members converts it.
Every classic member becomes a consumer group member with the classic group's generation
as its epoch, its subscription, its current assignment (also its target) and its classic
metadata (session timeout, supported protocols); the classic group's record gets its
tombstone and the consumer group's records are written with the joining member's, in one
batch, so a restart replays the converted group.

Downgrade: when a member leaves or is fenced and only classic members stay, the consumer
group's records get their tombstones and a classic GroupMetadata record is written with
the members, the group epoch as generation and each member's target assignment in the
classic format; the classic group then rebalances, so its members rejoin it.

Both are pure computations of records: the coordinator writes them and `replay` applies
them, as for any other change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator import consumer_records as cr
from odradek.coordinator.consumer_group import (
    NO_PARTITIONS,
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    Partitions,
    to_assignment,
)
from odradek.coordinator.consumer_protocol import (
    assignment_user_data,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    version_of,
)
from odradek.coordinator.consumer_records import ClassicMemberMetadata, ConsumerGroupKey
from odradek.coordinator.group import Group, GroupState, Member
from odradek.coordinator.membership import JoinResult, SyncResult, complete_future
from odradek.coordinator.records import GroupKey, GroupValue
from odradek.metadata.store import TopicInfo

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator, Record

log = logging.getLogger("odradek.coordinator")

CONSUMER_PROTOCOL_TYPE = "consumer"
# policy -> (upgrade allowed, downgrade allowed)
_POLICIES = {
    "bidirectional": (True, True),
    "upgrade": (True, False),
    "downgrade": (False, True),
    "disabled": (False, False),
}
_MEMBER_KINDS = (cr.CURRENT_ASSIGNMENT, cr.TARGET_MEMBER, cr.MEMBER_METADATA)
_GROUP_KINDS = (cr.TARGET_METADATA, cr.PARTITION_METADATA, cr.METADATA)


class UpgradeRefused(Exception):
    """The classic group cannot become a consumer group; the message is Kafka's."""


def upgrade_enabled(c: GroupCoordinator) -> bool:
    return _POLICIES.get(c.config.group_consumer_migration_policy.lower(), (False, False))[0]


def downgrade_enabled(c: GroupCoordinator) -> bool:
    return _POLICIES.get(c.config.group_consumer_migration_policy.lower(), (False, False))[1]


def group_tombstones(group_id: str) -> list[Record]:
    """Deletes a consumer group's group-level records (its members' must go first)."""
    return [(ConsumerGroupKey(kind, group_id), None) for kind in _GROUP_KINDS]


def _member_tombstones(group_id: str, member_id: str) -> list[Record]:
    return [(ConsumerGroupKey(kind, group_id, member_id), None) for kind in _MEMBER_KINDS]


# -- upgrade ---------------------------------------------------------------------------
def _refusal(c: GroupCoordinator, classic: Group) -> str | None:
    """Why the classic group cannot be upgraded (the end of Kafka's message), if so."""
    if not upgrade_enabled(c):
        return "online upgrade is disabled"
    if classic.protocol_type != CONSUMER_PROTOCOL_TYPE:
        return "the group does not use the consumer embedded protocol"
    if len(classic.members) > c.config.group_consumer_max_size:
        return "the group size exceeds the consumer group maximum size"
    if classic.protocol is None:
        # Its first rebalance has not chosen a protocol: no member's subscription is
        # known yet (Kafka has no answer for this state).
        return "the group has not completed its first rebalance"
    return None


def _refused(group_id: str, why: str) -> UpgradeRefused:
    log.info("group %s: not upgraded: %s", group_id, why)
    return UpgradeRefused(
        f"Cannot upgrade classic group {group_id} to consumer group because {why}."
    )


def _to_ids(by_name: Mapping[str, tuple[int, ...]], topics: Mapping[str, TopicInfo]) -> Partitions:
    """Partitions by topic name as (topic id, partition), leaving out unknown topics."""
    return frozenset(
        (topics[t].topic_id, p) for t, ps in by_name.items() if t in topics for p in ps
    )


def _converted(m: Member, classic: Group, topics: Mapping[str, TopicInfo]) -> ConsumerMember:
    """The consumer group member a classic member becomes (Stable at the generation)."""
    subscription = decode_subscription(m.metadata_for(classic.protocol))
    if subscription is None:
        raise _refused(classic.group_id, "the embedded consumer protocol is malformed")
    assigned = NO_PARTITIONS
    if m.assignment:
        owned = decode_assignment(m.assignment)
        if owned is None:
            raise _refused(classic.group_id, "the embedded consumer protocol is malformed")
        if assignment_user_data(m.assignment):
            raise _refused(
                classic.group_id,
                "an unsupported custom assignor is in use. Please refer to the documentation "
                "or switch to a default assignor before re-attempting the upgrade",
            )
        assigned = _to_ids(owned, topics)
    generation = classic.generation
    return ConsumerMember(
        m.member_id,
        m.group_instance_id,
        subscription.rack_id,
        m.client_id,
        m.client_host,
        subscription.topics,
        None,
        m.rebalance_timeout_ms,
        None,
        generation,
        generation,
        MemberState.STABLE,
        assigned,
        NO_PARTITIONS,
        classic=ClassicMemberMetadata(m.session_timeout_ms, m.protocols),
    )


def upgrade(
    c: GroupCoordinator, classic: Group, topics: Mapping[str, TopicInfo]
) -> tuple[ConsumerGroup, list[Record]]:
    """The consumer group a classic group with members converts to (not registered: the
    records do that when written) and the records of the conversion. Raises
    UpgradeRefused when the policy or the group does not allow it; otherwise the
    classic members' parked JoinGroup/SyncGroup answer REBALANCE_IN_PROGRESS, so they
    rejoin, now inside the consumer group."""
    # Imported here: consumer_membership imports this module.
    from odradek.coordinator.consumer_membership import current_value, metadata_value

    why = _refusal(c, classic)
    if why is not None:
        raise _refused(classic.group_id, why)
    gid = classic.group_id
    epoch = classic.generation
    group = ConsumerGroup(gid, group_epoch=epoch, assignment_epoch=epoch)
    for m in classic.members.values():
        member = _converted(m, classic, topics)
        group.members[member.member_id] = member
        group.target[member.member_id] = member.assigned
    for m in classic.members.values():
        complete_future(m.join_future, JoinResult(ErrorCode.rebalance_in_progress, m.member_id))
        complete_future(m.sync_future, SyncResult(ErrorCode.rebalance_in_progress))
    records: list[Record] = [(GroupKey(gid), None)]
    members = list(group.members.values())
    records += [(_key(cr.MEMBER_METADATA, gid, m), metadata_value(m)) for m in members]
    records.append((ConsumerGroupKey(cr.METADATA, gid), cr.GroupEpochValue(epoch)))
    records += [
        (_key(cr.TARGET_MEMBER, gid, m), cr.TargetMemberValue(to_assignment(m.assigned)))
        for m in members
    ]
    records.append((ConsumerGroupKey(cr.TARGET_METADATA, gid), cr.AssignmentEpochValue(epoch)))
    records += [(_key(cr.CURRENT_ASSIGNMENT, gid, m), current_value(m)) for m in members]
    log.info("group %s: converting the classic group to a consumer group", gid)
    return group, records


def _key(kind: int, group_id: str, member: ConsumerMember) -> ConsumerGroupKey:
    return ConsumerGroupKey(kind, group_id, member.member_id)


# -- downgrade -------------------------------------------------------------------------
def _may_downgrade(c: GroupCoordinator, group: ConsumerGroup, leaving: set[str]) -> bool:
    if not group.all_classic_except(leaving):
        return False
    staying = [m for m in group.members.values() if m.member_id not in leaving]
    common = set.intersection(*({n for n, _ in m.classic.protocols} for m in staying if m.classic))
    if not common:
        return False  # no protocol they all support (JoinGroup keeps one, but be safe)
    if not downgrade_enabled(c):
        log.info("group %s: not downgraded: online downgrade is disabled", group.group_id)
        return False
    return len(staying) <= c.config.group_max_size


def _classic_member(m: ConsumerMember) -> Member:
    assert m.classic is not None
    return Member(
        m.member_id,
        m.instance_id,
        m.client_id,
        m.client_host,
        m.classic.session_timeout_ms,
        m.rebalance_timeout_ms,
        CONSUMER_PROTOCOL_TYPE,
        m.classic.protocols,
    )


def classic_assignment(group: ConsumerGroup, partitions: Partitions, metadata: bytes) -> bytes:
    """`partitions` in the classic embedded format, in the version of `metadata` (the
    member's subscription), topic names as of the group's subscribed topics."""
    names = {t.topic_id: t.name for t in group.topics.values()}
    by_name: dict[str, list[int]] = {}
    for topic_id, p in partitions:
        if topic_id in names:
            by_name.setdefault(names[topic_id], []).append(p)
    return encode_assignment(by_name, version_of(metadata))


def _downgrade_records(
    c: GroupCoordinator, group: ConsumerGroup, leaving: set[str]
) -> list[Record]:
    gid = group.group_id
    records: list[Record] = []
    for member_id in group.members:
        records += _member_tombstones(gid, member_id)
    records += group_tombstones(gid)
    shell = Group(gid, protocol_type=CONSUMER_PROTOCOL_TYPE)
    for m in group.members.values():
        if m.member_id not in leaving:
            shell.members[m.member_id] = _classic_member(m)
    protocol = shell.select_protocol()
    for member in shell.members.values():
        target = group.target.get(member.member_id, NO_PARTITIONS)
        member.assignment = classic_assignment(group, target, member.metadata_for(protocol))
    value = GroupValue(
        CONSUMER_PROTOCOL_TYPE,
        group.group_epoch,
        protocol,
        next(iter(shell.members)),
        c.clock.time_ms(),
        tuple(m.to_value(protocol) for m in shell.members.values()),
    )
    records.append((GroupKey(gid), value))
    log.info("group %s: converting the consumer group to a classic group", gid)
    return records


def removal_records(
    c: GroupCoordinator, group: ConsumerGroup, member_id: str
) -> tuple[list[Record], bool]:
    """The records of a member leaving or fenced, and whether they downgrade the group
    (then `downgraded` must follow once they are written)."""
    from odradek.coordinator import consumer_membership

    if _may_downgrade(c, group, {member_id}):
        return _downgrade_records(c, group, {member_id}), True
    return consumer_membership.removal_records(c, group, member_id), False


def downgraded(c: GroupCoordinator, group_id: str) -> None:
    """After a downgrade's records were applied: the classic group rebalances (as Kafka
    does when a leaving member caused the downgrade), so its members rejoin it."""
    from odradek.coordinator.membership import prepare_rebalance

    classic = c.groups.get(group_id)
    if group_id in c.consumer_groups or classic is None or not classic.members:
        return  # the write failed: nothing was applied
    if classic.is_(GroupState.STABLE):
        prepare_rebalance(c, classic)


def write_removal(c: GroupCoordinator, group: ConsumerGroup, member_id: str) -> ErrorCode:
    """Removes a member at once (LeaveGroup of a classic member, a fenced member),
    downgrading the group when only classic members stay."""
    records, downgrade = removal_records(c, group, member_id)
    error = c.try_write(group.group_id, records)
    if downgrade:
        downgraded(c, group.group_id)
    return error


def downgrade_if_all_classic(c: GroupCoordinator, group_id: str) -> bool:
    """After a classic member joined (a static member's restart may have replaced the
    last consumer-protocol member): converts the group back when only classic members
    are left and the policy allows it. Returns whether it did."""
    group = c.consumer_groups.get(group_id)
    if group is None or not _may_downgrade(c, group, set()):
        return False
    if c.try_write(group_id, _downgrade_records(c, group, set())) != ErrorCode.none:
        return False
    downgraded(c, group_id)
    return True
