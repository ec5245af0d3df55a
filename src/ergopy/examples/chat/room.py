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

Across nodes
------------
With ``ChatOptions.cluster`` a room lives on its *home* node (:mod:`.cluster`), and
workers on every node talk to it by ``gen.ProcessID``: every message below is a
dataclass registered with ``@net.register`` so that it crosses nodes in EDF. The
room replies to a worker's PID wherever it is (a send that finds no connection is
dropped: that worker's node is gone, and the monitor tells the room so). ``Rooms``
starts a room only on its home; a room whose home changes (a node came back)
unregisters its event and ends, which its workers read as "moved" (see
:mod:`.cluster`). A member that follows its room to the new home is announced
with a ``count`` presence line, not as a new join.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import act, gen, net
from ...gen import PID, Alias
from . import protocol
from .cluster import LIVE_EVENT, Cluster

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
    "WIRE_TYPES",
    "room_name",
]

ROOMS = "chat_rooms"  # the registered name of the rooms supervisor
IDLE_CLOSE = 10.0  # seconds; a room opened for a join that never came (its worker died) ends after this
PRESENCE_LIMIT = 200  # members; beyond, joins and leaves are not announced one by one (N²/2 frames)
COUNT_INTERVAL = 1.0  # seconds; how often a big room publishes its changed count, at most


def room_name(room: str) -> str:
    """The registered process name, and the event name, of the room ``room``."""
    return "room:" + room


_GO = "#ergopy/examples/chat/"  # the Go package path the chat's messages are registered under


# ---- worker -> rooms supervisor -> worker ------------------------------------------------------


@net.register(_GO + "OpenRoom")
@dataclass(frozen=True, slots=True)
class OpenRoom:
    """Start the room process ``room`` if it is not running; answered with :class:`RoomOpened`."""

    room: str


@net.register(_GO + "RoomOpened")
@dataclass(frozen=True, slots=True)
class RoomOpened:
    """The room is running (``error`` empty), could not be started (``error`` says why),
    or lives on another node by the answering node's view (``elsewhere``: ask again)."""

    room: str
    error: str = ""
    elsewhere: bool = False


# ---- worker -> room -----------------------------------------------------------------------------


@net.register(_GO + "RoomJoin")
@dataclass(frozen=True, slots=True)
class RoomJoin:
    """Join ``alias`` as ``nick``; ``moved``: a member following its room to a new home."""

    alias: Alias
    nick: str
    moved: bool = False


@net.register(_GO + "RoomLeave")
@dataclass(frozen=True, slots=True)
class RoomLeave:
    """``alias`` leaves (or its connection ended)."""

    alias: Alias


@net.register(_GO + "RoomSay")
@dataclass(frozen=True, slots=True)
class RoomSay:
    """A line from ``alias``; published to the room's subscribers if it is a member."""

    alias: Alias
    text: str


# ---- room -> worker -----------------------------------------------------------------------------


@net.register(_GO + "RoomJoined")
@dataclass(frozen=True, slots=True)
class RoomJoined:
    """``alias`` is a member as ``nick``; the room has ``count`` members."""

    room: str
    alias: Alias
    nick: str
    count: int


@net.register(_GO + "RoomRefused")
@dataclass(frozen=True, slots=True)
class RoomRefused:
    """``alias`` was not let in; ``reason`` is meant for the client."""

    room: str
    alias: Alias
    reason: str


WIRE_TYPES = (OpenRoom, RoomOpened, RoomJoin, RoomLeave, RoomSay, RoomJoined, RoomRefused)
"""The messages that cross nodes (the room's lines are ``bytes``, which EDF carries as is)."""


class _IdleCheck:
    """To itself, ``IDLE_CLOSE`` after start: end if nobody joined."""


class _CountTick:
    """To itself, ``COUNT_INTERVAL`` after a big room's count changed: publish it."""


class _HomeCheck:
    """To itself, first: subscribe to ``chat_live``; is this node still the room's home?"""


class Room(act.Actor):
    """One chat room: registers ``room:<name>`` as its process name and as an event.

    With a ``cluster`` it also watches the live set (the local event ``chat_live``)
    and ends, unregistering its event first, when its home becomes another node.
    """

    def init(self, room: str, presence_limit: int = PRESENCE_LIMIT, cluster: Cluster | None = None) -> None:
        self.room = room
        self.presence_limit = presence_limit
        self.cluster = cluster
        self.count_pending = False  # a _CountTick is on its way
        self.count_published = 0
        name = room_name(room)
        self.register_name(name)  # TakenError: another worker opened this room first
        self.token = self.register_event(name)
        self.members: dict[Alias, tuple[str, PID]] = {}  # alias -> (nick, its worker)
        self.nicks: set[str] = set()  # casefolded, so "Alice" and "alice" are one nick
        self.workers: dict[PID, set[Alias]] = {}
        self.send_after(self.pid, _IdleCheck(), IDLE_CLOSE)
        self.watching = False  # subscribed to chat_live (not allowed in init: on the first message)
        if cluster is not None:
            self.send(self.pid, _HomeCheck())

    def handle_message(self, from_: PID, message: Any) -> Any:
        if type(message) is RoomSay:
            member = self.members.get(message.alias)
            if member is not None:
                line = protocol.message(self.room, member[0], message.text)
                self.send_event(room_name(self.room), self.token, line)
            return None
        if type(message) is RoomJoin:
            return self._join(from_, message.alias, message.nick, message.moved)
        if type(message) is RoomLeave:
            self._leave(message.alias)
        elif type(message) is gen.MessageDownPID:
            # A worker died, or its node is gone: its connections are gone with it.
            for alias in list(self.workers.get(message.pid, ())):
                self._leave(alias)
        elif type(message) is _CountTick:
            self.count_pending = False
            if self.members and len(self.members) != self.count_published:
                self._publish_count()
        elif type(message) is _IdleCheck:
            pass
        elif type(message) is _HomeCheck:
            if not self.watching:
                self.watching = True
                self.monitor_event(gen.Event(LIVE_EVENT, self.node.name))
            return self._check_home()  # the live set may have changed since Rooms looked
        elif type(message) is gen.MessageDownEvent:
            # chat_peers ended (it is restarted): without a view of the live set, hand the
            # members to the workers, who place the room again.
            return self._move()
        else:
            self.log.warning("room %s: unexpected message from %s: %r", self.room, from_, message)
            return None
        return gen.TERMINATE_REASON_NORMAL if not self.members else None

    def handle_event(self, message: gen.MessageEvent) -> Any:
        """The live set changed (``chat_live``): end if this node is no longer the home."""
        return self._check_home()

    def _check_home(self) -> Any:
        assert self.cluster is not None
        home = self.cluster.home(self.room)
        if home == self.cluster.this:
            return None
        self.log.info("chat: room %s moves to %s", self.room, home)
        return self._move()

    def _move(self) -> Any:
        # Unregistered, not ended: the subscribers read gen.UnregisteredError as "moved"
        # (a room that ends by itself is empty; one that fails crashed).
        self.unregister_event(room_name(self.room))
        return gen.TERMINATE_REASON_NORMAL

    def _send(self, worker: PID, message: Any) -> None:
        try:
            self.send(worker, message)
        except gen.Error:
            pass  # its node is gone: our monitor of the worker tells us so

    def _join(self, worker: PID, alias: Alias, nick: str, moved: bool = False) -> None:
        if alias in self.members:
            return None
        key = nick.casefold()
        if key in self.nicks:
            self._send(worker, RoomRefused(self.room, alias, f"nick {nick!r} is taken in room {self.room!r}"))
            return None
        self.members[alias] = (nick, worker)
        self.nicks.add(key)
        aliases = self.workers.get(worker)
        if aliases is None:
            aliases = self.workers[worker] = set()
            try:
                self.monitor(worker)
            except gen.Error:
                pass  # its node is gone already: the network told every watcher before we asked
        aliases.add(alias)
        count = len(self.members)
        # The worker is subscribed already, and both go to its main queue in this order:
        # it records the member on RoomJoined, then hands it the presence line too.
        self._send(worker, RoomJoined(self.room, alias, nick, count))
        if moved:
            self._presence("count", "")  # back after a move: not a new member
        else:
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

    def init(self, presence_limit: int = PRESENCE_LIMIT, cluster: Cluster | None = None) -> act.SupervisorSpec:
        self.presence_limit = presence_limit
        self.cluster = cluster
        return act.SupervisorSpec(
            type=act.SupervisorType.SIMPLE_ONE_FOR_ONE,
            children=[act.SupervisorChildSpec(name="room", factory=Room)],
            restart=act.SupervisorRestart(strategy=act.SupervisorStrategy.TEMPORARY),
        )

    async def handle_message(self, from_: PID, message: Any) -> None:
        if type(message) is not OpenRoom:
            self.log.warning("chat rooms: unexpected message from %s: %r", from_, message)
            return
        error = ""
        cluster = self.cluster
        if cluster is not None and cluster.home(message.room) != cluster.this:
            # The asking node sees another live set than ours (a node is coming or going):
            # it asks again shortly, when both views agree.
            reply = RoomOpened(message.room, elsewhere=True)
        else:
            try:
                await self.start_child("room", message.room, self.presence_limit, cluster)
            except gen.TakenError:
                pass  # it is running: another worker opened it first
            except gen.Error as e:
                error = str(e) or type(e).__name__
            reply = RoomOpened(message.room, error)
        try:
            self.send(from_, reply)
        except gen.Error:
            pass  # the worker is gone; its room ends by itself after IDLE_CLOSE
