"""``ChatWorker``: one of the pool of processes the WebSocket handler hands connections to.

Each connection is pinned to one worker (round-robin, fixed for its life). The
worker parses the connection's frames, talks to room processes on its behalf, and
writes room lines to its members: it subscribes to the event of every room in
which it has at least one member (see :mod:`.room` for why) and fans each line
out to those members only.

Across nodes (:mod:`.cluster`) the worker places each room on its home node when
its first member joins, opens it there if it is not running (``MessageDownEvent``
with ``EventUnknownError`` is the remote "no such event"), and when the home is
lost or the room moves (``NoConnectionError``, ``UnregisteredError``) it sends its
members ``{"type": "moved"}`` and joins them again at the new home, where they
get ``{"type": "joined", ..., "moved": true}``: the connection stays open.
"""

from __future__ import annotations

from typing import Any

from ... import act, gen
from ...gen import PID, Alias
from ...meta import websocket
from . import protocol
from .cluster import Cluster
from .room import ROOMS, OpenRoom, RoomJoin, RoomJoined, RoomLeave, RoomOpened, RoomRefused, RoomSay, room_name

__all__ = ["ChatWorker"]

RETRY_INTERVAL = 0.25  # seconds; a room's node said "not mine": the live sets agree again within a dial interval
RETRY_LIMIT = 20  # asks again (5 to 20 s) before the joins are refused: far above a dial interval, bounded anyway
OPEN_TIMEOUT = 1.0  # seconds for another node's answer to OpenRoom (a stopping node answers nothing): then ask again


class _Retry:
    """To itself: place the room again (after a "not mine", or no answer to an OpenRoom).
    ``attempt`` tells a stale one (the room was placed again since) from a live one."""

    __slots__ = ("attempt", "room")

    def __init__(self, room: str, attempt: int) -> None:
        self.room = room
        self.attempt = attempt


class _Connection:
    """What the worker knows about one of its connections."""

    __slots__ = ("nick", "room")

    def __init__(self) -> None:
        self.nick: str | None = None
        self.room: str | None = None  # joined, or joining


class _LocalRoom:
    """This worker's view of one room: where it lives, its members here, and those still joining."""

    __slots__ = (
        "attempt", "event", "members", "opening", "pending", "retries", "returning", "subscribed", "target",
    )  # fmt: skip

    def __init__(self, event: gen.Event, target: Any) -> None:
        self.event = event  # the room's event on its home node
        self.target = target  # where RoomJoin/RoomSay/RoomLeave go: the name, or a ProcessID on another node
        self.subscribed = False  # monitor_event succeeded and no MessageDownEvent since
        self.opening = False  # an OpenRoom is on its way to the rooms supervisor
        self.pending: dict[Alias, str] = {}  # alias -> nick: RoomJoin sent (or to send), no RoomJoined yet
        self.members: dict[Alias, str] = {}
        self.returning: set[Alias] = set()  # pending members following the room to a new home
        self.retries = 0  # "not mine" answers in a row
        self.attempt = 0  # counts OpenRooms sent: a _Retry for an earlier one is stale


class ChatWorker(act.Actor):
    """Serves the chat protocol (:mod:`.protocol`) for the connections the handler assigns to it.

    With a ``cluster`` (:mod:`.cluster`) each room is reached on its home node.
    """

    def init(self, cluster: Cluster | None = None) -> None:
        self.connections: dict[Alias, _Connection] = {}
        self.rooms: dict[str, _LocalRoom] = {}
        self.cluster = cluster

    # ---- messages ------------------------------------------------------------------------------

    def handle_message(self, from_: PID, message: Any) -> None:
        t = type(message)
        if t is websocket.Message:
            self._on_frame(message)
        elif t is websocket.MessageConnect:
            self.connections[message.id] = _Connection()
        elif t is websocket.MessageDisconnect:
            conn = self.connections.pop(message.id, None)
            if conn is not None and conn.room is not None:
                self._leave(message.id, conn)
        elif t is RoomJoined:
            self._on_joined(message)
        elif t is RoomRefused:
            self._on_refused(message)
        elif t is RoomOpened:
            self._on_opened(message)
        elif t is gen.MessageDownEvent:
            self._on_room_down(message)
        elif t is _Retry:
            self._on_retry(message.room, message.attempt)
        else:
            self.log.warning("chat worker: unexpected message from %s: %r", from_, message)

    def handle_event(self, message: gen.MessageEvent) -> None:
        """A room line (already-encoded JSON): write it to this worker's members of the room."""
        local = self.rooms.get(message.event.name.removeprefix("room:"))
        if local is None:
            return  # we left the room; a line published before the demonitor
        frame = websocket.Message(body=message.message)  # one frame object for all: sending never mutates it
        send = self.send_alias
        for alias in local.members:
            try:
                send(alias, frame)
            except gen.Error:
                pass  # the connection just ended; its MessageDisconnect is on the way

    def handle_call(self, from_: PID, ref: gen.Ref, request: Any) -> Any:
        """``("members", room)``: the connection aliases this worker serves in ``room`` (for tools, benchmarks)."""
        if isinstance(request, tuple) and len(request) == 2 and request[0] == "members":
            local = self.rooms.get(request[1])
            return list(local.members) if local is not None else []
        return None

    # ---- the client's frames -------------------------------------------------------------------

    def _on_frame(self, message: websocket.Message) -> None:
        alias = message.id
        conn = self.connections.get(alias)
        if conn is None:
            # A connection of this worker's previous incarnation (the supervisor restarted
            # it under the same name): its room membership ended with the old worker.
            conn = self.connections[alias] = _Connection()
        if message.type != websocket.MessageType.TEXT:
            self._reply(alias, protocol.error("send JSON in text frames"))
            return
        try:
            request = protocol.parse(message.body)
        except protocol.ProtocolError as e:
            self._reply(alias, protocol.error(str(e)))
            return
        if type(request) is protocol.Say:
            local = self.rooms.get(conn.room) if conn.room is not None else None
            if local is None or alias not in local.members:
                self._reply(alias, protocol.error("join a room first"))
                return
            self._to_room(local, RoomSay(alias, request.text))
        elif type(request) is protocol.Join:
            if conn.room == request.room:
                self._reply(alias, protocol.error(f"already in room {request.room!r}"))
                return
            if conn.room is not None:
                previous = conn.room
                self._leave(alias, conn)
                self._reply(alias, protocol.encode({"type": "left", "room": previous}))
            self._join(alias, conn, request.nick, request.room)
        else:
            if conn.room is None:
                self._reply(alias, protocol.error("not in a room"))
                return
            room = conn.room
            self._leave(alias, conn)
            self._reply(alias, protocol.encode({"type": "left", "room": room}))

    def _join(self, alias: Alias, conn: _Connection, nick: str, room: str) -> None:
        conn.nick, conn.room = nick, room
        local = self.rooms.get(room)
        if local is None:
            local = self.rooms[room] = self._place(room)
        local.pending[alias] = nick
        if local.subscribed:
            self._to_room(local, RoomJoin(alias, nick))
        elif not local.opening:
            self._subscribe(room, local)

    def _leave(self, alias: Alias, conn: _Connection) -> None:
        room = conn.room
        assert room is not None
        conn.room = None
        local = self.rooms[room]
        local.members.pop(alias, None)
        local.pending.pop(alias, None)
        local.returning.discard(alias)
        if local.subscribed:
            # Also when still pending: the RoomJoin may be in the room's mailbox, and
            # the room handles our messages in the order we sent them.
            self._to_room(local, RoomLeave(alias))
        self._forget_if_empty(room, local)

    # ---- rooms ---------------------------------------------------------------------------------

    def _place(self, room: str, local: _LocalRoom | None = None) -> _LocalRoom:
        """Where ``room`` lives now: its event and the target of its messages, on its home node."""
        name = room_name(room)
        cluster = self.cluster
        home = cluster.home(room) if cluster is not None else ""
        target: Any
        if cluster is None or home == cluster.this:
            event, target = gen.Event(name, self.node.name), name
        else:
            event, target = gen.Event(name, home), gen.ProcessID(name, home)
        if local is None:
            return _LocalRoom(event, target)
        local.event, local.target = event, target
        local.subscribed = local.opening = False
        return local

    def _subscribe(self, room: str, local: _LocalRoom) -> None:
        """Monitor the room's event, then send every pending join; open the room if it is not running.

        A local event that does not exist raises at once; a remote one is answered
        later, as ``MessageDownEvent`` with ``EventUnknownError`` (then we open it).
        """
        for _ in range(len(self.cluster.names) if self.cluster is not None else 1):
            try:
                self.monitor_event(local.event)
                break
            except gen.EventUnknownError:
                self._open(room, local)
                return
            except gen.NoConnectionError:
                self._place(room, local)  # its node was lost just now: the next live one
        else:
            return  # unreachable: this node is always live, and its rooms never raise NoConnectionError
        local.subscribed = True
        returning = local.returning
        for alias, nick in local.pending.items():
            self._to_room(local, RoomJoin(alias, nick, alias in returning))

    def _open(self, room: str, local: _LocalRoom) -> None:
        if local.opening:
            return
        local.opening = True
        local.attempt += 1
        if local.event.node == self.node.name:
            self.send(ROOMS, OpenRoom(room))
            return
        try:
            self.send(gen.ProcessID(ROOMS, local.event.node), OpenRoom(room))
        except gen.Error:
            local.opening = False  # its node was lost just now: the next live one
            self._place(room, local)
            self._subscribe(room, local)
            return
        # A node that is stopping has no rooms supervisor any more, and a send to a name
        # that is gone there is dropped silently: without an answer, place the room again.
        self.send_after(self.pid, _Retry(room, local.attempt), OPEN_TIMEOUT)

    def _to_room(self, local: _LocalRoom, message: Any) -> None:
        try:
            self.send(local.target, message)
        except gen.Error:
            pass  # the room just ended: our MessageDownEvent is queued and re-joins the pending ones

    def _on_opened(self, message: RoomOpened) -> None:
        local = self.rooms.get(message.room)
        if local is None or local.subscribed or not local.opening:
            return
        local.opening = False
        if message.error:
            for alias in list(local.pending):
                self._drop(alias, message.room, local, f"cannot open room {message.room!r}: {message.error}")
            return
        if message.elsewhere:
            local.opening = True  # held until the retry: joins meanwhile wait in pending
            local.attempt += 1
            self.send_after(self.pid, _Retry(message.room, local.attempt), RETRY_INTERVAL)
            return
        local.retries = 0
        self._subscribe(message.room, local)

    def _on_retry(self, room: str, attempt: int) -> None:
        local = self.rooms.get(room)
        if local is None or local.subscribed or attempt != local.attempt:
            return
        local.retries += 1
        if local.retries > RETRY_LIMIT:
            # The nodes do not agree on the live set (a misconfigured service), or its
            # node does not answer: bounded, then the members are told.
            for alias in list(local.pending):
                self._drop(alias, room, local, f"cannot place room {room!r}: no node of the service takes it")
            return
        self._place(room, local)
        self._subscribe(room, local)

    def _on_joined(self, message: RoomJoined) -> None:
        local = self.rooms.get(message.room)
        if local is None or local.pending.pop(message.alias, None) is None:
            return  # it left while joining; its RoomLeave follows our RoomJoin
        local.members[message.alias] = message.nick
        local.retries = 0  # the room is placed: later moves get the full RETRY_LIMIT again
        frame = {"type": "joined", "nick": message.nick, "room": message.room, "count": message.count}
        if message.alias in local.returning:
            local.returning.discard(message.alias)
            frame["moved"] = True
        self._reply(message.alias, protocol.encode(frame))

    def _on_refused(self, message: RoomRefused) -> None:
        local = self.rooms.get(message.room)
        if local is not None and message.alias in local.pending:
            self._drop(message.alias, message.room, local, message.reason)

    def _on_room_down(self, message: gen.MessageDownEvent) -> None:
        room = message.event.name.removeprefix("room:")
        local = self.rooms.get(room)
        if local is None or message.event != local.event:
            return  # a room we left, or the end of its previous home
        local.subscribed = False
        reason = message.reason
        if self.cluster is not None:
            if isinstance(reason, gen.EventUnknownError):
                self._open(room, local)  # not running on its home: start it there
                return
            if (
                isinstance(reason, gen.NoConnectionError | gen.UnregisteredError)
                or reason is gen.TERMINATE_REASON_SHUTDOWN  # its node is stopping
            ):
                self._follow(room, local)
                return
        for alias in list(local.members):
            # A room ends normally only when empty, so this is a crash: tell its members.
            self._drop(alias, room, local, f"room {room!r} closed: {message.reason}")
        if local.pending:
            self._subscribe(room, local)  # joins lost in the ended room's mailbox: join the next one

    def _follow(self, room: str, local: _LocalRoom) -> None:
        """The room's node is lost, or the room moved: tell its members, join them at its new home."""
        frame = protocol.moved(room)
        for alias, nick in local.members.items():
            local.pending[alias] = nick
            local.returning.add(alias)
            self._reply(alias, frame)
        local.members.clear()
        self._place(room, local)
        self._subscribe(room, local)

    def _drop(self, alias: Alias, room: str, local: _LocalRoom, reason: str) -> None:
        local.members.pop(alias, None)
        local.pending.pop(alias, None)
        local.returning.discard(alias)
        conn = self.connections.get(alias)
        if conn is not None and conn.room == room:
            conn.room = None
        self._reply(alias, protocol.error(reason))
        self._forget_if_empty(room, local)

    def _forget_if_empty(self, room: str, local: _LocalRoom) -> None:
        if local.members or local.pending:
            return
        del self.rooms[room]
        if local.subscribed:
            try:
                self.demonitor_event(local.event)
            except gen.Error:
                pass  # the room has ended meanwhile

    def _reply(self, alias: Alias, body: bytes) -> None:
        try:
            self.send_alias(alias, websocket.Message(body=body))
        except gen.Error:
            pass  # the connection just ended
