"""ConsumerGroupDescribe (key 69), versions 0-1: a KIP-848 group's epochs, assignor and
members with their current and target assignments. A group that is not a consumer group
(unknown, or classic) is GROUP_ID_NOT_FOUND, as in Kafka; v1 tells each member's protocol
(member type 1 consumer, 0 classic: a member of a group being migrated). With an
authorizer the group needs DESCRIBE (GROUP_AUTHORIZATION_FAILED); authorized operations
are the principal's on the group."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.consumer_group import ConsumerGroup, Partitions, to_assignment
from odradek.coordinator.consumer_membership import describe, group_assignor, topic_names
from odradek.handlers.acls import GROUP, allowed, authorized_operations
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 69
# v1 MemberType: 0 a member using the classic protocol (a migration), 1 the consumer one.
CLASSIC_MEMBER = 0
CONSUMER_MEMBER = 1


def _assignment(module: Any, partitions: Partitions, names: dict[uuid.UUID, str]) -> Any:
    return make(
        module.Assignment,
        topic_partitions=tuple(
            make(module.TopicPartitions, topic_id=t, topic_name=names.get(t, ""), partitions=ps)
            for t, ps in to_assignment(partitions)
        ),
    )


def _group(module: Any, group: ConsumerGroup, assignor: str, operations: int) -> Any:
    names = topic_names(group)
    members = tuple(
        make(
            module.Member,
            member_id=d.member.member_id,
            instance_id=d.member.instance_id,
            rack_id=d.member.rack_id,
            member_epoch=d.member.member_epoch,
            client_id=d.member.client_id,
            client_host=d.member.client_host,
            subscribed_topic_names=d.member.subscribed_topics,
            subscribed_topic_regex=d.member.subscribed_regex,
            assignment=_assignment(module, d.member.assigned, names),
            target_assignment=_assignment(module, d.target, names),
            member_type=CLASSIC_MEMBER if d.member.uses_classic else CONSUMER_MEMBER,
        )
        for d in describe(group)
    )
    return make(
        module.DescribedGroup,
        error_code=ErrorCode.none,
        group_id=group.group_id,
        group_state=group.state,
        group_epoch=group.group_epoch,
        assignment_epoch=group.assignment_epoch,
        assignor_name=assignor,
        members=members,
        authorized_operations=operations,
    )


def _failed(module: Any, group_id: str, error: ErrorCode, operations: int) -> Any:
    message = f"Group {group_id} not found." if error == ErrorCode.group_id_not_found else None
    return make(
        module.DescribedGroup,
        error_code=error,
        error_message=message,
        group_id=group_id,
        group_state="Dead" if error == ErrorCode.group_id_not_found else "",
        group_epoch=-1,
        assignment_epoch=-1,
        assignor_name="",
        members=(),
        authorized_operations=operations,
    )


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    described = []
    for raw_id in request.group_ids:
        group_id = str(raw_id)
        asked = request.include_authorized_operations
        operations = authorized_operations(ctx, asked, GROUP, group_id)
        if not allowed(ctx, AclOperation.DESCRIBE, GROUP, group_id):
            described.append(
                _failed(module, group_id, ErrorCode.group_authorization_failed, operations)
            )
            continue
        if groups is None:
            described.append(
                _failed(module, group_id, ErrorCode.coordinator_not_available, operations)
            )
            continue
        error, group = groups.describe_consumer_group(group_id)
        if group is None:
            described.append(_failed(module, group_id, error, operations))
        else:
            assignor = group_assignor(groups, group.members.values())
            described.append(_group(module, group, assignor, operations))
    return make(
        module.ConsumerGroupDescribeResponse,
        throttle_time=datetime.timedelta(0),
        groups=tuple(described),
    )
