"""The console's topic writes: create a topic, delete a topic, set or remove a topic
config, add partitions, produce a record (console/produce.py).

Each is a POST from a form of the pages, checked as the Kafka API checks the same
change (CreateTopics, DeleteTopics, IncrementalAlterConfigs, CreatePartitions, Produce:
the same functions do it)
and answered with a redirect to the changed page, or a 400 page with Kafka's message.
With an authorizer each needs what the API needs (console/access.py): CREATE on the
cluster or the topic, DELETE, ALTER_CONFIGS, ALTER or WRITE on the topic; a refusal is a
403 page naming Kafka's error, and nothing changes.

Cross-site requests are refused by a CSRF token: every page sets a random cookie
(`odradek_csrf`, HttpOnly, SameSite=Strict) and each form carries an HMAC of it keyed by
a secret of this listener; a POST whose token does not match its cookie gets 403. With
`console.read.only=true` the forms are not shown and every POST gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote, urlencode

from aiohttp import web

from odradek.console import access, produce
from odradek.handlers.topics import (
    TopicError,
    add_partitions,
    check_new_topic,
    create_topic,
    delete_topic,
    topic_changes,
)
from odradek.metadata.configs import ConfigApiError, check_topic_configs
from odradek.metadata.store import TopicInfo
from odradek.security.acl import AclOperation
from odradek.server.broker import Broker

COOKIE = "odradek_csrf"
FIELD = "csrf"

Failure = Callable[[int, str], web.Response]


class Csrf:
    """Tokens bound to a browser's cookie by this listener's secret."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def token(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def nonce(self, request: web.Request) -> tuple[str, bool]:
        """The request's cookie value, or a new one (and True: to be set)."""
        nonce = request.cookies.get(COOKIE, "")
        if len(nonce) == 32 and all(c in "0123456789abcdef" for c in nonce):
            return nonce, False
        return secrets.token_hex(16), True

    def valid(self, request: web.Request, form: Mapping[str, object]) -> bool:
        nonce = request.cookies.get(COOKIE)
        sent = form.get(FIELD)
        if not nonce or not isinstance(sent, str):
            return False
        return hmac.compare_digest(self.token(nonce), sent)


def set_cookie(response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", path="/")


# A write: the path to show next (a redirect), or a page to show (a confirmation).
Action = Callable[[web.Request, Mapping[str, str]], Awaitable[str | web.Response]]


def guard(
    broker: Broker, csrf: Csrf, fail: Failure, action: Action
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST handler running `action` (which answers the path to show next, or a page)
    once the
    console is writable, the broker started and the form's CSRF token matches; Kafka's
    refusals become 400 pages, an unknown topic or group a 404 page."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if broker.config.console_read_only:
            return fail(403, "The console is read-only (console.read.only=true).")
        if not broker.started:
            return fail(503, "The broker is not started.")
        form = await request.post()
        if not csrf.valid(request, form):
            return fail(403, "Missing or wrong CSRF token: reload the page and retry.")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            target = await action(request, fields)
        except access.Refused as refused:
            return fail(403, refused.text)
        except NotFound as error:
            return fail(404, str(error))
        except (TopicError, ConfigApiError) as error:
            return fail(400, error.message)
        except ValueError as error:
            return fail(400, str(error))
        if isinstance(target, web.Response):
            return target
        raise web.HTTPSeeOther(target)

    return handle


def routes(broker: Broker, csrf: Csrf, fail: Failure) -> Iterable[web.RouteDef]:
    """POST /topics (create), /topics/{name}/delete, /topics/{name}/configs,
    /topics/{name}/partitions (add), /topics/{name}/produce."""

    async def create(request: web.Request, form: Mapping[str, str]) -> str:
        name = form.get("name", "")
        access.of(broker, request).create_topic(name)
        partitions = _integer(form.get("partitions", "") or "-1", "partitions")
        factor = _integer(form.get("replication_factor", "") or "-1", "replication_factor")
        services = broker.services
        count = check_new_topic(services, name, partitions, factor, {})
        if factor == -1:
            factor = services.config.default_replication_factor
        create_topic(services, name, count, {}, factor)
        return "/topics/" + _segment(name)

    async def delete(request: web.Request, _form: Mapping[str, str]) -> str:
        services = broker.services
        info = _topic(broker, request, AclOperation.DELETE)
        if not services.config.delete_topic_enable:
            raise ValueError("Topic deletion is disabled (delete.topic.enable=false).")
        if info.internal:
            raise ValueError(f"Topic {info.name} is internal and cannot be deleted.")
        delete_topic(services, info)
        return "/topics"

    async def configure(request: web.Request, form: Mapping[str, str]) -> str:
        info = _topic(broker, request, AclOperation.ALTER_CONFIGS)
        name = form.get("name", "")
        new = dict(info.configs)
        if form.get("action") == "delete":
            new.pop(name, None)
        else:
            new[name] = form.get("value", "")
        check_topic_configs(new)
        if new != dict(info.configs):
            services = broker.services
            services.replicas.apply_topic_config(
                services.metadata.set_topic_configs(info.name, new)
            )
        return "/topics/" + _segment(info.name) + "#configs"

    async def grow(request: web.Request, form: Mapping[str, str]) -> str:
        info = _topic(broker, request, AclOperation.ALTER)
        count = _integer(form.get("count", ""), "count")
        services = broker.services
        with topic_changes(services):
            add_partitions(services, info.name, count, False)
        return "/topics/" + _segment(info.name)

    async def append(request: web.Request, form: Mapping[str, str]) -> str:
        info = _topic(broker, request, AclOperation.WRITE)
        done = await produce.produce(broker, info, form)
        if broker.services.replicas.get(info.name, done.partition) is None:
            # Appended by the leader on another broker: this one cannot show the record.
            return f"/topics/{_segment(info.name)}?produced={done.partition}:{done.offset}"
        query = urlencode({"partition": done.partition, "from": "offset", "offset": done.offset})
        return f"/topics/{_segment(info.name)}/messages?{query}"

    def post(path: str, action: Action) -> web.RouteDef:
        return web.post(path, guard(broker, csrf, fail, action))

    return [
        post("/topics", create),
        post("/topics/{name}/delete", delete),
        post("/topics/{name}/configs", configure),
        post("/topics/{name}/partitions", grow),
        post("/topics/{name}/produce", append),
    ]


class NotFound(Exception):
    """The topic or group in the URL does not exist (here): 404."""


def _topic(broker: Broker, request: web.Request, operation: AclOperation) -> TopicInfo:
    """The topic in the URL, once the principal may `operation` it (checked first, as
    Kafka does, so a forbidden and an unknown topic answer alike)."""
    name = request.match_info["name"]
    access.of(broker, request).topic(operation, name)
    info = broker.services.metadata.topics.get(name)
    if info is None:
        raise NotFound(f"No topic named {name!r}.")
    return info


def _integer(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number.") from None


def _segment(name: str) -> str:
    return quote(name, safe="")
