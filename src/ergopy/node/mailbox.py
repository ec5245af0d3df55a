"""Mailbox items that are not plain messages.

A plain message is queued as the tuple ``(from_, message)``. Anything else (a
call request, an inspect request, an exit signal, an event) is queued as
``(None, item)``: the drain loop tells the two apart with one ``is None`` test,
the cheapest check there is, so plain messages pay nothing for the others.
"""

from __future__ import annotations

from typing import Any

from ..gen import PID, Ref


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


class Kill:
    """Terminate now with ``TERMINATE_REASON_KILL`` (queued only for a running process)."""

    __slots__ = ()
