"""The console's read-only HTML pages: overview (/), topics (/topics), one topic
(/topics/{name}), its records (/topics/{name}/messages), brokers (/brokers), and the
consumer groups this broker coordinates (/groups, /groups/{id}).

Pages are rendered with Jinja2 and autoescaping on for every template, so anything a
user or a client wrote (a topic name in the URL, a search term, a config value) is shown
as text. Lists are paginated (`PAGE_SIZE` rows) so that 1,000 topics or a topic with
10,000 partitions render in a few ms. Query parameters are checked: a bad one is a 400
page, an unknown topic a 404 page; neither touches the broker's state. The pages work
without JavaScript.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from kio.schema.errors import ErrorCode

import odradek
from odradek.console import (
    access,
    browser,
    group_writes,
    groups,
    lag,
    log_dirs,
    model,
    rates,
    writes,
)
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation
from odradek.server.broker import Broker

# Rows per page of the topics list and of a topic's partitions.
PAGE_SIZE = 100
# Longest search term accepted (aiohttp already refuses request lines over 8 KiB).
MAX_SEARCH = 249
HTML = "text/html"
# htmx, vendored (static/, 0BSD licence): refreshes the live parts of the pages.
HTMX = "htmx-2.0.11.min.js"
# Records shown by the message browser by default and at most.
DEFAULT_RECORDS = 50
MAX_RECORDS = 500

# Topic list columns that can be sorted, and the key each sorts by.
TOPIC_SORTS: dict[str, Callable[[model.TopicRow], Any]] = {
    "name": lambda row: row.name,
    "partitions": lambda row: row.partitions,
    "replication": lambda row: row.replication,
    "size": lambda row: row.size,
    "records": lambda row: row.records,
    "messages_in": lambda row: row.messages_in,
    # Not yet measured sorts below zero.
    "records_per_s": lambda row: -1.0 if row.records_rate is None else row.records_rate,
    "bytes_per_s": lambda row: -1.0 if row.bytes_rate is None else row.bytes_rate,
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("odradek.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _bytes(count: int | None) -> str:
    """1234567 -> 1.2 MiB."""
    if count is None:
        return ""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


_templates.filters["bytes"] = _bytes
# A name as one path segment: a group id may hold "/", "?" or "#".
_templates.filters["segment"] = lambda name: quote(name, safe="")
_templates.globals["rate_window_s"] = int(rates.WINDOW_S)


# The forms' CSRF token for this request (empty when the console is read-only).
CSRF_TOKEN = web.RequestKey("csrf", str)
# Every live broker's log dirs, collected before the brokers page renders.
LOG_DIRS = web.RequestKey("log_dirs", dict[int, list[log_dirs.LogDir] | None])


class BadQuery(ValueError):
    """A query parameter the page does not accept; answered with 400."""


def routes(
    broker: Broker, history: lag.LagHistory, dirs: log_dirs.LogDirs
) -> Iterable[web.RouteDef]:
    """GET /, /topics, /topics/{name}, /brokers, /groups, /groups/{id}, their live
    fragments, and the forms' POSTs (writes.py, group_writes.py); `dirs` asks the other
    brokers for their log dirs."""
    started = time.monotonic()
    csrf = writes.Csrf()
    meter = rates.RateMeter(broker)
    topic_meter = rates.TopicRateMeter()
    script = (resources.files("odradek.console") / "static" / HTMX).read_bytes()

    async def htmx(_request: web.Request) -> web.Response:
        return web.Response(
            body=script,
            content_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    def page(
        render: Callable[[web.Request], tuple[int, str]],
        before: Callable[[web.Request], Awaitable[None]] | None = None,
    ) -> Any:
        return _page_handler(broker, csrf, render, before)

    async def messages(request: web.Request) -> web.Response:
        # Reads the log in chunks, yielding to the loop between them.
        return await _answer(broker, lambda: messages_page(broker, request))

    def overview(request: web.Request) -> tuple[int, str]:
        who = access.of(broker, request)
        return 200, _render(
            "overview.html",
            info=model.overview(broker, who.topics(), who.groups()),
            rates=meter.rates(),
            version=odradek.__version__,
            uptime=_duration(time.monotonic() - started),
        )

    async def collect_dirs(request: web.Request) -> None:
        # DescribeLogDirs needs DESCRIBE on the cluster: without it, nobody is asked.
        if access.of(broker, request).may_cluster(AclOperation.DESCRIBE):
            request[LOG_DIRS] = await dirs.collect(broker)

    def brokers(request: web.Request) -> tuple[int, str]:
        rows = model.brokers(broker)
        found = request.get(LOG_DIRS)
        return 200, _render(
            "brokers.html",
            brokers=rows,
            controller=model.controller_id(broker),
            # Live brokers only: a broker that is not alive has no dirs to ask about.
            dirs=None
            if found is None
            else [(row.node_id, found.get(row.node_id)) for row in rows if row.alive],
            refused=ErrorCode.cluster_authorization_failed.name.upper(),
            timeout_s=log_dirs.TIMEOUT_S,
        )

    async def fresh_ends(request: web.Request) -> None:
        # A group's page shows the lag of the partitions other brokers lead as of now.
        group_id = request.match_info["group"]
        access.of(broker, request).group(AclOperation.DESCRIBE, group_id)
        keys = groups.committed_keys(broker, group_id)
        await history.offsets.high_watermarks(keys)

    def rates_fragment(_request: web.Request) -> tuple[int, str]:
        return 200, _render("rates.html", rates=meter.rates())

    return [
        *writes.routes(broker, csrf, _error),
        *group_writes.routes(broker, csrf, _error, _render),
        web.get(f"/static/{HTMX}", htmx),
        web.get("/fragments/rates", page(rates_fragment)),
        web.get(
            "/topics/{name}/fragments/partitions",
            page(lambda request: topic_page(broker, request, "partitions.html")),
        ),
        web.get(
            "/groups/{group}/fragments/offsets",
            page(lambda request: group_page(broker, request, "offsets.html", history), fresh_ends),
        ),
        web.get(
            "/groups/{group}/fragments/lag",
            page(lambda request: group_page(broker, request, "lag_chart.html", history)),
        ),
        web.get(
            "/fragments/topics",
            page(lambda request: topics_page(broker, request, topic_meter, "topics_table.html")),
        ),
        web.get(
            "/fragments/groups",
            page(lambda request: groups_page(broker, request, "groups_table.html", history)),
        ),
        web.get("/", page(overview)),
        web.get("/topics", page(lambda request: topics_page(broker, request, topic_meter))),
        web.get("/topics/{name}", page(lambda request: topic_page(broker, request))),
        web.get("/topics/{name}/messages", messages),
        web.get("/brokers", page(brokers, collect_dirs)),
        web.get("/groups", page(lambda request: groups_page(broker, request, history=history))),
        web.get(
            "/groups/{group}",
            page(lambda request: group_page(broker, request, history=history), fresh_ends),
        ),
    ]


async def _answer(
    broker: Broker, produce: Callable[[], Awaitable[tuple[int, str]]]
) -> web.Response:
    """A page's answer: 503 before the broker started, 400 for a bad query, 403 for what
    the viewer may not see, else the page."""
    if not broker.started:
        return _error(503, "The broker is not started.")
    try:
        status, body = await produce()
    except BadQuery as error:
        return _error(400, str(error))
    except access.Refused as refused:
        return _error(403, refused.text)
    return web.Response(status=status, text=body, content_type=HTML)


def _page_handler(
    broker: Broker,
    csrf: writes.Csrf,
    render: Callable[[web.Request], tuple[int, str]],
    before: Callable[[web.Request], Awaitable[None]] | None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of a page rendered by `render` (after `before`, when given), with the
    forms' CSRF token set on the request and its cookie on the answer."""

    async def handle(request: web.Request) -> web.Response:
        nonce, new = csrf.nonce(request)
        # The forms' token; empty when the console is read-only (no forms shown).
        request[CSRF_TOKEN] = "" if broker.config.console_read_only else csrf.token(nonce)

        rendered = False

        async def produce() -> tuple[int, str]:
            nonlocal rendered
            if before is not None:
                await before(request)
            answer = render(request)
            rendered = True
            return answer

        response = await _answer(broker, produce)
        if new and rendered:  # error pages set no cookie
            writes.set_cookie(response, nonce)
        return response

    return handle


@web.middleware
async def error_pages(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own 4xx answers (unknown path, wrong method) as an HTML page."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(error.status, error.reason)
    return response


def topics_page(
    broker: Broker,
    request: web.Request,
    meter: rates.TopicRateMeter,
    template: str = "topics.html",
) -> tuple[int, str]:
    """The topics whose name contains `q`, sorted by `sort` (`-` first: descending)
    (`template` topics_table.html: the table alone, which the page refreshes), with
    their rates since `meter`'s oldest sample."""
    search = request.query.get("q", "")
    if len(search) > MAX_SEARCH:
        raise BadQuery(f"The search term is longer than {MAX_SEARCH} characters.")
    sort = request.query.get("sort", "name")
    key = TOPIC_SORTS.get(sort.removeprefix("-"))
    if key is None:
        raise BadQuery(f"Unknown sort column {sort!r}.")
    every = model.topic_rows(broker)
    # Every topic is sampled, whatever the search: a narrower look keeps the window.
    meter.measure(every)
    # As Metadata: only the topics the principal may describe.
    visible = access.of(broker, request).topics()
    rows = [row for row in every if search in row.name and (visible is None or visible(row.name))]
    rows.sort(key=key, reverse=sort.startswith("-"))
    page, pages = _page(request, len(rows))
    shown = rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    return 200, _render(
        template,
        rows=shown,
        matched=len(rows),
        search=search,
        sort=sort,
        page=page,
        pages=pages,
        columns=list(TOPIC_SORTS),
        csrf=request[CSRF_TOKEN],
        query=lambda number: urlencode({"q": search, "sort": sort, "page": number}),
    )


def topic_page(
    broker: Broker, request: web.Request, template: str = "topic.html"
) -> tuple[int, str]:
    """One topic: a page of its partitions, and its configs (`template`
    partitions.html: the partitions table alone, which the page refreshes)."""
    name = request.match_info["name"]
    who = access.of(broker, request)
    who.topic(AclOperation.DESCRIBE, name)
    info = broker.services.metadata.topics.get(name)
    if info is None:
        return 404, _render("error.html", status=404, message=f"No topic named {name!r}.")
    page, pages = _page(request, info.partitions)
    produced = request.query.get("produced", "")
    shows_configs = who.may_topic(AclOperation.DESCRIBE_CONFIGS, name)
    return 200, _render(
        template,
        topic=info,
        # "partition:offset" of a record the form had another broker append.
        produced=produced if re.fullmatch(r"\d{1,10}:\d{1,19}", produced) else "",
        partitions=model.partition_rows(broker, info, page * PAGE_SIZE, PAGE_SIZE),
        # None: the principal may not DESCRIBE_CONFIGS the topic (the section is hidden).
        configs=model.config_rows(broker, info) if shows_configs else None,
        can=_topic_forms(who, name),
        csrf=request[CSRF_TOKEN],
        page=page,
        pages=pages,
        query=lambda number: urlencode({"page": number}),
    )


async def messages_page(broker: Broker, request: web.Request) -> tuple[int, str]:
    """Records of one partition hosted here: the newest N, from an offset or from a
    time, optionally only those whose key or value contains a text."""
    name = request.match_info["name"]
    # As Fetch: READ on the topic, checked before the topic is looked up.
    access.of(broker, request).topic(AclOperation.READ, name)
    info = broker.services.metadata.topics.get(name)
    if info is None:
        return 404, _render("error.html", status=404, message=f"No topic named {name!r}.")
    form = _choice(request, "format", browser.FORMATS)
    start_at = _choice(request, "from", ("newest", "offset", "time"))
    index = _number(request, "partition", 0, info.partitions - 1, 0)
    limit = _number(request, "limit", 1, MAX_RECORDS, DEFAULT_RECORDS)
    needle = request.query.get("filter", "")
    if len(needle) > MAX_SEARCH:
        raise BadQuery(f"The filter is longer than {MAX_SEARCH} characters.")
    partition = broker.services.replicas.get(name, index)
    if partition is None:
        message = f"Partition {index} of {name!r} is not hosted on this broker."
        return 404, _render("error.html", status=404, message=message)
    end = partition.high_watermark
    wanted = needle.encode()
    if start_at == "newest":
        found = await browser.newest(partition, limit, wanted, form)
    else:
        first = _start_offset(partition, start_at, request)
        found = await browser.scan(partition, first, end, limit, wanted, form)
    values = {
        "format": form,
        "from": start_at,
        "partition": index,
        "limit": limit,
        "filter": needle,
        "time": request.query.get("time", ""),
    }
    return 200, _render(
        "messages.html",
        topic=info,
        found=found,
        values=values,
        formats=browser.FORMATS,
        start_offset=partition.log_start_offset,
        end_offset=end,
        next_query=urlencode({**values, "from": "offset", "offset": found.next_offset}),
    )


def groups_page(
    broker: Broker,
    request: web.Request,
    template: str = "groups.html",
    history: lag.LagHistory | None = None,
) -> tuple[int, str]:
    """The groups coordinated here whose id contains `q`, a page at a time
    (`template` groups_table.html: the table alone, which the page refreshes); lags of
    partitions led elsewhere as `history` last asked them."""
    search = request.query.get("q", "")
    if len(search) > MAX_SEARCH:
        raise BadQuery(f"The search term is longer than {MAX_SEARCH} characters.")
    end_of = history.end_of if history is not None else None
    who = access.of(broker, request)
    shown = who.groups()
    rows = [
        row
        for row in groups.group_rows(broker, end_of, who.topics())
        if search in row.group_id and (shown is None or shown(row.group_id))
    ]
    page, pages = _page(request, len(rows))
    return 200, _render(
        template,
        rows=rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE],
        matched=len(rows),
        search=search,
        page=page,
        pages=pages,
        query=lambda number: urlencode({"q": search, "page": number}),
    )


def group_page(
    broker: Broker,
    request: web.Request,
    template: str = "group.html",
    history: lag.LagHistory | None = None,
) -> tuple[int, str]:
    """One group coordinated here: its members, a page of its committed offsets
    (`page=`) with their lag and the chart of its total lag (`template` offsets.html or
    lag_chart.html: that part alone, which the page refreshes)."""
    group_id = request.match_info["group"]
    who = access.of(broker, request)
    who.group(AclOperation.DESCRIBE, group_id)
    end_of = history.end_of if history else None
    detail = groups.group_detail(broker, group_id, end_of, who.topics())
    if detail is None:
        message = f"No group {group_id!r} is coordinated by this broker."
        return 404, _render("error.html", status=404, message=message)
    # The chart sums the lag of every topic: not shown when some are hidden.
    chart = history.chart(group_id) if history is not None and not detail.hidden else None
    # A group may have committed on 10,000 partitions: its offsets are shown a page at
    # a time (the total lag above still sums them all).
    page, pages = _page(request, len(detail.offsets))
    return 200, _render(
        template,
        group=detail,
        shown=detail.offsets[page * PAGE_SIZE : (page + 1) * PAGE_SIZE],
        topics=sorted({o.topic for o in detail.offsets}),
        page=page,
        pages=pages,
        query=lambda number: urlencode({"page": number}),
        csrf=request[CSRF_TOKEN],
        # The forms the principal may use: a reset needs READ, a delete DELETE on the group.
        can={
            "reset": who.may_group(AclOperation.READ, group_id),
            "delete": who.may_group(AclOperation.DELETE, group_id),
        },
        chart=chart,
        sample_s=lag.SAMPLE_S,
    )


def _topic_forms(who: access.Access, name: str) -> dict[str, bool]:
    """Which of the topic page's links and forms the principal may use."""
    return {
        "browse": who.may_topic(AclOperation.READ, name),
        "produce": who.may_topic(AclOperation.WRITE, name),
        "grow": who.may_topic(AclOperation.ALTER, name),
        "configs": who.may_topic(AclOperation.ALTER_CONFIGS, name),
        "delete": who.may_topic(AclOperation.DELETE, name),
    }


def _start_offset(partition: Partition, start_at: str, request: web.Request) -> int:
    """The first offset to read for `from=offset` or `from=time`."""
    end = partition.high_watermark
    if start_at == "offset":
        return _number(request, "offset", 0, 2**63 - 1, partition.log_start_offset)
    raw = request.query.get("time", "")
    try:
        moment = browser.parse_time(raw)
    except (ValueError, OverflowError):
        raise BadQuery(
            "time must be milliseconds since the epoch or ISO 8601 (2026-01-31T12:00:00)."
        ) from None
    found = partition.log.fetch_offset_by_timestamp(moment)
    return end if found is None else min(found[0], end)


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    value = request.query.get(name, choices[0])
    if value not in choices:
        raise BadQuery(f"{name} must be one of {', '.join(choices)}.")
    return value


def _number(request: web.Request, name: str, low: int, high: int, default: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise BadQuery(f"{name} must be a number from {low} to {high}.")
    return int(raw)


def _page(request: web.Request, rows: int) -> tuple[int, int]:
    """(the `page` query parameter, counted from 0; how many pages `rows` make)."""
    pages = max((rows + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    raw = request.query.get("page", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise BadQuery("page must be a number.")
    page = int(raw)
    if page >= pages:
        raise BadQuery(f"page {page} is past the last page ({pages - 1}).")
    return page, pages


def _render(template: str, **values: Any) -> str:
    return _templates.get_template(template).render(**values)


def _error(status: int, message: str) -> web.Response:
    body = _render("error.html", status=status, message=message)
    return web.Response(status=status, text=body, content_type=HTML)


def _duration(seconds: float) -> str:
    """3d 4h 5m 6s, largest unit first."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    return "".join(f"{n}{unit} " for n, unit in parts if n) + f"{secs}s"
