"""The WebSocket Connection meta-process (server side and client side).

Its ``start()`` sends ``MessageConnect`` to its process, then one ``Message`` per
data message read, then, whatever ends the connection, ``MessageDisconnect``
with the close code and reason: in that order, each with the connection's alias
as ``id``. A ``websocket.Message`` sent to the alias is written to the peer.
Control frames are answered here (a ping gets its pong) and never delivered.

The meta-process ends ``normal`` when the close code is 1000 or 1001, as Ergo's;
otherwise with :class:`CloseError` (code and reason), which monitors and links of its
alias receive. Each expected end logs one line and no traceback: a peer's abnormal
close at info, a process that can not take the connection's messages (gone, or its
mailbox full, said as such) at error, then the connection closes with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ... import gen
from . import upgrade
from .engine import WSProtocol
from .messages import (
    Message,
    MessageConnect,
    MessageDisconnect,
    MessageType,
    cut_close_reason,
    parse_close_body,
    sendable_close_code,
)
from .options import ConnectionOptions, Limits, SlowConsumerPolicy, handshake_timeout
from .transport import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Transport

__all__ = ["CloseError", "Connection", "ConnectError", "ProcessReport", "SlowConsumerError", "create_connection"]

_TYPES = {1: MessageType.TEXT, 2: MessageType.BINARY}
_CLOSE_FOR_REASON_DEFAULT = 1011  # an internal error ended the connection
_NO_HEADERS: Mapping[str, str] = {}
_TIMER_SLACK = 0.005  # loop timers may fire up to a clock tick early (uvloop counts milliseconds)


class ConnectError(gen.Error):
    """``create_connection`` could not open the WebSocket (refused, handshake failed, timed out)."""


class SlowConsumerError(gen.Error):
    """The peer stopped reading and more than ``outbound_limit`` bytes waited for it."""


class CloseError(gen.Error):
    """Why a connection ended when its close code is not 1000 or 1001 (as Ergo's connection
    returns gorilla's ``CloseError``): the reason its meta-process terminates with, so a
    monitor (``MessageDownAlias``) or a link (``MessageExitAlias``) sees ``code`` and
    ``reason``: 1006 the peer vanished, 1002/1007 a protocol error, 1009 a message too
    big, 1011 a keepalive timeout or no process for the connection, 4xxx an
    application's own close, 1005 a close frame without a code.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed with {code}: {reason}" if reason else f"websocket closed with {code}")
        self.code = code
        self.reason = reason


class ProcessReport:
    """The processes of a handler's pool that could not be given a connection, each logged
    once (until a connection reaches it again), not once per connection."""

    __slots__ = ("missing",)

    def __init__(self) -> None:
        self.missing: set[str] = set()

    def lost(self, meta: gen.MetaProcess, name: str, error: gen.Error) -> None:
        """``name`` did not take a connection: log it once, at error."""
        if name in self.missing:
            meta.log.debug("no process %r for connection: %s", name, error)
            return
        self.missing.add(name)
        meta.log.error(
            "process %r of the websocket pool can not take connections (%s): they close with 1011 "
            "(logged once until it takes one again)",
            name,
            error,
        )

    def found(self, name: str) -> None:
        """``name`` took a connection again."""
        self.missing.discard(name)


def _send_failure(to: Any, error: gen.Error) -> str:
    """The close reason (<= 123 bytes) for a message the connection's process could not take."""
    if isinstance(error, gen.MailboxFullError):
        return "the process for this connection is overloaded (mailbox full)"
    return "no process for this connection"


class Connection(gen.MetaBehavior):
    """One WebSocket connection as a meta-process. Made by the handler, or by ``create_connection``."""

    # Every idle connection holds one: in slots its 31 fields take 8 bytes each, where an
    # instance dict of 30 keys or more stops sharing them with the other instances and costs
    # 1.6 KiB (subclasses still get a dict for fields of their own).
    __slots__ = (
        "_closed",
        "_end",
        "_ended",
        "_headers",
        "_idle_seen",
        "_idle_since",
        "_limits",
        "_loop",
        "_meta",
        "_next_ping",
        "_on_end",
        "_path",
        "_ping_at",
        "_ping_deadline",
        "_ping_grace",
        "_ping_half",
        "_ping_progress",
        "_ping_seen",
        "_process_name",
        "_query",
        "_report",
        "_session",
        "_t",
        "_terminated",
        "_timer",
        "_to",
        "bytes_in",
        "bytes_out",
        "messages_dropped",
        "messages_in",
        "messages_out",
    )

    def __init__(
        self,
        transport: Transport,
        process: str,
        limits: Limits,
        *,
        path: str = "/",
        query: str = "",
        headers: Mapping[str, str] | None = None,
        session: Any = None,
        report: ProcessReport | None = None,
    ) -> None:
        self._t = transport
        self._process_name = process
        self._limits = limits
        self._path = path
        self._query = query
        self._headers: Mapping[str, str] = headers if headers is not None else {}
        self._session = session
        self._report = report
        self._end: BaseException | None = None  # what start() ended with, already logged
        self._meta: gen.MetaProcess | None = None
        self._to: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed: asyncio.Future[None] | None = None  # made by wait_closed() if anyone waits
        self._ended = False
        self._on_end: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ping_seen = -1
        self._ping_progress = 0  # what the peer had taken when the ping went out
        self._ping_at = 0  # ... and where the ping is in our output
        self._ping_half = 0.0  # when to look whether the ping is still behind earlier output (0: no look)
        self._ping_grace = False  # it was then: its pong gets one more ping_timeout (see _tick)
        self._idle_seen = 0  # data messages in + out when the idle clock last restarted
        self._idle_since = 0.0
        self._next_ping = 0.0  # when the next keepalive ping is due (loop time)
        self._ping_deadline = 0.0  # when the ping that is out must have been answered
        self._terminated = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        self.messages_dropped = 0

    # ---- meta-process callbacks -------------------------------------------------------------

    def init(self, process: gen.MetaProcess) -> None:
        self._meta = process
        self._to = gen.Atom(self._process_name) if self._process_name else process.parent
        self._loop = asyncio.get_running_loop()
        self._idle_since = self._loop.time()

    async def start(self) -> None:
        """Deliver ``MessageConnect``, each message read, then ``MessageDisconnect``.

        Returns for a close with 1000/1001; raises :class:`CloseError` otherwise (the
        meta-process's reason), also when the connection's process can not take a
        message (closed with 1011).
        """
        meta = self._meta
        assert meta is not None
        t = self._t
        to = self._to
        alias = meta.id
        send = meta.send
        connect = MessageConnect(
            alias, t.remote_addr, t.local_addr, self._path, self._query, self._headers, t.subprotocol
        )
        # only MessageConnect needed these: a long-lived connection keeps no request headers
        self._headers = _NO_HEADERS
        try:
            send(to, connect)
            del connect
        except gen.Error as e:
            why = _send_failure(to, e)
            if self._report is not None and not isinstance(e, gen.MailboxFullError):
                self._report.lost(meta, self._process_name, e)
            else:
                meta.log.error("unable to send websocket.MessageConnect to %s: %s; closing with 1011", to, e)
            t.close(1011, why, wait_reply=False)
            self._resolve_closed()
            raise self._ending(CloseError(1011, why)) from e
        report = self._report
        if report is not None and report.missing:
            report.found(self._process_name)
        self._arm_timer()
        high = self._limits.mailbox_high_water
        check = max(1, min(64, high // 4)) if high > 0 else 0
        try:
            if t.push:
                await self._pushed(meta, t, to, check, high)
            else:
                await self._pulled(meta, t, to, check, high)
        finally:
            self._disarm_timer()
            if self._t.close_code is None:
                self._t.abort(1006, "")
            else:
                self._t.abort()
            # the socket is closed above; the worker hears of it before anything here awaits,
            # so even a cancelled start() delivers its MessageDisconnect
            try:
                send(to, MessageDisconnect(alias, t.close_code, t.close_reason))
            except gen.Error as e:
                if self._end is None:  # else the process was found gone or full just before: logged
                    meta.log.error("unable to send websocket.MessageDisconnect to %s: %s", to, e)
            try:
                await self._close_session()
            finally:
                self._resolve_closed()
        code = t.close_code
        if code != 1000 and code != 1001:
            end = self._ending(CloseError(code if code is not None else 1006, t.close_reason))
            if not self._terminated:
                meta.log.info("%s", end)  # the peer's doing (or a limit): one line, no traceback
            raise end

    async def _pushed(self, meta: gen.MetaProcess, t: Transport, to: Any, check: int, high: int) -> None:
        """The engine calls back with each message from its ``data_received``; this waits for the
        end, and while the worker is behind (flood control), for its backlog to drain."""
        alias = meta.id
        send = meta.send
        backlog = meta.backlog
        failed: list[CloseError] = []

        def on_message(opcode: int, body: bytes) -> None:
            self.bytes_in += len(body)
            self.messages_in += 1
            try:
                send(to, Message(alias, _TYPES[opcode], body))
            except gen.Error as e:
                why = _send_failure(to, e)
                meta.log.error("unable to send websocket.Message to %s: %s; closing with 1011", to, e)
                failed.append(self._ending(CloseError(1011, why)))
                t.close(1011, why, wait_reply=False)
                return
            if check and self.messages_in % check == 0 and backlog(to) > high:
                # Flood control: while the worker is behind, stop reading; the
                # socket's buffers fill and TCP slows the sender down.
                t.pause()

        t.attach(on_message)
        while await t.wait():
            await meta.wait_backlog(to, high, high // 2)
            t.resume()
        if failed:
            raise failed[0]

    async def _pulled(self, meta: gen.MetaProcess, t: Transport, to: Any, check: int, high: int) -> None:
        """Read message after message from a transport that is read by awaiting (ASGI)."""
        alias = meta.id
        send = meta.send
        async with t.running():
            read = t.read
            while (m := await read()) is not None:
                opcode, body = m
                self.bytes_in += len(body)
                self.messages_in += 1
                try:
                    send(to, Message(alias, _TYPES[opcode], body))
                except gen.Error as e:
                    why = _send_failure(to, e)
                    meta.log.error("unable to send websocket.Message to %s: %s; closing with 1011", to, e)
                    t.close(1011, why, wait_reply=False)
                    raise self._ending(CloseError(1011, why)) from e
                if check and self.messages_in % check == 0:
                    # Flood control: while the worker is behind, stop reading; the
                    # socket's buffers fill and TCP slows the sender down.
                    await meta.wait_backlog(to, high, high // 2)

    def _ending(self, error: CloseError) -> CloseError:
        """Remember what start() ends with (logged already): terminate() does not log it again."""
        self._end = error
        return error

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if type(message) is not Message:
            assert self._meta is not None
            self._meta.log.error("unsupported message from %s. ignored", from_)
            return None
        kind = message.type or OP_TEXT
        body = message.body
        if kind in (OP_TEXT, OP_BINARY):
            t = self._t
            if t.buffered() > self._limits.outbound_limit:
                if self._limits.slow_consumer is SlowConsumerPolicy.DROP:
                    self.messages_dropped += 1
                    return None
                t.abort(1008, "slow consumer: outbound queue over its limit")
                return SlowConsumerError(
                    f"connection {self._meta.id if self._meta else ''} stopped reading; "
                    f"more than {self._limits.outbound_limit} bytes were queued for it"
                )
            if isinstance(body, str):  # a str body is accepted and sent as UTF-8
                body = body.encode()
            t.send(kind, body)
            self.bytes_out += len(body)
            self.messages_out += 1
            return None
        if kind == OP_CLOSE:
            code, reason = parse_close_body(body)
            if len(body) == 1 or not sendable_close_code(code):
                assert self._meta is not None
                self._meta.log.warning(
                    "close code %s from %s can not be sent (RFC 6455 §7.4): closing with 1011 instead",
                    code if len(body) != 1 else "(a 1-byte body)",
                    from_,
                )
                code = _CLOSE_FOR_REASON_DEFAULT
            self._t.close(code, cut_close_reason(reason))
            return None
        if kind in (OP_PING, OP_PONG):
            if len(body) > 125:
                assert self._meta is not None
                self._meta.log.error("invalid control frame: %d bytes (at most 125)", len(body))
                return None
            self._t.send(kind, body)
            return None
        assert self._meta is not None
        self._meta.log.error("unsupported message type %r from %s. ignored", kind, from_)
        return None

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return gen.UnsupportedError("a websocket connection does not handle calls")

    def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
        t = self._t
        return {
            "local": t.local_addr,
            "remote": t.remote_addr,
            "process": str(self._to) if self._process_name else "",
            "bytes in": str(self.bytes_in),
            "bytes out": str(self.bytes_out),
            "messages in": str(self.messages_in),
            "messages out": str(self.messages_out),
            "messages dropped": str(self.messages_dropped),
            "queued bytes": str(t.buffered()),
            "subprotocol": t.subprotocol or "",
            "compression": str(t.compression).lower(),
        }

    def terminate(self, reason: BaseException) -> None:
        """Close the socket: 1000 for a normal end, 1001 on shutdown, 1008 for a slow consumer,
        1011 otherwise (nothing to close when ``start()`` ended with a ``CloseError``: the
        socket is closed already). Call it yourself if ``spawn_meta`` failed. Raises nothing."""
        if self._terminated:
            return
        self._terminated = True
        self._disarm_timer()
        r = gen.unwrap_reason(reason)
        t = self._t
        if isinstance(r, SlowConsumerError):
            t.abort(1008, "slow consumer")
        elif r is gen.TERMINATE_REASON_NORMAL:
            t.close(1000, "", wait_reply=False)
        elif r is gen.TERMINATE_REASON_SHUTDOWN:
            t.close(1001, "going away", wait_reply=False)
        elif r is not self._end:
            t.close(_CLOSE_FOR_REASON_DEFAULT, "internal error", wait_reply=False)
            if self._meta is not None and r is not gen.TERMINATE_REASON_KILL:
                self._meta.log.error("terminated abnormally: %s", reason)
        if self._meta is None:
            # never spawned (spawn_meta failed): nothing else will close the socket
            t.abort()
            if self._session is not None:
                self._session.detach()  # closes the session without awaiting; the socket is gone already
                self._session = None

    # ---- keepalive and idle ------------------------------------------------------------------

    def _arm_timer(self) -> None:
        """First arming, when the connection starts: the first ping is due one interval from now."""
        if self._loop is None or self._terminated:
            return
        if self._limits.ping_interval:
            self._next_ping = self._loop.time() + self._limits.ping_interval
        self._rearm(self._loop.time())

    def _rearm(self, now: float) -> None:
        """Wake at the earliest of: the idle deadline, the pong deadline, the next ping."""
        lim = self._limits
        due = []
        if lim.idle_timeout:
            due.append(self._idle_since + lim.idle_timeout)
        if lim.ping_interval:
            due.append(self._ping_deadline if self._ping_seen >= 0 and lim.ping_timeout else self._next_ping)
            if self._ping_half:
                due.append(self._ping_half)
        if due and self._loop is not None and not self._terminated:
            self._timer = self._loop.call_later(max(0.0, min(due) - now), self._tick)

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        """Close an idle connection; check the pong of the ping that is out; send the next ping.

        Pings go out every ``ping_interval`` and each must be answered within
        ``ping_timeout``, so a peer that vanishes is dropped (1011) at most
        ``ping_interval + ping_timeout`` after its last sign of life. A peer still
        taking the output queued before the ping is alive; one whose TCP took the ping
        behind such output only after half of ``ping_timeout`` (maybe just before the
        deadline) gets one more ``ping_timeout`` from then for its pong.
        """
        self._timer = None
        assert self._loop is not None
        t = self._t
        lim = self._limits
        now = self._loop.time()
        if lim.idle_timeout:
            # idle means no data messages either way for idle_timeout: pongs answering our
            # keepalive pings do not count
            traffic = self.messages_in + self.messages_out
            if traffic != self._idle_seen:
                self._idle_seen, self._idle_since = traffic, now
            elif now - self._idle_since >= lim.idle_timeout - _TIMER_SLACK:
                t.close(1000, "idle timeout")
                return
        if lim.ping_interval:
            if self._ping_half and now >= self._ping_half - _TIMER_SLACK:
                self._ping_half = 0.0
                # the ping went out behind output: is the peer's TCP still short of it?
                # (a peer that stopped reading took it early, or never will)
                self._ping_grace = (
                    self._ping_seen >= 0 and t.activity == self._ping_seen and t.progress()[0] < self._ping_at
                )
            if self._ping_seen >= 0 and lim.ping_timeout and now >= self._ping_deadline - _TIMER_SLACK:
                # the ping's time is up: the peer is alive if anything arrived, or if it is
                # still taking the output queued before the ping (a big send delays its pong,
                # not its life); once its TCP has taken the ping, only a pong will do (one
                # more ping_timeout for it if the ping went out behind output)
                taken, _ = t.progress()
                if t.activity != self._ping_seen or self._ping_progress < taken < self._ping_at:
                    self._ping_seen = -1  # alive
                elif self._ping_grace and taken >= self._ping_at:
                    # its TCP took the ping behind earlier output, late in its time: reading up
                    # to it and answering gets one more ping_timeout from now, once
                    self._ping_grace = False
                    self._ping_deadline = now + lim.ping_timeout
                else:
                    t.abort(1011, "keepalive ping timeout")
                    return
            if now >= self._next_ping - _TIMER_SLACK:
                if self._ping_seen >= 0 and t.activity == self._ping_seen:
                    pass  # no answer yet, and no deadline (ping_timeout off) or one more: keep waiting
                else:
                    self._ping_seen = t.activity
                    taken, pending = t.progress()
                    self._ping_progress, self._ping_at = taken, taken + pending + 1  # past the ping's first byte
                    self._ping_grace = False
                    t.send(OP_PING, b"")
                    self._ping_deadline = now + (lim.ping_timeout or 0.0)
                    self._ping_half = now + lim.ping_timeout / 2 if pending > 0 and lim.ping_timeout else 0.0
                self._next_ping = now + lim.ping_interval
        self._rearm(now)

    # ---- ending --------------------------------------------------------------------------------

    def _resolve_closed(self) -> None:
        if self._ended:
            return
        self._ended = True
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection has ended (its ``MessageDisconnect`` sent); one callback."""
        if self._ended:
            callback()
        else:
            self._on_end = callback

    async def wait_closed(self) -> None:
        """Wait until the connection has ended (at once if it never started: not spawned)."""
        if self._ended or self._loop is None:
            return
        if self._closed is None:
            self._closed = self._loop.create_future()
        await asyncio.shield(self._closed)

    async def _close_session(self) -> None:
        s = self._session
        if s is not None:
            self._session = None
            with contextlib.suppress(Exception):
                await s.close()


class _ClientHandshake(asyncio.Protocol):
    """The client socket's protocol until the server's response head is read."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()
        self._buf = b""

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        buf = self._buf + data
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            self._buf = b""
            self.done.set_result((buf[:end], buf[end + 4 :]))
        elif len(buf) > _MAX_RESPONSE_HEAD:
            self.done.set_exception(ConnectionError("the server's response head is too long"))
        else:
            self._buf = buf

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection closed during the handshake: {exc or 'EOF'}"))


_MAX_RESPONSE_HEAD = 65536


async def create_connection(options: ConnectionOptions) -> Connection:
    """Dial ``options.url`` and return the connection meta-process behaviour to ``spawn_meta``.

    Raises ``ConnectError`` if the connection or the handshake fails or takes
    longer than ``handshake_timeout``. If ``spawn_meta`` then fails, call
    ``conn.terminate(err)`` to close the socket.
    """
    url = options.url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConnectError(f"unsupported URL {url!r}: {e}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectError(f"unsupported URL {url!r}: expected ws:// or wss://")
    secure = parts.scheme == "wss"
    host = parts.hostname
    port = port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rpartition("@")[2]
    ctx = None
    if secure:
        ctx = options.ssl if options.ssl is not None else ssl.create_default_context()
    subprotocols = tuple(options.subprotocols or ())
    request, key = upgrade.client_request(
        netloc, target, dict(options.headers or {}), subprotocols, options.enable_compression
    )
    timeout = handshake_timeout(options.handshake_timeout)
    loop = asyncio.get_running_loop()
    hs = _ClientHandshake(loop)
    tp: asyncio.Transport | None = None
    try:
        try:
            async with asyncio.timeout(timeout):
                tp, _ = await loop.create_connection(
                    lambda: hs, host, port, ssl=ctx, server_hostname=host if secure else None
                )
                tp.write(request)
                head, tail = await hs.done
        finally:
            if not hs.done.done():
                hs.done.cancel()  # nobody reads it now: no "exception never retrieved" later
            elif not hs.done.cancelled():
                hs.done.exception()  # marks a failure as retrieved (it is raised here already)
        headers, subprotocol, compress, no_takeover = upgrade.check_response(
            head, key, subprotocols, options.enable_compression
        )
    except TimeoutError:
        if tp is not None:
            tp.abort()
        raise ConnectError(f"unable to connect to {url}: handshake timed out after {timeout} s") from None
    except upgrade.HandshakeError as e:
        if tp is not None:
            tp.abort()
        raise ConnectError(f"unable to connect to {url}: {e}") from e
    except (OSError, ssl.SSLError, ValueError) as e:
        if tp is not None:
            tp.abort()
        raise ConnectError(f"unable to connect to {url}: {e}") from e
    except BaseException:
        if tp is not None:
            tp.abort()
        raise
    t = WSProtocol(
        client=True,
        compress=compress,
        no_takeover=no_takeover,
        compress_threshold=options.compression_threshold,
        subprotocol=subprotocol,
        max_message_size=options.max_message_size,
        loop=loop,
    )
    tp.set_protocol(t)
    t.connection_made(tp)
    if tail:
        t.data_received(tail)
    return Connection(
        t,
        options.process,
        options.limits(),
        path=parts.path or "/",
        query=parts.query,
        headers=dict(headers),
    )
