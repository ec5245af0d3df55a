"""The seam between a connection meta-process and the engine that moves its frames.

``Connection`` (the actor side) only sees :class:`Transport`: ``read()`` the next
data message (or ``attach`` a callback: a push engine), ``send()`` a frame without waiting, ``close()``/``abort()``, and
``buffered()``, the bytes waiting for the peer. Two engines implement it:

* :class:`~.engine.WSProtocol` (``web.create_web_server`` and the client): ergopy's
  own frames on an ``asyncio.Protocol``; it pushes each message (``attach``) instead
  of being read, and writes the frames of one loop turn in one call.
* :class:`AsgiTransport` (a foreign ASGI server): events through ``receive``/
  ``send``; a writer task the connection owns drains a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from .messages import cut_close_reason, sendable_close_code

__all__ = ["AsgiTransport", "Transport", "address"]

OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10


class Transport:
    """What a connection needs from an engine. Subclasses fill in the I/O."""

    __slots__ = ()  # a subclass may keep its state in slots (one engine object per connection)

    remote_addr = ""
    local_addr = ""
    subprotocol: str | None = None
    compression = False
    close_code: int | None = None  # what ended the connection, once known
    close_reason = ""
    close_sent = False
    activity = 0  # bumped on every frame received (data or control): liveness for keepalive
    push = False  # True: messages come by attach() callbacks, not read()

    def attach(self, on_message: Callable[[int, bytes], None]) -> None:
        """Push engines: deliver every data message to ``on_message``. Raises ``NotImplementedError`` otherwise."""
        raise NotImplementedError

    async def wait(self) -> bool:
        """Push engines: until the end (False) or a ``pause()`` (True). Raises ``NotImplementedError`` otherwise."""
        raise NotImplementedError

    def pause(self) -> None:
        """Push engines: stop reading until ``resume()``. Raises ``NotImplementedError`` otherwise."""
        raise NotImplementedError

    def resume(self) -> None:
        """Push engines: read again. Raises ``NotImplementedError`` otherwise."""
        raise NotImplementedError

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
            # a subclass has these as slots or in its __dict__
            self.close_code = code  # type: ignore[misc]
            self.close_reason = reason  # type: ignore[misc]


def address(info: Any) -> str:
    """A socket address as text, the one way every path writes it: ``host:port``, an IPv6
    host bracketed (``[::1]:8080``); a Unix socket path as it is; ``""`` for none."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        host = info[0]
        return f"[{host}]:{info[1]}" if ":" in str(host) else f"{host}:{info[1]}"
    return str(info) if info else ""


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
