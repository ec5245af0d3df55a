"""The seam between a connection meta-process and the engine that moves its frames.

``Connection`` (the actor side) only sees :class:`Transport`: ``read()`` the next
data message, ``send()`` a frame without waiting, ``close()``/``abort()``, and
``buffered()``, the bytes waiting for the peer. Two engines implement it:

* :class:`AiohttpTransport` (``web.create_web_server`` and the client): aiohttp's
  C parser reads; our :class:`~.frames.FrameEncoder` writes. Frames queued in one
  loop turn go to the socket in one ``writelines`` call, and ``buffered()`` is
  the real transport buffer, so backpressure policies see what the kernel does.
* :class:`AsgiTransport` (a foreign ASGI server): events through ``receive``/
  ``send``; a writer task the connection owns drains a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import EofStream, WSMsgType
from aiohttp._websocket.models import WebSocketError

from .aiohttp_fixes import valid_close_code
from .frames import FrameEncoder
from .messages import close_body, cut_close_reason, sendable_close_code

if sys.platform.startswith("linux"):
    import fcntl
    import termios

__all__ = ["AiohttpTransport", "AsgiTransport", "Transport", "address"]

OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY


class Transport:
    """What a connection needs from an engine. Subclasses fill in the I/O."""

    remote_addr = ""
    local_addr = ""
    subprotocol: str | None = None
    compression = False
    close_code: int | None = None  # what ended the connection, once known
    close_reason = ""
    close_sent = False
    activity = 0  # bumped on every frame received (data or control): liveness for keepalive

    async def read(self) -> tuple[int, bytes] | None:
        """The next data message as ``(opcode, payload)``, or ``None`` once the connection ended."""
        raise NotImplementedError

    def send(self, opcode: int, payload: bytes) -> None:
        """Queue a frame; never waits."""
        raise NotImplementedError

    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer's socket."""
        raise NotImplementedError

    def progress(self) -> tuple[int, int]:
        """``(taken, pending)``: a count that grows while the peer takes our output, and the bytes
        it has yet to take. Keepalive: a peer whose pong is stuck behind a big send is alive."""
        b = self.buffered()
        return -b, b

    def close(self, code: int, reason: str = "", wait_reply: bool = True) -> None:
        """Send a close frame (once). ``wait_reply``: keep reading until the peer answers
        (bounded by a grace period); otherwise close the socket right after the frame."""
        raise NotImplementedError

    def abort(self, code: int | None = None, reason: str = "") -> None:
        """Drop the connection now (nothing more is written); ``code`` is what the worker is told."""
        raise NotImplementedError

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Context for the connection's lifetime (an ASGI transport runs its writer inside)."""
        return contextlib.nullcontext()

    def _ended(self, code: int | None, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason


def address(info: Any) -> str:
    """A socket address as text, the one way every path writes it: ``host:port``, an IPv6
    host bracketed (``[::1]:8080``); a Unix socket path as it is; ``""`` for none."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        host = info[0]
        return f"[{host}]:{info[1]}" if ":" in str(host) else f"{host}:{info[1]}"
    return str(info) if info else ""


class AiohttpTransport(Transport):
    """An upgraded aiohttp connection (server side or client side)."""

    def __init__(
        self,
        reader: Any,
        transport: asyncio.Transport,
        *,
        client: bool,
        compress: int,
        no_takeover: bool,
        subprotocol: str | None,
        loop: asyncio.AbstractEventLoop,
        max_message_size: int = 0,
        owner: Any = None,
    ) -> None:
        self._reader = reader  # aiohttp's WebSocketDataQueue, fed by its C parser
        self._max = max_message_size  # exact; aiohttp's own check is one byte looser (aiohttp_fixes)
        self._owner = owner  # aiohttp's client response: kept while open, closed by _finish
        self._transport = transport
        self._loop = loop
        self._encoder = FrameEncoder(mask=client, compress=compress, no_takeover=no_takeover)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._closed = False
        self._grace: asyncio.TimerHandle | None = None
        self.subprotocol = subprotocol
        self.compression = compress > 0
        self.remote_addr = address(transport.get_extra_info("peername"))
        self.local_addr = address(transport.get_extra_info("sockname"))

    async def read(self) -> tuple[int, bytes] | None:
        reader = self._reader
        while True:
            if self._closed:
                return None
            try:
                msg = await reader.read()
            except EofStream:
                self._ended(1006, "connection closed without a close frame")
                self._finish()
                return None
            except WebSocketError as e:
                self._fail(e.code, str(e.args[1]) if len(e.args) > 1 else str(e))
                return None
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                self._ended(1006, str(e) or type(e).__name__)
                self._finish()
                return None
            self.activity += 1
            t = msg[0]
            if t is _TEXT:
                data = msg[1]
                if self._max and len(data) > self._max:
                    self._fail(1009, f"message of {len(data)} bytes exceeds the limit of {self._max}")
                    return None
                if not data.isascii():  # ASCII is valid UTF-8; checking it allocates nothing
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        self._fail(1007, "invalid UTF-8 in a text message")
                        return None
                return OP_TEXT, data
            if t is _BINARY:
                data = msg[1]
                if self._max and len(data) > self._max:
                    self._fail(1009, f"message of {len(data)} bytes exceeds the limit of {self._max}")
                    return None
                return OP_BINARY, data
            if t is WSMsgType.PING:
                if not self.close_sent:
                    self.send(OP_PONG, msg[1])
                continue
            if t is WSMsgType.PONG:
                continue
            if t is WSMsgType.CLOSE:
                code, reason = msg[1], msg[2] or ""
                if code and not valid_close_code(code):
                    self._fail(1002, f"invalid close code {code}")
                    return None
                self._ended(code if code else 1005, reason)
                if not self.close_sent:
                    # echo the peer's code, as gorilla and RFC 6455 §5.5.1 do
                    self._send_close(code if code and code != 1005 else None, "")
                self._finish()
                return None
            if t is WSMsgType.ERROR:
                exc = msg[1]
                code = getattr(exc, "code", 1006)
                self._fail(code, str(exc))
                return None
            # CLOSING/CLOSED sentinels: the other side of aiohttp closed us
            self._ended(1006, "connection closed")
            self._finish()
            return None

    def _fail(self, code: int, reason: str) -> None:
        """A protocol error: send a close frame with ``code`` (if it may go on the wire) and drop the connection."""
        self._ended(code, reason)
        if not self.close_sent and sendable_close_code(code):
            self._send_close(code, cut_close_reason(reason))
        self._finish()

    def send(self, opcode: int, payload: bytes) -> None:
        if self._closed or self.close_sent:
            return
        frames = self._encoder.encode(opcode, payload)
        self._out.extend(frames)
        self._out_bytes += len(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        self._out = []
        self._out_bytes = 0
        if not self._closed and not self._transport.is_closing():
            if len(out) == 1:
                self._transport.write(out[0])
            else:
                self._transport.writelines(out)

    def buffered(self) -> int:
        if self._closed:
            return 0
        return self._transport.get_write_buffer_size() + self._out_bytes

    def progress(self) -> tuple[int, int]:
        """On Linux, from the kernel: bytes the peer's TCP acknowledged, and ours plus the
        kernel's unacknowledged bytes (its send buffer can hold megabytes, so what leaves
        our own buffer says nothing about the peer)."""
        b = self.buffered()
        sock = self._transport.get_extra_info("socket")
        if sock is not None and _TCP_INFO is not None:
            try:
                info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCPI_BYTES_ACKED_END)
                outq = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # == SIOCOUTQ
            except (OSError, ValueError):
                info = b""
            if len(info) >= _TCPI_BYTES_ACKED_END:
                acked = int.from_bytes(info[_TCPI_BYTES_ACKED_END - 8 : _TCPI_BYTES_ACKED_END], sys.byteorder)
                return acked, b + int.from_bytes(outq, sys.byteorder)
        return -b, b

    def _send_close(self, code: int | None, reason: str) -> None:
        payload = close_body(code, reason) if code is not None else b""
        self._out.extend(self._encoder.encode(OP_CLOSE, payload))
        self._flush()
        self.close_sent = True

    def close(self, code: int, reason: str = "", wait_reply: bool = True) -> None:
        if self._closed or self.close_sent:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._send_close(code, reason)
        if wait_reply:
            # read() ends when the peer answers; a peer that never does is dropped after the grace
            self._grace = self._loop.call_later(_CLOSE_GRACE, self._finish)
        else:
            self._finish()

    def abort(self, code: int | None = None, reason: str = "") -> None:
        if code is not None:
            self._ended(code, reason)
        self._finish(abort=True)

    def _finish(self, abort: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._out = []
        self._out_bytes = 0
        if self._grace is not None:
            self._grace.cancel()
        t = self._transport
        if abort or t.get_write_buffer_size() > 0:
            t.abort()
        else:
            t.close()
        # Wake a reader parked in read(): it sees the end at once.
        with contextlib.suppress(Exception):
            self._reader.feed_eof()
        owner, self._owner = self._owner, None
        if owner is not None:
            with contextlib.suppress(Exception):
                owner.close()  # releases aiohttp's connection record (no "Unclosed connection" at GC)


_CLOSE_GRACE = 2.0  # seconds a server waits for the peer to close TCP after the close handshake
# struct tcp_info's u64 tcpi_bytes_acked ends at byte 128 (Linux >= 4.1); elsewhere progress() falls back
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_TCPI_BYTES_ACKED_END = 128


ASGIReceive = Callable[[], Awaitable[Mapping[str, Any]]]
ASGISend = Callable[[Mapping[str, Any]], Awaitable[None]]


class AsgiTransport(Transport):
    """A WebSocket accepted through ASGI; the server does the framing."""

    def __init__(
        self,
        receive: ASGIReceive,
        send: ASGISend,
        *,
        remote_addr: str,
        local_addr: str,
        subprotocol: str | None,
        max_message_size: int,
    ) -> None:
        self._receive = receive
        self._send = send
        self._queue: deque[Mapping[str, Any]] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self._max = max_message_size
        self.remote_addr = remote_addr
        self.local_addr = local_addr
        self.subprotocol = subprotocol

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        writer = asyncio.get_running_loop().create_task(self._writer(), name="ergopy asgi websocket writer")
        try:
            yield
        finally:
            self._closed = True
            self._wakeup.set()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _writer(self) -> None:
        while True:
            while self._queue:
                event = self._queue.popleft()
                self._queued_bytes -= len(event.get("bytes") or b"") + len((event.get("text") or "").encode())
                try:
                    await self._send(event)
                except Exception as e:
                    self._ended(1006, str(e))
                    self._closed = True
                    return
                if event["type"] == "websocket.close":
                    self._closed = True
                    return
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def read(self) -> tuple[int, bytes] | None:
        while not self._closed:
            try:
                event = await self._receive()
            except Exception as e:
                self._ended(1006, str(e))
                return None
            kind = event["type"]
            if kind == "websocket.receive":
                self.activity += 1
                data = event.get("bytes")
                if data is not None:
                    if len(data) > self._max:
                        self.close(1009, "message too big")
                        continue
                    return OP_BINARY, data
                text = event.get("text") or ""
                body = text.encode()
                if len(body) > self._max:
                    self.close(1009, "message too big")
                    continue
                return OP_TEXT, body
            if kind == "websocket.disconnect":
                self._ended(event.get("code", 1005), event.get("reason") or "")
                self._closed = True
                return None
        return None

    def _enqueue(self, event: Mapping[str, Any], size: int) -> None:
        if self._closed or self.close_sent:
            return
        self._queue.append(event)
        self._queued_bytes += size
        self._wakeup.set()

    def send(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_TEXT:
            self._enqueue({"type": "websocket.send", "text": payload.decode("utf-8", "replace")}, len(payload))
        elif opcode == OP_BINARY:
            self._enqueue({"type": "websocket.send", "bytes": payload}, len(payload))
        # ASGI has no ping/pong events: the server answers pings itself

    def buffered(self) -> int:
        return self._queued_bytes

    def close(self, code: int, reason: str = "", wait_reply: bool = True) -> None:
        if self.close_sent or self._closed:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._enqueue({"type": "websocket.close", "code": code, "reason": reason}, 0)
        self.close_sent = True

    def abort(self, code: int | None = None, reason: str = "") -> None:
        if code is not None:
            self._ended(code, reason)
        if not self.close_sent and not self._closed:
            # ASGI cannot drop TCP; the best it has is an immediate close at the head of the queue
            self._queue.clear()
            self._queued_bytes = 0
            wire = code if code is not None and sendable_close_code(code) else 1011  # 1006 never goes on the wire
            self._queue.append({"type": "websocket.close", "code": wire, "reason": cut_close_reason(reason)})
            self.close_sent = True
            self._wakeup.set()
