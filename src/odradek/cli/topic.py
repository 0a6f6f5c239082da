"""`odradek topic list | create | describe | alter | delete`."""

from __future__ import annotations

import argparse
import socket
import struct
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.cli.ck import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
    TopicMetadata,
    spec_earliest,
    spec_latest,
)
from odradek.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Connection,
    add_common_options,
    parse_pairs,
    positive_int,
    wait,
)
from odradek.cli.output import emit, message, print_json, print_table


def configure(topic: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek topic`."""
    actions = topic.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list topics")
    listing.set_defaults(handler=list_topics)

    create = actions.add_parser("create", help="create a topic")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--partitions", type=positive_int, default=-1, metavar="N")
    create.add_argument("--replication-factor", type=positive_int, default=-1, metavar="N")
    _config_option(create)
    create.set_defaults(handler=create_topic)

    describe = actions.add_parser("describe", help="partitions, offsets and overridden configs")
    describe.add_argument("name", metavar="NAME")
    describe.set_defaults(handler=describe_topic)

    alter = actions.add_parser("alter", help="add partitions or change configs")
    alter.add_argument("name", metavar="NAME")
    alter.add_argument("--partitions", type=positive_int, metavar="N", help="new total count")
    _config_option(alter)
    alter.add_argument(
        "--delete-config", action="append", default=[], metavar="KEY", help="back to default"
    )
    alter.set_defaults(handler=alter_topic)

    delete = actions.add_parser("delete", help="delete a topic")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=delete_topic)

    for parser in (listing, create, describe, alter, delete):
        add_common_options(parser)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE", help="topic config"
    )


def list_topics(args: argparse.Namespace) -> int:
    """Every topic with its partition count."""
    conn = Connection.from_args(args)
    metadata = conn.metadata(conn.admin())
    topics = sorted(metadata.topics.values(), key=lambda t: t.topic or "")
    document = [{"name": t.topic, "partitions": len(t.partitions)} for t in topics]
    rows = [(t.topic, len(t.partitions)) for t in topics]
    emit(args.output, document, ("topic", "partitions"), rows)
    return EXIT_OK


def create_topic(args: argparse.Namespace) -> int:
    """CreateTopics with broker defaults for what is not given."""
    conn = Connection.from_args(args)
    configs = parse_pairs(args.config, "--config")
    admin = conn.admin()
    conn.metadata(admin)
    new = NewTopic(
        args.name,
        num_partitions=args.partitions,
        replication_factor=args.replication_factor,
        config=configs,
    )
    futures = admin.create_topics([new], request_timeout=conn.timeout)
    wait(futures[args.name], conn, args.name)
    _done(args, {"created": args.name}, f"created topic {args.name}")
    return EXIT_OK


def describe_topic(args: argparse.Namespace) -> int:
    """Partitions (leader, leader epoch, replicas, ISR, offline replicas, start/end
    offsets) and non-default configs."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    live = set(conn.metadata(admin).brokers)
    meta = conn.topic(admin, args.name)
    parts = sorted(meta.partitions)
    starts, ends = _start_end_offsets(admin, conn, args.name, parts)
    epochs = leader_epochs(conn, args.name)
    configs = _overridden_configs(admin, conn, args.name)
    partitions = [_partition_doc(meta, p, live, epochs.get(p), starts[p], ends[p]) for p in parts]
    if args.output == "json":
        print_json({"name": args.name, "partitions": partitions, "configs": configs})
        return EXIT_OK
    columns = (
        "partition",
        "leader",
        "epoch",
        "replicas",
        "isr",
        "offline",
        "start offset",
        "end offset",
    )
    rows = [
        (
            d["partition"],
            d["leader"] if d["leader"] >= 0 else "none",
            d["leader_epoch"],
            _ids(d["replicas"]),
            _ids(d["isr"]),
            _ids(d["offline"]) or None,
            d["start"],
            d["end"],
        )
        for d in partitions
    ]
    print_table(columns, rows, title=f"topic {args.name}")
    if configs:
        config_rows = [(k, v["value"], v["source"]) for k, v in sorted(configs.items())]
        print_table(("config", "value", "source"), config_rows, title="configs")
    else:
        message("no config overrides")
    return EXIT_OK


def _start_end_offsets(
    admin: AdminClient, conn: Connection, topic: str, parts: list[int]
) -> tuple[dict[int, int | None], dict[int, int | None]]:
    """Log start and end offset of each partition; None where the leader did not answer
    (in a cluster, a leader that just died until the controller elects another), so the
    other partitions are still shown. Both look-ups run at once: one timeout at most."""
    if not parts:
        return {}, {}
    pending = [
        admin.list_offsets(
            {TopicPartition(topic, p): spec() for p in parts}, request_timeout=conn.timeout
        )
        for spec in (spec_earliest, spec_latest)
    ]
    found: list[dict[int, int | None]] = [{}, {}]
    for futures, offsets in zip(pending, found, strict=True):
        for tp, future in futures.items():
            try:
                offset = int(wait(future, conn, topic).offset)
            except CliError:
                offset = -1
            # librdkafka may also answer with its "invalid offset" (-1001)
            offsets[tp.partition] = offset if offset >= 0 else None
    missing = sorted(p for p in parts if found[0][p] is None or found[1][p] is None)
    if missing:
        message(f"no offsets for partitions {_ids(missing)}: their leader did not answer")
    return found[0], found[1]


def _ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def _partition_doc(
    meta: TopicMetadata,
    partition: int,
    live: set[int],
    epoch: tuple[int, int] | None,
    start: int | None,
    end: int | None,
) -> dict[str, Any]:
    """One partition; offline = replicas that are not live brokers. The epoch (from
    `leader_epochs`, as (leader, epoch)) is shown only when its broker saw the same
    leader."""
    p = meta.partitions[partition]
    return {
        "partition": partition,
        "leader": p.leader,
        "leader_epoch": epoch[1] if epoch is not None and epoch[0] == p.leader else None,
        "replicas": list(p.replicas),
        "isr": list(p.isrs),
        "offline": [r for r in p.replicas if r not in live],
        "start": start,
        "end": end,
    }


# -- leader epochs: librdkafka does not expose them, so one Metadata v7 request asks --------

_SIZE = struct.Struct(">i")
METADATA_KEY = 3
METADATA_VERSION = 7  # the first with leader epochs (Kafka 2.1)
MAX_METADATA_BYTES = 64 << 20


def leader_epochs(conn: Connection, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (leader, leader epoch) from the first bootstrap broker that answers
    a Metadata v7 request over plain TCP; empty when none does (an older broker, TLS or
    SASL listeners): the epoch is extra information, never a reason to fail."""
    for host, port in _bootstrap_addresses(conn.bootstrap):
        try:
            return _ask_epochs(host, port, topic, min(conn.timeout, 2.0))
        except (OSError, ValueError, EOFError):
            continue
    return {}


def _bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    addresses = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition("://")[2].rpartition(":")
        if host and port.isdigit():
            addresses.append((host.strip("[]"), int(port)))
    return addresses


def _ask_epochs(host: str, port: int, topic: str, timeout: float) -> dict[int, tuple[int, int]]:
    from kio.schema.metadata.v7.request import MetadataRequest, MetadataRequestTopic
    from kio.schema.types import TopicName

    from odradek.protocol.codec import ResponseDecodeError, decode_response, encode_request

    request = MetadataRequest(
        topics=(MetadataRequestTopic(name=TopicName(topic)),), allow_auto_topic_creation=False
    )
    frame = encode_request(request, METADATA_VERSION, 1, "odradek-cli")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame)
        (size,) = _SIZE.unpack(_read_exactly(sock, 4))
        if not 0 < size <= MAX_METADATA_BYTES:
            raise ValueError(f"bad response size {size}")
        try:
            _, response = decode_response(_read_exactly(sock, size), METADATA_KEY, METADATA_VERSION)
        except ResponseDecodeError as exc:
            raise ValueError(str(exc)) from None
    return {
        int(p.partition_index): (int(p.leader_id), int(p.leader_epoch))
        for t in response.topics
        if t.name == topic
        for p in t.partitions
    }


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        chunks += chunk
    return bytes(chunks)


def _overridden_configs(admin: AdminClient, conn: Connection, topic: str) -> dict[str, Any]:
    """The topic's config entries whose source is not DEFAULT_CONFIG."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    futures = admin.describe_configs([resource], request_timeout=conn.timeout)
    entries: dict[str, ConfigEntry] = wait(futures[resource], conn, topic)
    default = ConfigSource.DEFAULT_CONFIG.value
    out: dict[str, Any] = {}
    for name, entry in entries.items():
        source = entry.source.value if isinstance(entry.source, ConfigSource) else entry.source
        if source == default:
            continue
        out[name] = {"value": entry.value, "source": ConfigSource(source).name}
    return out


def alter_topic(args: argparse.Namespace) -> int:
    """CreatePartitions and/or IncrementalAlterConfigs."""
    conn = Connection.from_args(args)
    configs = parse_pairs(args.config, "--config")
    if args.partitions is None and not configs and not args.delete_config:
        raise CliError("nothing to alter: give --partitions, --config or --delete-config", 2)
    admin = conn.admin()
    meta = conn.topic(admin, args.name)
    changes: list[str] = []
    if args.partitions is not None and args.partitions != len(meta.partitions):
        if args.partitions < len(meta.partitions):
            raise CliError(
                f"topic {args.name} has {len(meta.partitions)} partitions; "
                "partitions can only be added",
                EXIT_USAGE,
            )
        futures = admin.create_partitions(
            [NewPartitions(args.name, args.partitions)], request_timeout=conn.timeout
        )
        wait(futures[args.name], conn, args.name)
        changes.append(f"partitions={args.partitions}")
    if configs or args.delete_config:
        _alter_configs(admin, conn, args.name, configs, args.delete_config)
        changes.extend(f"{k}={v}" for k, v in configs.items())
        changes.extend(f"-{k}" for k in args.delete_config)
    summary = ", ".join(changes) or "no change"
    _done(args, {"altered": args.name, "changes": changes}, f"altered topic {args.name}: {summary}")
    return EXIT_OK


def _alter_configs(
    admin: AdminClient, conn: Connection, topic: str, sets: dict[str, str], deletes: list[str]
) -> None:
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sets.items()
    ]
    entries += [
        ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deletes
    ]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    futures = admin.incremental_alter_configs([resource], request_timeout=conn.timeout)
    wait(futures[resource], conn, topic)


def delete_topic(args: argparse.Namespace) -> int:
    """DeleteTopics."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    conn.metadata(admin)
    futures = admin.delete_topics([args.name], request_timeout=conn.timeout)
    wait(futures[args.name], conn, args.name)
    _done(args, {"deleted": args.name}, f"deleted topic {args.name}")
    return EXIT_OK


def _done(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.output == "json":
        print_json(document)
    else:
        print(text, flush=True)
