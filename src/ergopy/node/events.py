"""Events: a producer registers a name, subscribers link to or monitor it.

``send_event`` delivers a ``gen.MessageEvent`` to every subscriber's
``handle_event``; the last ``buffer`` events are kept and returned to a new
subscriber; with ``notify`` the producer hears ``MessageEventStart`` when the
first subscriber arrives and ``MessageEventStop`` when the last leaves. When the
producer terminates (or unregisters), subscribers get ``MessageExitEvent`` /
``MessageDownEvent``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import Atom, Event, EventOptions, Ref
from . import mailbox

if TYPE_CHECKING:
    from .node import Node
    from .process import ProcessRecord

__all__ = ["Events"]


class _EventRecord:
    __slots__ = ("buffer", "event", "notify", "producer", "subscribed", "token")

    def __init__(self, event: Event, producer: ProcessRecord, token: Ref, options: EventOptions) -> None:
        self.event = event
        self.producer = producer
        self.token = token
        self.notify = options.notify
        self.buffer: deque[gen.MessageEvent] | None = deque(maxlen=options.buffer) if options.buffer > 0 else None
        self.subscribed = False


class Events:
    """The node's registered events."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._events: dict[Event, _EventRecord] = {}

    def exists(self, event: Event) -> bool:
        return event in self._events

    def register(self, producer: ProcessRecord, name: Atom, options: EventOptions) -> Ref:
        """Register ``name`` for ``producer``; ``TakenError`` if it exists. Returns the token."""
        event = Event(name, self._node.name)
        if event in self._events:
            raise gen.TakenError(f"event {event} is already registered")
        token = self._node.make_ref()
        self._events[event] = _EventRecord(event, producer, token, options)
        producer.events[name] = token
        return token

    def unregister(self, producer: ProcessRecord, name: Atom) -> None:
        """Unregister; subscribers are told with ``UnregisteredError``."""
        event = Event(name, self._node.name)
        rec = self._events.get(event)
        if rec is None:
            raise gen.EventUnknownError(f"unknown event {event}")
        if rec.producer is not producer:
            raise gen.NotAllowedError(f"event {event} belongs to process {rec.producer.pid}")
        self._drop(rec, gen.UnregisteredError(f"event {event} was unregistered"))

    def producer_terminated(self, producer: ProcessRecord, reason: BaseException) -> None:
        for name in list(producer.events):
            rec = self._events.get(Event(name, self._node.name))
            if rec is not None and rec.producer is producer:
                self._drop(rec, reason)
        producer.events.clear()

    def _drop(self, rec: _EventRecord, reason: BaseException) -> None:
        del self._events[rec.event]
        rec.producer.events.pop(rec.event.name, None)
        self._node.targets.fire(rec.event, reason)

    def publish(self, producer: ProcessRecord, name: Atom, token: Ref, message: Any) -> None:
        """Deliver ``message`` to every subscriber; errors if the name or token is wrong."""
        event = Event(name, self._node.name)
        rec = self._events.get(event)
        if rec is None:
            raise gen.EventUnknownError(f"unknown event {event}")
        if rec.token != token:
            raise gen.NotAllowedError(f"wrong token for event {event}")
        msg = gen.MessageEvent(event, time.time_ns(), message)
        if rec.buffer is not None:
            rec.buffer.append(msg)
        self.fan_out(producer.pid, msg)
        net = self._node._network
        if net is not None:
            net.publish(producer.pid, msg, gen.MessagePriority.NORMAL)  # one frame per subscribed node

    def fan_out(self, from_: gen.PID, msg: gen.MessageEvent) -> None:
        """Deliver ``msg`` to every local subscriber of its event (a local or a remote one)."""
        item = mailbox.Event(from_, msg)
        for sub in self._node.targets.subscribers(msg.event):
            try:
                sub.push(None, item, gen.MessagePriority.NORMAL)
            except gen.Error:
                pass  # a full or dying subscriber misses this one, as a failed send would

    def subscribed(self, event: Event) -> list[gen.MessageEvent]:
        """A subscriber arrived: maybe notify the producer; return the buffered history."""
        rec = self._events[event]
        if rec.notify and not rec.subscribed:
            rec.subscribed = True
            self._notify(rec, gen.MessageEventStart(event.name))
        return list(rec.buffer) if rec.buffer is not None else []

    def unsubscribed(self, event: Event) -> None:
        rec = self._events.get(event)
        if rec is None or not rec.notify or not rec.subscribed:
            return
        net = self._node._network
        if self._node.targets.count(event) == 0 and (net is None or net.remote_subscribers(event) == 0):
            rec.subscribed = False
            self._notify(rec, gen.MessageEventStop(event.name))

    def _notify(self, rec: _EventRecord, message: Any) -> None:
        try:
            rec.producer.push_system(self._node.pid, message)
        except gen.Error:
            pass
