"""Rooms: one process per room, started on the first join and ended when the last member leaves.

Why a room publishes an Ergo event instead of sending to each member
--------------------------------------------------------------------
A room of 5,000 members could keep every member's connection alias and call
``send_alias`` 5,000 times per line. Instead the room registers the event
``room:<name>``; each chat worker that serves at least one member subscribes to
it with ``monitor_event`` and, in ``handle_event``, writes the frame to its own
members. A line costs the room one ``send_event`` (one delivery per worker, not
per member), and:

- the room stays responsive: its callback is O(workers), so joins and other
  lines are not queued behind a 5,000-send loop;
- the fan-out is split into one slice per worker, each handled in its own
  mailbox drain, so the event loop writes to sockets between slices instead of
  after one long callback;
- the frame is encoded once, in the room, and the same bytes go to everyone;
- subscriptions clean themselves up: a worker that dies is unsubscribed by the
  node, and a room that ends tells its subscribers with ``MessageDownEvent``.

The room still knows its members (alias -> nick) for the count, unique nicks and
leave notices, and it monitors each worker so members of a worker that dies get
their leave notice.

Presence in big rooms
---------------------
Announcing every join to every member costs N²/2 frames while a crowd of N
arrives (12.5 million for 5,000). Up to ``presence_limit`` members (default 200)
each join and leave is announced; in a bigger room they are not, and a
``{"type": "presence", "event": "count", ...}`` line carries the new count
instead, at most once per ``COUNT_INTERVAL``.

Lifecycle without races
-----------------------
``Rooms`` (a ``SIMPLE_ONE_FOR_ONE`` supervisor, registered as ``chat_rooms``) is
the only process that starts rooms, so two workers opening the same room at once
cannot both succeed: the second ``Room.init`` finds the name taken. A room ends
(``TERMINATE_REASON_NORMAL``) when its last member leaves; a ``RoomJoin`` that was
still in its mailbox is then lost, but the worker that sent it is subscribed to
the room's event, gets ``MessageDownEvent`` and joins again (opening a new room).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import act, gen
from ...gen import PID, Alias
from . import protocol

__all__ = [
    "ROOMS",
    "OpenRoom",
    "Room",
    "RoomJoin",
    "RoomJoined",
    "RoomLeave",
    "RoomOpened",
    "RoomRefused",
    "RoomSay",
    "Rooms",
    "room_name",
]

ROOMS = "chat_rooms"  # the registered name of the rooms supervisor
IDLE_CLOSE = 10.0  # seconds; a room opened for a join that never came (its worker died) ends after this
PRESENCE_LIMIT = 200  # members; beyond, joins and leaves are not announced one by one (N²/2 frames)
COUNT_INTERVAL = 1.0  # seconds; how often a big room publishes its changed count, at most


def room_name(room: str) -> str:
    """The registered process name, and the event name, of the room ``room``."""
    return "room:" + room


# ---- worker -> rooms supervisor -> worker ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenRoom:
    """Start the room process ``room`` if it is not running; answered with :class:`RoomOpened`."""

    room: str


@dataclass(frozen=True, slots=True)
class RoomOpened:
    """The room is running (``error`` is ``None``), or could not be started."""

    room: str
    error: str | None = None


# ---- worker -> room -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomJoin:
    alias: Alias
    nick: str


@dataclass(frozen=True, slots=True)
class RoomLeave:
    alias: Alias


@dataclass(frozen=True, slots=True)
class RoomSay:
    alias: Alias
    text: str


# ---- room -> worker -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomJoined:
    room: str
    alias: Alias
    nick: str
    count: int


@dataclass(frozen=True, slots=True)
class RoomRefused:
    room: str
    alias: Alias
    reason: str


class _IdleCheck:
    """To itself, ``IDLE_CLOSE`` after start: end if nobody joined."""


class _CountTick:
    """To itself, ``COUNT_INTERVAL`` after a big room's count changed: publish it."""


class Room(act.Actor):
    """One chat room: registers ``room:<name>`` as its process name and as an event."""

    def init(self, room: str, presence_limit: int = PRESENCE_LIMIT) -> None:
        self.room = room
        self.presence_limit = presence_limit
        self.count_pending = False  # a _CountTick is on its way
        self.count_published = 0
        name = room_name(room)
        self.register_name(name)  # TakenError: another worker opened this room first
        self.token = self.register_event(name)
        self.members: dict[Alias, tuple[str, PID]] = {}  # alias -> (nick, its worker)
        self.nicks: set[str] = set()  # casefolded, so "Alice" and "alice" are one nick
        self.workers: dict[PID, set[Alias]] = {}
        self.send_after(self.pid, _IdleCheck(), IDLE_CLOSE)

    def handle_message(self, from_: PID, message: Any) -> Any:
        if type(message) is RoomSay:
            member = self.members.get(message.alias)
            if member is not None:
                line = protocol.message(self.room, member[0], message.text)
                self.send_event(room_name(self.room), self.token, line)
            return None
        if type(message) is RoomJoin:
            return self._join(from_, message.alias, message.nick)
        if type(message) is RoomLeave:
            self._leave(message.alias)
        elif type(message) is gen.MessageDownPID:
            # A worker died: its connections are gone with it.
            for alias in list(self.workers.get(message.pid, ())):
                self._leave(alias)
        elif type(message) is _CountTick:
            self.count_pending = False
            if self.members and len(self.members) != self.count_published:
                self._publish_count()
        elif type(message) is _IdleCheck:
            pass
        else:
            self.log.warning("room %s: unexpected message from %s: %r", self.room, from_, message)
            return None
        return gen.TERMINATE_REASON_NORMAL if not self.members else None

    def _join(self, worker: PID, alias: Alias, nick: str) -> None:
        if alias in self.members:
            return None
        key = nick.casefold()
        if key in self.nicks:
            self.send(worker, RoomRefused(self.room, alias, f"nick {nick!r} is taken in room {self.room!r}"))
            return None
        self.members[alias] = (nick, worker)
        self.nicks.add(key)
        aliases = self.workers.get(worker)
        if aliases is None:
            aliases = self.workers[worker] = set()
            self.monitor(worker)
        aliases.add(alias)
        count = len(self.members)
        # The worker is subscribed already, and both go to its main queue in this order:
        # it records the member on RoomJoined, then hands it the presence line too.
        self.send(worker, RoomJoined(self.room, alias, nick, count))
        self._presence("join", nick)
        return None

    def _leave(self, alias: Alias) -> None:
        member = self.members.pop(alias, None)
        if member is None:
            return
        nick, worker = member
        self.nicks.discard(nick.casefold())
        aliases = self.workers[worker]
        aliases.discard(alias)
        if not aliases:
            del self.workers[worker]
            try:
                self.demonitor(worker)
            except gen.Error:
                pass  # it died: its MessageDownPID is what brought us here
        self._presence("leave", nick)

    def _presence(self, event: str, nick: str) -> None:
        count = len(self.members)
        if count <= self.presence_limit:
            self.count_published = count
            self.send_event(room_name(self.room), self.token, protocol.presence(self.room, event, nick, count))
        elif not self.count_pending:
            self.count_pending = True
            self.send_after(self.pid, _CountTick(), COUNT_INTERVAL)

    def _publish_count(self) -> None:
        self.count_published = len(self.members)
        frame = protocol.presence(self.room, "count", "", self.count_published)
        self.send_event(room_name(self.room), self.token, frame)

    def handle_inspect(self, from_: PID, *items: str) -> dict[str, str]:
        return {"room": self.room, "members": str(len(self.members)), "workers": str(len(self.workers))}


class Rooms(act.Supervisor):
    """Starts room processes on request (``SIMPLE_ONE_FOR_ONE``; a room that fails is not restarted)."""

    def init(self, presence_limit: int = PRESENCE_LIMIT) -> act.SupervisorSpec:
        self.presence_limit = presence_limit
        return act.SupervisorSpec(
            type=act.SupervisorType.SIMPLE_ONE_FOR_ONE,
            children=[act.SupervisorChildSpec(name="room", factory=Room)],
            restart=act.SupervisorRestart(strategy=act.SupervisorStrategy.TEMPORARY),
        )

    async def handle_message(self, from_: PID, message: Any) -> None:
        if type(message) is not OpenRoom:
            self.log.warning("chat rooms: unexpected message from %s: %r", from_, message)
            return
        error: str | None = None
        try:
            await self.start_child("room", message.room, self.presence_limit)
        except gen.TakenError:
            pass  # it is running: another worker opened it first
        except gen.Error as e:
            error = str(e)
        try:
            self.send(from_, RoomOpened(message.room, error))
        except gen.Error:
            pass  # the worker is gone; its room ends by itself after IDLE_CLOSE
