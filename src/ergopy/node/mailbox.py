"""Mailbox items that are not plain messages.

A plain message is queued as the tuple ``(from_, message)``. Anything else (a
call request, an inspect request, an exit signal, an event) is queued as
``(None, item)``: the drain loop tells the two apart with one ``is None`` test,
the cheapest check there is, so plain messages pay nothing for the others.
"""

from __future__ import annotations

from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import PID, Ref

if TYPE_CHECKING:
    from .node import Node


ASLEEP = object()
"""A drain batch's last yield: the process or meta-process sleeps, alive."""
ENDED = object()
"""A drain batch's last yield: the process or meta-process has ended."""


class Request:
    """A ``call``: reply to ``ref`` with what ``handle_call`` returns."""

    __slots__ = ("from_", "ref", "request")

    def __init__(self, from_: PID, ref: Ref, request: Any) -> None:
        self.from_ = from_
        self.ref = ref
        self.request = request


class Inspect:
    """An ``inspect``: reply to ``ref`` with what ``handle_inspect`` returns."""

    __slots__ = ("from_", "items", "ref")

    def __init__(self, from_: PID, ref: Ref, items: tuple[str, ...]) -> None:
        self.from_ = from_
        self.ref = ref
        self.items = items


class Exit:
    """An exit signal or a link notification; ``message`` is a ``gen.MessageExit*``.

    ``source`` names where it came from, for the wrapped termination reason.
    """

    __slots__ = ("from_", "message", "reason", "source")

    def __init__(self, from_: PID, source: object, reason: BaseException, message: Any) -> None:
        self.from_ = from_
        self.source = source
        self.reason = reason
        self.message = message


class Event:
    """A published event for ``handle_event``; ``message`` is a ``gen.MessageEvent``."""

    __slots__ = ("from_", "message")

    def __init__(self, from_: PID, message: Any) -> None:
        self.from_ = from_
        self.message = message


def answer_call(node: Node, behavior: Any, item: Request) -> Any:
    """Run ``handle_call`` and reply; returns a stop reason, or a coroutine doing both.

    ``None`` from ``handle_call`` sends no reply (the behaviour answers later with
    ``send_response``); a terminate reason (``gen.TERMINATE_REASON_NORMAL``,
    ``..._SHUTDOWN``, ``..._KILL``, ``..._PANIC``) stops the process with no reply (the
    caller times out unless someone else answers: a forwarded request);
    ``gen.ReplyAndStop(v)`` replies ``v`` and stops.
    """
    r = behavior.handle_call(item.from_, item.ref, item.request)
    if type(r) is CoroutineType:
        return _answer_call_later(node, item, r)
    return _reply(node, item, r)


def answer_inspect(node: Node, behavior: Any, item: Inspect) -> Any:
    """Run ``handle_inspect`` and reply; returns ``None``, or a coroutine doing both."""
    r = behavior.handle_inspect(item.from_, *item.items)
    if type(r) is CoroutineType:
        return _answer_inspect_later(node, item, r)
    node.deliver_response(item.from_, item.ref, r, None)
    return None


def _reply(node: Node, item: Request, r: Any) -> Any:
    if r is None:
        return None
    if type(r) is gen.TerminateReason:
        return r  # Go's `return nil, gen.TerminateReasonNormal`: stop, with no reply
    if type(r) is gen.ReplyAndStop:
        node.deliver_response(item.from_, item.ref, r.value, None)
        return r.reason
    node.deliver_response(item.from_, item.ref, r, None)
    return None


async def _answer_call_later(node: Node, item: Request, coro: Any) -> Any:
    return _reply(node, item, await coro)


async def _answer_inspect_later(node: Node, item: Inspect, coro: Any) -> None:
    node.deliver_response(item.from_, item.ref, await coro, None)
