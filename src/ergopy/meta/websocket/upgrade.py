"""The server's opening handshake on the aiohttp engine, done here (RFC 6455 §4.2).

aiohttp's ``WebSocketResponse`` would keep, for each connection's whole life, the
HTTP request handler (its parser and queues, two suspended tasks), the request,
and a frame writer we never use (frames are written by :mod:`.frames`). Instead
the handler checks the request with :func:`handshake`, writes the 101 itself,
and hands the socket to an :class:`UpgradedProtocol` that feeds aiohttp's
C-accelerated frame parser directly; aiohttp's request handler lets go of the
socket (:func:`detach`) and ends. An idle connection then costs its socket, the
parser and its queue, and the connection meta-process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_websocket import ws_ext_gen, ws_ext_parse
from aiohttp.web_protocol import RequestHandler

__all__ = ["HandshakeError", "UpgradedProtocol", "choose_subprotocol", "detach", "handshake"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
_PAUSE_RESUME_ERRORS = (AttributeError, NotImplementedError, RuntimeError)  # a transport without flow control


class HandshakeError(Exception):
    """The request can not be upgraded: answer ``status`` with ``text``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _tokens(values: Sequence[str]) -> list[str]:
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def choose_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first of the server's ``supported`` subprotocols the client offered (gorilla's rule:
    the server's preference order decides), or None. ``offered``: the header values."""
    tokens = set(_tokens(offered))
    return next((p for p in supported if p in tokens), None)


def handshake(
    request: web.BaseRequest, subprotocols: Sequence[str], compression: bool
) -> tuple[bytes, str | None, int, bool]:
    """Check an upgrade request (method and version are checked before); return the 101 head,
    the chosen subprotocol, the negotiated deflate window bits (0: none) and no-takeover."""
    headers = request.headers
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        raise HandshakeError(400, 'Bad Request: can "Upgrade" only to "websocket"')
    if "upgrade" not in (t.lower() for t in _tokens(headers.getall("Connection", ()))):
        raise HandshakeError(400, "Bad Request: no Connection: upgrade header")
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise HandshakeError(400, "Bad Request: invalid Sec-WebSocket-Key")
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
    head = [_HEAD, accept]
    subprotocol = None
    if subprotocols:
        subprotocol = choose_subprotocol(headers.getall("Sec-WebSocket-Protocol", ()), subprotocols)
        if subprotocol is not None:
            head += [b"\r\nSec-WebSocket-Protocol: ", subprotocol.encode("utf-8", "surrogateescape")]
    compress, no_takeover = 0, False
    if compression:
        compress, no_takeover = ws_ext_parse(headers.get("Sec-WebSocket-Extensions"), isserver=True)
        if compress:
            ext = ws_ext_gen(compress=compress, isserver=True, server_notakeover=no_takeover)
            head += [b"\r\nSec-WebSocket-Extensions: ", ext.encode()]
    head.append(b"\r\n\r\n")
    return b"".join(head), subprotocol, compress, no_takeover


class UpgradedProtocol(asyncio.Protocol):
    """The protocol of an upgraded socket: bytes go to aiohttp's frame parser, which fills
    the queue ``AiohttpTransport`` reads; the queue pauses and resumes reading through it.

    The web server (aiohttp's manager, if it counts upgraded connections) is told
    ``upgraded_lost()`` when the socket is gone; it waits for them on termination.
    """

    __slots__ = ("_manager", "_parser", "_queue", "_reading_paused", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._queue: Any = None  # aiohttp's WebSocketDataQueue
        # aiohttp's WebSocketReader: kept for the connection's whole life, also after the socket
        # is gone, since a stalled reader (queue full) still holds frames already read, parked
        # on the queue by weak reference only; the reader ignores data after a failure itself
        self._parser: Any = None
        self._reading_paused = False  # read by the queue
        self._manager: Any = None

    def attach(self, queue: Any, parser: Any) -> None:
        self._queue = queue
        self._parser = parser

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)  # a protocol error goes to the queue: the reader then closes

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        self._queue.feed_eof()
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.upgraded_lost()

    def pause_reading(self) -> None:
        self._reading_paused = True
        try:
            self.transport.pause_reading()
        except _PAUSE_RESUME_ERRORS:
            pass

    def resume_reading(self) -> None:
        self._reading_paused = False
        try:
            self.transport.resume_reading()
        except _PAUSE_RESUME_ERRORS:
            pass


def detach(proto: RequestHandler, transport: asyncio.Transport, upgraded: UpgradedProtocol) -> bytes:
    """Hand the socket from aiohttp's request handler to ``upgraded``; return what the
    peer sent after the request head (the first frames), for ``upgraded`` to parse.

    aiohttp's handler is told its connection is lost (with the socket taken away first,
    so it closes nothing); its request task then ends when the response it gets from
    the handler (:class:`Handed`) fails to prepare, as for a client that went away.
    """
    tail = proto._message_tail
    proto._message_tail = b""
    paused = proto._reading_paused or getattr(proto, "_buffer_paused", False)
    manager = proto._manager
    if manager is not None and hasattr(manager, "upgraded_adopted"):
        manager.upgraded_adopted()
        upgraded._manager = manager
    transport.set_protocol(upgraded)
    proto.transport = None
    proto.connection_lost(None)
    if paused:
        try:
            transport.resume_reading()
        except _PAUSE_RESUME_ERRORS:
            pass
    return tail


class Handed(web.StreamResponse):
    """What the handler returns for an upgraded request: the socket is no longer aiohttp's."""

    async def prepare(self, request: web.BaseRequest) -> None:
        raise ConnectionResetError("the socket was handed to a WebSocket connection")
