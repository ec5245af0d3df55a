"""One connection to a peer node: a pool of TCP links speaking ENP.

The seam with the node is deliberately small:

- the node calls :meth:`Connection.send` (one frame, with the sending process's
  ID choosing the link; :meth:`Connection.send_data` for a frame it encoded itself)
  and :meth:`Connection.close`;
- the connection calls the node's :class:`NodeSeam`: ``frame_received`` for every
  frame (or, when the node gave a ``receiver``, that with the frames of each read as
  bytes: the node decodes them), ``connection_lost`` exactly once when the last
  link is gone.

Receiving. Each link is an asyncio ``Protocol`` (no task per link): bytes are cut
into frames and the frames are handed to the node *synchronously, in arrival order*.
Go spreads frames over ``PoolSize*4`` receive queues by the order byte and drains
each queue in FIFO; a single-threaded receiver that delivers every frame the
moment it is cut is that FIFO for every queue at once (frames with one order byte
come on one link, in sequence). ``frame_received`` must therefore not block: it
enqueues into a mailbox, as a local send does.

Sending. Go picks ``link = pool[key mod links]`` (round-robin for key 0) where key
is the sending process's ID mod 255, so one sender's frames keep their order.
Frames written during one loop iteration go out in one ``write`` per link
(batching); a frame over the peer's maximum message size is refused before it
is written (:class:`MessageTooLargeError`), one announced over ours closes the link.

A lost link. The pool is a list of *slots* (at most PoolSize) and a sender's key
picks a slot, so the mapping never moves while links come and go. When one link
of several is lost its slot becomes a vacancy that holds its senders' frames, in
order (with the frames the link had not written yet); the dialling side re-dials
it at once (a Join to a random DSN, as Go does, then backoff doubling from
:data:`_REDIAL_FIRST` to :data:`_REDIAL_MAX` until it succeeds or the connection
ends) and the acceptor seats the Join in the vacancy; the new link writes the
held frames first. Nothing a sender wrote after the loss was seen is lost or
reordered. A vacancy not filled within :data:`_HOLD` seconds hands its frames to
a surviving link, which serves the slot until a re-dialled link takes it over
(that switch is the one place where frames of one sender take two links in turn).
Frames already handed to the lost socket are lost with it, as in Go.

Liveness. ENP has no heartbeat and Go relies on 15 s keepalive plus the kernel's
probes (minutes in practice). Each link here gets TCP keepalive tuned so that a
silent peer is declared dead within ``liveness`` seconds (default 20: probes every
4 s once idle, ``TCP_USER_TIMEOUT`` 16 s), and the user timeout also bounds how
long sent data may stay unacknowledged (the case keepalive alone misses: a
partition while we are sending). Both are kernel timers: no task, no traffic
unless the link is idle. Measured on a real silent partition (veth cut between two
network namespaces, ``tests/test_net_connection.py``): a 4 s bound reports the loss
after ~3.4 s. On platforms without these options the bound is the operating system's.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
from collections.abc import Callable
from typing import Any, Final, Protocol

from ergopy import gen
from ergopy.net import edf, enp, handshake
from ergopy.net.registrar import Changes

log = logging.getLogger("ergopy.net.connection")

_DEFAULT: Final[Any] = object()  # "the endpoint's own TLS context" (None means plain TCP)
_CROSSING_GRACE: Final = 2.0  # seconds a refused dial waits for the peer's crossing link to arrive

DEFAULT_LIVENESS: Final = 20.0
"""Seconds within which a silent peer is declared lost (the issue's bound)."""
_REDIAL_FIRST: Final = 0.05  # seconds before the second re-dial of a lost link (the first is at once)
_REDIAL_MAX: Final = 2.0  # cap of the doubling backoff: a peer back after a blip is re-joined within 2 s
_HOLD: Final = 2.0  # seconds a vacancy holds its senders' frames for a re-dial (a connect and a round trip)

_NAME_FIELDS: Final = 4096  # encoded target names kept per connection (a cache cleared when full)

DEFAULT_MAX_PENDING: Final = 64 << 20
"""Unsent bytes per link before the link is given up (64 MiB: many large messages
in flight, yet bounded memory against a peer that stopped reading)."""


class MessageTooLargeError(gen.Error):
    """The frame exceeds the peer's maximum message size (Go's ``gen.ErrTooLarge``);
    nothing was sent."""


class NodeSeam(Protocol):
    """What a connection calls on its node."""

    def frame_received(self, connection: Connection, frame: enp.Frame) -> None:
        """One frame from the peer; must not block (enqueue and return)."""

    def connection_lost(self, connection: Connection, reason: BaseException | None) -> None:
        """The last link is gone (called once); every watcher of the peer must be told."""


def tune_liveness(sock: socket.socket, bound: float = DEFAULT_LIVENESS) -> None:
    """Make the kernel declare the link dead within ``bound`` seconds of silence.

    Keepalive probes start after ``step = bound/5`` idle seconds and repeat every
    ``step``; ``TCP_USER_TIMEOUT`` = ``bound - step`` then kills the connection at
    the first probe (or retransmission) that finds nothing acknowledged for that
    long, so the loss is seen after ``bound - step`` to ``bound`` seconds. Options
    the platform lacks are skipped.

    Raises ``ValueError`` for a bound under 4 s (the kernel counts in seconds).
    """
    if bound < 4:
        raise ValueError("liveness bound must be at least 4 seconds")
    step = max(1, int(bound / 5))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", step), ("TCP_KEEPINTVL", step), ("TCP_KEEPCNT", 3)):
        opt = getattr(socket, name, None)
        if opt is not None:
            sock.setsockopt(socket.IPPROTO_TCP, opt, value)
    opt = getattr(socket, "TCP_USER_TIMEOUT", None)
    if opt is not None:
        sock.setsockopt(socket.IPPROTO_TCP, opt, int((bound - step) * 1000))


class _Link(asyncio.Protocol):
    """One TCP link of a connection, after its handshake."""

    def __init__(self, conn: Connection, transport: asyncio.Transport) -> None:
        self.conn = conn
        self.transport = transport
        self.reader = enp.FrameReader(conn.max_message_size)
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.pending = 0
        # unsent bytes allowed before the next flush: the bound less what the transport
        # held after the last one (it only shrinks in between: no query per frame)
        self.room = conn.max_pending
        self.bytes_in = self.bytes_out = 0
        self._call_soon = asyncio.get_running_loop().call_soon

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            frames = self.reader.feed(data)
        except enp.FrameError as e:
            log.error("link with %s: %s; closing it", self.conn.peer, e)
            self.transport.abort()
            return
        conn = self.conn
        if frames:
            conn.frames_in += len(frames)
            try:
                conn.receive(conn, frames)
            except Exception:
                log.exception("node failed to take frames from %s", conn.peer)
        if self.reader.failed is not None:  # the frames before the bad header went through
            log.error("link with %s: %s; closing it", conn.peer, self.reader.failed)
            self.transport.abort()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn._link_lost(self, exc)

    def write(self, data: bytes) -> None:
        self.out.append(data)
        self.pending += len(data)
        if self.pending > self.room:
            # a peer that stopped reading: bound our memory, the watchers get NoConnection
            log.error("link with %s: over %d bytes unsent; closing it", self.conn.peer, self.conn.max_pending)
            self.out.clear()
            self.transport.abort()
            return
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        transport = self.transport
        if not self.out or transport.is_closing():
            return  # a dying link keeps its frames: a vacancy takes them (Connection._vacate)
        data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
        self.out.clear()
        self.pending = 0
        self.bytes_out += len(data)
        transport.write(data)
        self.room = self.conn.max_pending - transport.get_write_buffer_size()


class _Vacancy:
    """A pool slot whose link was lost: it holds the slot's frames, in order, until a
    link takes the slot (:meth:`Connection._seat`) or :data:`_HOLD` runs out."""

    __slots__ = ("conn", "frames", "size", "timer")

    def __init__(self, conn: Connection, frames: list[bytes]) -> None:
        self.conn = conn
        self.frames = frames
        self.size = sum(len(f) for f in frames)
        self.timer = asyncio.get_running_loop().call_later(_HOLD, conn._hand_over, self)

    def write(self, data: bytes) -> None:
        self.frames.append(data)
        self.size += len(data)
        if self.size > self.conn.max_pending:  # bounded memory: a surviving link takes them now
            self.conn._hand_over(self)


class Connection:
    """A peer node reached over one or more links (built from a first-link handshake).

    ``encode_caches`` are the tables we sent in our Introduce (None: empty).
    ``liveness`` is the silent-peer bound applied to each link's socket;
    ``max_pending`` the unsent bytes a link may hold before it is closed (a peer
    that stopped reading must not grow our memory without bound). ``changes`` is
    notified when a link is added or lost; ``tasks`` receives the task that re-dials
    lost links (its owner cancels and awaits it at close). ``receiver``, if given,
    takes the frames each read completes, as bytes in arrival order (the node's fast
    path; it must treat every frame as ``seam.frame_received`` would,
    :func:`enp.decode_frame` giving the frame).
    """

    def __init__(
        self,
        result: handshake.HandshakeResult,
        seam: NodeSeam,
        encode_caches: edf.EncodeCaches | None = None,
        max_message_size: int = 0,
        liveness: float = DEFAULT_LIVENESS,
        max_pending: int = DEFAULT_MAX_PENDING,
        changes: Changes | None = None,
        tasks: set[asyncio.Task[None]] | None = None,
        receiver: Callable[[Connection, list[bytes]], None] | None = None,
    ) -> None:
        if result.joined or result.caches is None:
            raise ValueError("a connection starts from a first-link handshake, not a Join")
        self.peer = result.peer
        self.id = result.connection_id
        self.peer_creation = result.peer_creation
        self.peer_flags = result.peer_flags
        self.peer_max_message_size = result.peer_max_message_size
        self.pool_size = result.pool_size
        self.pool_dsn = list(result.pool_dsn)
        self.caches: edf.DecodeCaches = result.caches
        self.encode_caches = encode_caches
        self.atom_ids = {a.text: i for i, a in encode_caches.atoms.items()} if encode_caches else {}
        self.name_fields: dict[str, tuple[enp.FrameType, bytes]] = {}
        """Target name -> the frame type and bytes a plain send to it carries (see :meth:`name_field`)."""
        self.max_message_size = max_message_size
        self.liveness = liveness
        self.max_pending = max_pending
        self.seam = seam
        self.receive: Callable[[Connection, list[bytes]], None] = receiver or self._frames_received
        """Takes the whole frames each read completes (their bytes, header included)."""
        self.links: list[_Link] = []
        """The live links (the slots' links and any spare)."""
        self._slots: list[_Link | _Vacancy] = []  # a sender's key picks a slot: see the module docstring
        self._rr = itertools.count()
        self._lost = False
        self._closing = False
        self._changes = changes if changes is not None else Changes()
        self._tasks: set[asyncio.Task[None]] = tasks if tasks is not None else set()
        self._dial: tuple[handshake.Options, Any] | None = None  # set by dial_pool: we re-dial lost links
        self._mender: asyncio.Task[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.frames_in = self.frames_out = 0
        self.links_lost = self.links_redialled = 0
        self._gone_in = self._gone_out = 0  # bytes of links no longer live

    # links -------------------------------------------------------------------
    def add_link(self, transport: asyncio.Transport, tail: bytes = b"") -> None:
        """Adopt a link whose handshake is done; ``tail`` holds bytes already read past it.

        Raises ``gen.NoConnectionError`` if the connection is already lost.
        """
        if self._lost:
            transport.abort()
            raise gen.NoConnectionError(f"connection to {self.peer} is closed")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                tune_liveness(sock, self.liveness)
            except OSError as e:
                log.debug("cannot tune keepalive: %s", e)
        link = _Link(self, transport)
        self.links.append(link)
        transport.set_protocol(link)
        self._seat(link)
        if tail:
            link.data_received(tail)
        if not transport.is_closing():
            transport.resume_reading()

    def _seat(self, link: _Link) -> None:
        """Give a new link a slot: a vacancy first (its held frames go out first), then a
        slot a surviving link serves for a lost one, else a new slot while the pool is
        short; otherwise it is a spare (it reads, and takes the next slot that falls vacant)."""
        slots = self._slots
        for i, s in enumerate(slots):
            if type(s) is _Vacancy:
                s.timer.cancel()
                slots[i] = link
                for data in s.frames:
                    link.write(data)
                return
        for i, s in enumerate(slots):
            if type(s) is _Link and self._stand_in(i):
                s.flush()  # its bytes reach the socket before any of the new link's
                slots[i] = link
                return
        if len(slots) < max(1, self.pool_size):
            slots.append(link)

    def _stand_in(self, i: int) -> bool:
        """Whether slot ``i`` is served by a link seated in an earlier slot (after a hand-over)."""
        s = self._slots[i]
        return type(s) is _Link and self._slots.index(s) != i

    def _holes(self) -> bool:
        return any(type(s) is _Vacancy or self._stand_in(i) for i, s in enumerate(self._slots))

    def _hand_over(self, vacancy: _Vacancy) -> None:
        """The vacancy waited long enough (or holds too much): a surviving link takes its
        frames and serves its slot until a re-dialled link takes it back."""
        vacancy.timer.cancel()
        if vacancy not in self._slots:
            return
        i = self._slots.index(vacancy)
        live = [s for s in self._slots if type(s) is _Link] or self.links
        if not live:
            return  # the connection is being lost: nothing to hand to
        link = live[i % len(live)]
        self._slots[i] = link
        for data in vacancy.frames:
            link.write(data)
        vacancy.frames = []

    def can_join(self, connection_id: str) -> bool:
        """Whether a Join for ``connection_id`` may add a link (ids match, pool not full)."""
        return (
            not self._lost and not self._closing and connection_id == self.id and len(self.links) < self.pool_size + 1
        )

    async def dial_pool(self, options: handshake.Options, ssl_context: Any = None) -> int:
        """As the dialer, open the extra links the acceptor offered (PoolSize - 1), each
        with a Join. Returns how many joined; a failed Join is logged, not raised. From
        now on this side re-dials a lost link (see the module docstring)."""
        self._dial = (options, ssl_context)
        joined = 0
        for i in range(self.pool_size - 1):
            if not self.pool_dsn or self._lost:
                break
            host, _, port = self.pool_dsn[i % len(self.pool_dsn)].rpartition(":")
            try:
                link = await handshake.open_link(host.strip("[]"), int(port), ssl_context)
                result = await handshake.join(link, options, self.id)
                transport, tail = link.transport, result.tail
                assert transport is not None
                self.add_link(transport, tail)
                joined += 1
            except (handshake.HandshakeError, gen.NoConnectionError, ValueError) as e:
                log.warning("extra link to %s failed: %s", self.peer, e)
        return joined

    def _link_lost(self, link: _Link, exc: Exception | None) -> None:
        if link in self.links:
            self.links.remove(link)
            self._gone_in += link.bytes_in
            self._gone_out += link.bytes_out
            if self.links and not self._lost and not self._closing:
                self.links_lost += 1
                self._vacate(link)
                self._changes.notify()
        if not self.links and not self._lost:
            self._lost = True
            self._end_mending()
            reason = gen.NoConnectionError(f"connection to {self.peer} lost{': ' + str(exc) if exc else ''}")
            if not self.closed.done():
                self.closed.set_result(None)
            self.seam.connection_lost(self, reason)

    def _vacate(self, link: _Link) -> None:
        """``link`` is gone while others live: its slots become vacancies (the first takes
        the frames it had not written yet); a spare link takes one at once, else the
        dialling side re-dials."""
        held, link.out = link.out, []
        slots = self._slots
        for i, s in enumerate(slots):
            if s is link:
                slots[i] = _Vacancy(self, held)
                held = []
        for spare in [lk for lk in self.links if lk not in slots]:
            self._seat(spare)
        if self._dial is not None and self.pool_dsn and self._mender is None and self._holes():
            self._mender = asyncio.get_running_loop().create_task(self._mend())
            self._tasks.add(self._mender)
            self._mender.add_done_callback(self._mended)

    def _mended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._mender is task:
            self._mender = None
        if not task.cancelled() and task.exception() is not None:
            log.error("re-dialling %s failed", self.peer, exc_info=task.exception())

    async def _mend(self) -> None:
        """Re-dial (Join) until no slot lacks its own link or the connection ends."""
        assert self._dial is not None
        options, ssl_context = self._dial
        delay = _REDIAL_FIRST
        while self._holes() and not self._lost and not self._closing:
            host, _, port = random.choice(self.pool_dsn).rpartition(":")
            try:
                link = await handshake.open_link(host.strip("[]"), int(port), ssl_context)
                result = await handshake.join(link, options, self.id)
                transport = link.transport
                assert transport is not None
                self.add_link(transport, result.tail)
                self.links_redialled += 1
                self._changes.notify()
                delay = _REDIAL_FIRST
                continue
            except gen.NoConnectionError:
                return  # lost meanwhile
            except (handshake.HandshakeError, ValueError) as e:
                log.info("re-dialling a link to %s failed: %s; next try in %.2f s", self.peer, e, delay)
            await asyncio.sleep(delay)  # the backoff between attempts
            delay = min(2 * delay, _REDIAL_MAX)

    def _end_mending(self) -> None:
        if self._mender is not None:
            self._mender.cancel()
        for s in self._slots:
            if type(s) is _Vacancy:
                s.timer.cancel()

    def _frames_received(self, connection: Connection, frames: list[bytes]) -> None:
        """Decode each frame and hand it to the seam (an undecodable one is logged and
        dropped, one the node fails to take is logged)."""
        for raw in frames:
            try:
                frame = enp.decode_frame(raw, self.caches.atoms, self.max_message_size)
            except enp.FrameError as e:
                log.warning("frame from %s dropped: %s", self.peer, e)
                continue
            try:
                self.seam.frame_received(self, frame)
            except Exception:
                log.exception("node failed to take a frame from %s", self.peer)

    # sending ------------------------------------------------------------------
    def send(
        self, frame: enp.Frame, key: int = 0, compression: enp.Compression | None = None, threshold: int = 1024
    ) -> None:
        """Encode ``frame`` and queue it on link ``key mod links`` (round-robin for 0);
        compressed when ``compression`` is set and the frame exceeds ``threshold``.

        Raises ``gen.NoConnectionError`` without a link, ``MessageTooLargeError`` over
        the peer's limit, ``enp.FrameError`` for a frame that cannot be encoded.
        """
        if not self.links:
            raise gen.NoConnectionError(f"no connection to {self.peer}")
        data = enp.encode_frame(frame, self.atom_ids)
        self.send_data(data, key, None if frame.type in enp.UNCOMPRESSED else compression, threshold)

    def send_data(
        self, data: bytes, key: int = 0, compression: enp.Compression | None = None, threshold: int = 1024
    ) -> None:
        """Queue an encoded frame as :meth:`send` does (the caller knows its type may be
        compressed when it passes ``compression``).

        Raises ``gen.NoConnectionError`` without a link, ``MessageTooLargeError`` over
        the peer's limit.
        """
        if not self.links:
            raise gen.NoConnectionError(f"no connection to {self.peer}")
        if compression is not None and len(data) > threshold:
            data = enp.compress_frame(data, compression)
        if self.peer_max_message_size > 0 and len(data) > self.peer_max_message_size:
            raise MessageTooLargeError(
                f"{len(data)}-byte frame exceeds {self.peer}'s limit of {self.peer_max_message_size} bytes"
            )
        slots = self._slots
        n = key % 255 or next(self._rr)  # Go: IDs that are multiples of 255 go round-robin
        slots[n % len(slots)].write(data)
        self.frames_out += 1

    def name_field(self, name: str) -> tuple[enp.FrameType, bytes]:
        """What a plain send to the process registered as ``name`` on the peer carries
        (``enp.name_field`` with our atom table), kept in :attr:`name_fields` (bounded).

        Raises ``enp.FrameError`` for a name longer than 255 bytes.
        """
        field = enp.name_field(str.__str__(name), self.atom_ids)
        if len(self.name_fields) >= _NAME_FIELDS:
            self.name_fields.clear()
        self.name_fields[name] = field
        return field

    def decode(self, payload: bytes) -> Any:
        """Decode a frame's EDF payload with the peer's tables.

        Raises ``edf.DecodeError``.
        """
        return edf.decode(payload, self.caches)

    def encode(self, value: Any) -> bytes:
        """Encode a payload with our tables (as the peer will decode it).

        Raises ``edf.EncodeError``.
        """
        return edf.encode(value, self.encode_caches)

    def close(self) -> None:
        """Close every link (frames held for a lost link go out on a surviving one
        first); ``connection_lost`` follows once they are gone."""
        for s in list(self._slots):
            if type(s) is _Vacancy:
                self._hand_over(s)
        self._closing = True
        self._end_mending()
        for link in list(self.links):
            link.flush()
            link.transport.close()

    def abort(self) -> None:
        """Drop every link at once (unsent frames are lost)."""
        self._closing = True
        self._end_mending()
        for link in list(self.links):
            link.transport.abort()

    def stats(self) -> dict[str, int]:
        """Links (live, lost while others lived, re-dialled), frames and bytes in and out."""
        return {
            "links": len(self.links),
            "links_lost": self.links_lost,
            "links_redialled": self.links_redialled,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_in": self._gone_in + sum(lk.bytes_in for lk in self.links),
            "bytes_out": self._gone_out + sum(lk.bytes_out for lk in self.links),
        }


class _Tracker:
    """Forwards a connection's callbacks to the node and keeps the endpoint's table right."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def frame_received(self, connection: Connection, frame: enp.Frame) -> None:
        self.endpoint.seam.frame_received(connection, frame)

    def connection_lost(self, connection: Connection, reason: BaseException | None) -> None:
        if self.endpoint.connections.get(connection.peer) is connection:
            del self.endpoint.connections[connection.peer]
        self.endpoint.changes.notify()
        self.endpoint.seam.connection_lost(connection, reason)


class Endpoint:
    """A node's network below routing: its connections by peer name, its listening
    sockets (accepting first links and Joins) and dialing (first link plus pool).

    ``options`` are the node's handshake options; ``seam`` receives every frame and
    every lost connection (``receiver``: every frame as bytes, see :class:`Connection`).
    Every task it starts (one per handshake in progress, one per connection re-dialling
    a lost link) is owned here and ended by :meth:`close`.
    """

    def __init__(
        self,
        options: handshake.Options,
        seam: NodeSeam,
        *,
        server_ssl: Any = None,
        client_ssl: Any = None,
        liveness: float = DEFAULT_LIVENESS,
        max_pending: int = DEFAULT_MAX_PENDING,
        receiver: Callable[[Connection, list[bytes]], None] | None = None,
    ) -> None:
        self.options = options
        self.max_pending = max_pending
        self.seam = seam
        self.receiver = receiver
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.liveness = liveness
        self.connections: dict[str, Connection] = {}
        self._tracker = _Tracker(self)
        self.changes = Changes()
        """Notified when a connection or a link is added or lost."""
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialing: dict[str, int] = {}  # peer name -> dials in progress
        self._accepting: dict[str, int] = {}  # peer name -> first links accepted, handshake not done
        self._incoming = Changes()  # notified when a link arrives (a handshake task starts)
        self._menders: set[asyncio.Task[None]] = set()  # connections' re-dial tasks
        self._closed = False

    def _connection(self, result: handshake.HandshakeResult, link: handshake.EHSProtocol) -> Connection:
        conn = Connection(
            result,
            self._tracker,
            encode_caches=self.options.caches,
            max_message_size=self.options.max_message_size,
            liveness=self.liveness,
            max_pending=self.max_pending,
            changes=self.changes,
            tasks=self._menders,
            receiver=self.receiver,
        )
        self.connections[conn.peer] = conn
        transport, tail = link.transport, result.tail
        assert transport is not None
        conn.add_link(transport, tail)
        self.changes.notify()
        return conn

    def redialling(self) -> int:
        """Connections re-dialling a lost link now (their tasks are owned here)."""
        return len(self._menders)

    # accepting -----------------------------------------------------------------
    async def listen(self, host: str, port: int, ssl_context: Any = _DEFAULT) -> int:
        """Accept links on ``host:port`` (0: a free port); returns the bound port.
        ``ssl_context`` (default: the endpoint's ``server_ssl``; None: plain TCP) is this
        socket's TLS.

        Raises ``OSError`` if the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        ctx = self.server_ssl if ssl_context is _DEFAULT else ssl_context
        server = await loop.create_server(self._new_link, host, port, ssl=ctx)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _new_link(self) -> handshake.EHSProtocol:
        link = handshake.EHSProtocol()
        if self._closed:
            return link  # closed below as soon as it is made
        task = asyncio.get_running_loop().create_task(self._accept(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._incoming.notify()
        return link

    def _taken(self, peer: str) -> bool:
        """Whether a first link from ``peer`` is refused: we have a connection to it, or
        we are dialling it ourselves and our name sorts first (both nodes dialling each
        other at once keep the same one connection: the one the smaller name dialled)."""
        return peer in self.connections or (peer in self._dialing and self.options.name < peer)

    def _restarted(self, peer: str, creation: int) -> None:
        """``peer`` introduces itself with a new creation: it restarted, so the connection
        we hold to its previous incarnation is dead even if we have not seen it go yet
        (a crash without FIN/RST): drop it now (``connection_lost`` follows) instead of
        refusing the new incarnation as a taken name until the liveness bound."""
        conn = self.connections.get(peer)
        if conn is not None and conn.peer_creation != creation:
            log.info(
                "%s restarted (creation %d, was %d): the old connection is dropped", peer, creation, conn.peer_creation
            )
            del self.connections[peer]
            conn.abort()
            self.changes.notify()

    async def _can_join(self, peer: str, connection_id: str) -> bool:
        """Whether a Join from ``peer`` for ``connection_id`` may add a link. A Join can
        overtake its first link's final Accept (another socket: a segment delayed on the
        network, or a Go dialer that dials its pool at once): while a first link from
        ``peer`` is still in its handshake here, the Join waits for it (within the Join's
        own handshake bound) instead of being refused for a connection not made yet."""
        conn = self.connections.get(peer)
        if conn is not None and conn.can_join(connection_id):
            return True
        while peer in self._accepting and not self._closed:
            await self.changes.wait()  # notified as each of those handshakes ends
        conn = self.connections.get(peer)
        return conn is not None and conn.can_join(connection_id)

    async def _accept(self, link: handshake.EHSProtocol) -> None:
        try:
            await self._accept_link(link)
        except handshake.HandshakeError as e:
            log.info("handshake refused: %s", e)
        except Exception:  # a task nobody awaits must not lose its error: log it, drop the link
            log.exception("accepting a link failed")
            link.close()

    async def _accept_link(self, link: handshake.EHSProtocol) -> None:
        await link.connected
        if self._closed:
            link.close()
            return
        accepting: list[str] = []

        def taken(peer: str) -> bool:
            if self._taken(peer):
                return True
            # past the check: until this handshake ends, a dial to ``peer`` waits for it
            self._accepting[peer] = self._accepting.get(peer, 0) + 1
            accepting.append(peer)
            return False

        try:
            await self._accept_first_or_join(link, taken)
        finally:
            for peer in accepting:
                left = self._accepting[peer] - 1
                if left:
                    self._accepting[peer] = left
                else:
                    del self._accepting[peer]
                self.changes.notify()

    async def _accept_first_or_join(self, link: handshake.EHSProtocol, taken: Callable[[str], bool]) -> None:
        result = await handshake.accept(
            link, self.options, taken=taken, can_join=self._can_join, restarted=self._restarted
        )
        if result.joined:
            conn = self.connections.get(result.peer)
            transport = link.transport
            assert transport is not None
            if conn is None or not conn.can_join(result.connection_id):
                transport.abort()
                return
            conn.add_link(transport, result.tail)
            self.changes.notify()
            return
        if result.peer in self.connections:  # lost a race with our own dial to that peer
            link.close()
            return
        self._connection(result, link)

    # dialing --------------------------------------------------------------------
    async def connect(self, host: str, port: int, peer: str | None = None, ssl_context: Any = _DEFAULT) -> Connection:
        """The connection to the node at ``host:port`` (``peer``: the name expected
        there), dialling it and its pool if there is none yet. ``ssl_context`` (default:
        the endpoint's ``client_ssl``; None: plain TCP) is this dial's TLS.

        If ``peer`` dials us at the same moment, one connection survives (see
        :meth:`_taken`) and both sides get it: a dial the peer refused for that
        reason waits for the peer's own link to be accepted here, and no dial starts
        while a first link from ``peer`` is past our check (its handshake decides).

        Raises ``handshake.HandshakeError`` if the peer cannot be reached or refuses.
        """
        if peer is not None and peer in self._accepting:
            # the peer's own first link is past our check: dialling now would make a second
            # connection (each side could keep a different one); that handshake decides
            await self._wait_for(peer, lambda: peer in self._accepting)
        if peer is not None and peer in self.connections:
            return self.connections[peer]
        ctx = self.client_ssl if ssl_context is _DEFAULT else ssl_context
        if peer is not None:
            self._dialing[peer] = self._dialing.get(peer, 0) + 1
        try:
            link = await handshake.open_link(host, port, ctx, timeout=3.0)
            result = await handshake.dial(link, self.options, expect_peer=peer)
        except handshake.HandshakeError:
            if peer is not None:
                conn = await self._accepted(peer)
                if conn is not None:
                    return conn
            raise
        finally:
            if peer is not None:
                left = self._dialing[peer] - 1
                if left:
                    self._dialing[peer] = left
                else:
                    del self._dialing[peer]
        existing = self.connections.get(result.peer)
        if existing is not None:
            link.close()
            return existing
        conn = self._connection(result, link)
        await conn.dial_pool(self.options, ctx)
        return conn

    async def _accepted(self, peer: str) -> Connection | None:
        """After a refused dial: the connection ``peer``'s own dial makes here, if that
        was why (None otherwise).

        A first link from ``peer`` already past our check (we accepted it before we
        started dialling, and the peer refused our crossing one) is waited for, whatever
        the names. Only a peer whose name sorts first refuses us for dialling it at the
        same time (:meth:`_taken`), so only then is it worth waiting for a link that has
        not arrived yet (up to :data:`_CROSSING_GRACE`) and for the handshakes in
        progress to finish (up to the handshake timeout).
        """
        if not peer < self.options.name:
            await self._wait_for(peer, lambda: peer in self._accepting)
            return self.connections.get(peer)
        loop = asyncio.get_running_loop()
        start = loop.time()

        def waiting() -> bool:
            # a handshake in progress (perhaps the peer's) may take the handshake timeout;
            # none: the peer's link has not arrived yet (a short grace)
            return loop.time() < start + (self.options.timeout if self._tasks else _CROSSING_GRACE)

        await self._wait_for(peer, waiting)
        return self.connections.get(peer)

    async def _wait_for(self, peer: str, go_on: Callable[[], bool]) -> None:
        """Wait until ``peer`` has a connection, the endpoint closes or ``go_on()`` is
        false (checked at each change: a connection or link added or lost, a link
        arriving, a handshake ending, and every 50 ms: ``go_on`` may be a deadline)."""
        loop = asyncio.get_running_loop()
        while peer not in self.connections and not self._closed and go_on():
            change = loop.create_task(self.changes.wait())
            incoming = loop.create_task(self._incoming.wait())
            try:
                await asyncio.wait([change, incoming, *self._tasks], timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            finally:
                change.cancel()
                incoming.cancel()
                await asyncio.gather(change, incoming, return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting, end the handshakes in progress, close every connection
        (``connection_lost`` follows for each)."""
        self._closed = True
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        lost = [conn.closed for conn in self.connections.values()]
        for conn in list(self.connections.values()):
            conn.close()
        if lost:
            await asyncio.wait(lost, timeout=5)  # a peer that stopped reading: abort below
        for conn in list(self.connections.values()):
            conn.abort()
        for task in list(self._menders):
            task.cancel()
        if self._menders:
            await asyncio.gather(*self._menders, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
