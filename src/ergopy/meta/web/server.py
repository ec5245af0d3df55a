"""The web server meta-process: one listening socket serving a handler.

WebSocket upgrades go to ergopy's engine (``websocket.engine``) straight from the first
request head of a connection; plain HTTP (pages, ``web.Mux`` routes) is aiohttp's, through
its public low-level server.

``create_web_server`` binds at once, so a bind error is raised there, as Ergo's
``CreateWebServer`` does, and ``server.port`` is known; nothing is served until the
returned behaviour is spawned with ``spawn_meta`` (its ``start()`` serves; clients
that connect before wait in the listen backlog). ``terminate`` closes the listener and
idle keep-alive connections at once (if ``spawn_meta`` fails, call
``server.terminate(err)`` to close the socket); upgraded WebSocket connections belong
to their own meta-processes and end with them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ... import gen
from ...gen.options import check_bool, check_instance, check_int, check_seconds, check_str
from ..websocket import upgrade

__all__ = ["WebServer", "WebServerOptions", "create_web_server"]

AiohttpHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

DEFAULT_REQUEST_HEADER_TIMEOUT = 15.0  # a client must send its request head within this (slowloris)
DEFAULT_MAX_LINE_SIZE = 8190  # request line and each header line; larger → 400
DEFAULT_MAX_FIELD_SIZE = 8190


@dataclass(slots=True)
class WebServerOptions:
    """Options of ``web.create_web_server``.

    ``port`` 0 picks a free port (read it back from ``server.port``). ``handler``
    is a ``websocket`` handler, a ``web.Mux``, or an aiohttp-style
    ``async (request) -> response`` callable. ``ssl`` turns on TLS (``wss://``).
    ``handshake_timeout``: seconds a new connection has (TLS handshake included) to send
    its request head; ``None`` takes the ``handshake_timeout`` of a websocket handler
    served directly (so ``HandlerOptions.handshake_timeout`` bounds the upgrade, as in
    Ergo), else 15 s.
    ``reuse_port``: bind with ``SO_REUSEPORT`` so that several processes (the nodes of one
    service on one machine) listen on the same port and the kernel spreads new
    connections among them (Linux; elsewhere the bind raises ``OSError``).
    """

    host: str = "localhost"
    port: int = 0
    handler: Any = None
    ssl: ssl.SSLContext | None = None
    handshake_timeout: float | None = None
    backlog: int = 1024  # a burst of connects waits in the kernel, not in SYN retransmits
    max_line_size: int = DEFAULT_MAX_LINE_SIZE
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE
    reuse_port: bool = False

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        check_str(self, "host", self.host)
        if self.handler is not None and not (hasattr(self.handler, "serve_aiohttp") or callable(self.handler)):
            raise TypeError(
                f"WebServerOptions.handler must be a websocket handler, a web.Mux or a callable, got {self.handler!r}"
            )
        check_int(self, "port", self.port, 0, 65535)
        check_instance(self, "ssl", self.ssl, ssl.SSLContext, optional=True)
        check_seconds(self, "handshake_timeout", self.handshake_timeout)
        check_int(self, "backlog", self.backlog, 1)
        check_int(self, "max_line_size", self.max_line_size, 1)
        check_int(self, "max_field_size", self.max_field_size, 1)
        check_bool(self, "reuse_port", self.reuse_port)


def as_aiohttp_handler(handler: Any) -> AiohttpHandler:
    """The aiohttp entry point of a handler, a mux, or a plain aiohttp callable."""
    serve = getattr(handler, "serve_aiohttp", None)
    if serve is not None:
        return serve  # type: ignore[no-any-return]
    if callable(handler):
        return handler  # type: ignore[no-any-return]
    raise gen.IncorrectError(f"{handler!r} can not serve HTTP: give a websocket handler, a web.Mux or a callable")


class _Server(web.Server):
    """aiohttp's low-level server (plain HTTP), and the count of upgraded sockets.

    An upgraded WebSocket never reaches aiohttp (the front protocol gives it to the
    engine, see :class:`_Front`); it is counted here until its socket closes.
    ``empty`` is set while no connection of either kind is open.
    """

    def __init__(self, handler: AiohttpHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.empty = asyncio.Event()
        self.empty.set()
        self.upgraded = 0
        self.fronts = 0  # connections whose first request head is not read yet, or served by aiohttp

    def upgraded_adopted(self) -> None:
        self.upgraded += 1
        self.empty.clear()

    def upgraded_lost(self) -> None:
        self.upgraded -= 1
        self._check_empty()

    def front_made(self) -> None:
        self.fronts += 1
        self.empty.clear()

    def front_lost(self) -> None:
        self.fronts -= 1
        self._check_empty()

    def _check_empty(self) -> None:
        if not self.fronts and not self.upgraded:
            self.empty.set()


_HEAD_END = b"\r\n\r\n"


class _Front(asyncio.Protocol):
    """Every new connection's first protocol: it reads the first request head. A WebSocket
    upgrade for a handler that takes it (``accept_upgrade``) goes to the WebSocket engine
    (the socket changes protocol, nothing of aiohttp's is made); anything else goes to
    aiohttp's request handler, to which this protocol then passes every event.
    """

    __slots__ = ("_buf", "_inner", "_lost", "_server", "transport")

    def __init__(self, server: WebServer) -> None:
        self._server = server
        self._buf = b""
        self._inner: asyncio.Protocol | None = None
        self._lost = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server._front_made(self)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is not None:
            inner.data_received(data)
            return
        buf = self._buf + data if self._buf else data
        end = buf.find(_HEAD_END)
        srv = self._server
        if end < 0:
            if len(buf) > srv.head_limit:
                self._to_aiohttp(buf)  # it answers an oversized head as it does
            else:
                self._buf = buf
            return
        self._buf = b""
        if not srv.try_upgrade(self, buf[:end], buf[end + 4 :]):
            self._to_aiohttp(buf)

    def _to_aiohttp(self, data: bytes) -> None:
        tp = self.transport
        assert tp is not None
        inner = self._inner = self._server.aiohttp_protocol()
        inner.connection_made(tp)
        inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        inner = self._inner
        if inner is not None:
            inner.connection_lost(exc if isinstance(exc, Exception) or exc is None else None)
        self._gone()

    def _gone(self) -> None:
        if not self._lost:
            self._lost = True
            self._server._front_lost(self)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _head_timeout(options: WebServerOptions) -> float:
    """The request-head bound: the server's own, else a directly served handler's, else 15 s."""
    if options.handshake_timeout is not None:
        return options.handshake_timeout
    handler_options = getattr(options.handler, "options", None)
    timeout = getattr(handler_options, "handshake_timeout", None)
    return timeout if isinstance(timeout, int | float) and timeout > 0 else DEFAULT_REQUEST_HEADER_TIMEOUT


def _bind(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """One listening socket on the first address of ``host`` (IPv4 first, as clients try it first)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    if not infos:
        raise OSError(f"can not resolve {host!r}")
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError("SO_REUSEPORT is not available on this platform")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class WebServer(gen.MetaBehavior):
    """Made by :func:`create_web_server`; spawn it with ``spawn_meta`` to serve."""

    def __init__(self, options: WebServerOptions, sock: socket.socket) -> None:
        self.options = options
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self._entry = as_aiohttp_handler(options.handler)
        self._head_timeout_s = _head_timeout(options)
        self._lowlevel = _Server(
            self._dispatch,
            access_log=None,
            max_line_size=options.max_line_size,
            max_field_size=options.max_field_size,
        )
        self._server: asyncio.Server | None = None
        self._meta: gen.MetaProcess | None = None
        self._stopped = asyncio.Event()
        self._terminated = False
        self._fronts: dict[_Front, asyncio.TimerHandle | None] = {}  # open connections not upgraded
        self._busy: dict[Any, int] = {}  # transport -> requests in the handler now
        self._by_transport: dict[Any, _Front] = {}
        self._loop = asyncio.get_running_loop()
        self.head_limit = 65536 + options.max_line_size  # a longer first head goes to aiohttp (it answers)

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with TLS) of the listening socket."""
        scheme = "https" if self.options.ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def _serve(self) -> None:
        # backlog again: create_server calls listen() itself, with 100 unless told (a burst of
        # connects then overflows the accept queue and waits out a 1 s SYN retransmit)
        # with TLS, the head timer below sees no transport until the TLS handshake is done:
        # that handshake gets the same bound (asyncio's own default is 60 s)
        timeout = self._head_timeout_s
        tls_timeout = timeout if self.options.ssl is not None and timeout and timeout > 0 else None
        self._server = await self._loop.create_server(
            self._protocol,
            sock=self._sock,
            ssl=self.options.ssl,
            backlog=self.options.backlog,
            ssl_handshake_timeout=tls_timeout,
        )

    def _protocol(self) -> _Front:
        return _Front(self)

    def _front_made(self, front: _Front) -> None:
        timeout = self._head_timeout_s
        timer = None
        if timeout and timeout > 0:
            timer = self._loop.call_later(timeout, self._head_timeout, front)
        self._fronts[front] = timer
        self._by_transport[front.transport] = front
        self._lowlevel.front_made()

    def _front_lost(self, front: _Front) -> None:
        timer = self._fronts.pop(front, None)
        if timer is not None:
            timer.cancel()
        self._by_transport.pop(front.transport, None)
        self._lowlevel.front_lost()

    def _head_timeout(self, front: _Front) -> None:
        """A connection that sent no complete request head in time is cut (slowloris)."""
        if self._fronts.get(front) is not None and front.transport is not None:
            self._fronts[front] = None
            front.transport.abort()

    def aiohttp_protocol(self) -> asyncio.Protocol:
        """A new aiohttp request handler (plain HTTP) for a connection of the front."""
        return self._lowlevel()

    def _route(self, path: str) -> Any:
        h = self.options.handler
        for _ in range(16):  # muxes in muxes, bounded
            match = getattr(h, "match", None)
            if match is None:
                break
            h = match(path)
        return h

    def try_upgrade(self, front: _Front, head: bytes, tail: bytes) -> bool:
        """The first request head of a connection: if it is a WebSocket upgrade its handler
        takes, the socket goes to the WebSocket engine (True). Raises nothing."""
        if self._terminated or b"websocket" not in head.lower():
            return False
        parsed = upgrade.parse_head(head, self.options.max_line_size, self.options.max_field_size)
        if parsed is None or not upgrade.is_upgrade(parsed.headers):
            return False
        path = parsed.target.split("?", 1)[0]
        handler = self._route(path)
        accept = getattr(handler, "accept_upgrade", None)
        tp = front.transport
        if accept is None or tp is None:
            return False
        low = self._lowlevel
        low.upgraded_adopted()
        if not accept(parsed, tp, tail, self.options.ssl is not None, low.upgraded_lost):
            low.upgraded_lost()
            return False
        front._gone()  # the socket is the engine's now: no more events reach the front
        return True

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        tp = request.transport
        front = self._by_transport.get(tp)
        if front is not None:
            timer = self._fronts.get(front)
            if timer is not None:
                timer.cancel()
                self._fronts[front] = None
        self._busy[tp] = self._busy.get(tp, 0) + 1
        try:
            return await self._entry(request)
        finally:
            n = self._busy.pop(tp, 1) - 1
            if n:
                self._busy[tp] = n

    # ---- meta-process callbacks ----------------------------------------------------------------

    def init(self, process: gen.MetaProcess) -> None:
        """Keep the meta-process; raises ``gen.NotAllowedError`` if the server was terminated."""
        if self._terminated:
            raise gen.NotAllowedError(f"web server on {self.url} was terminated: its socket is closed")
        self._meta = process

    async def start(self) -> None:
        """Serve until terminated, then wait (bounded by the node) for the connections to end."""
        if self._terminated:
            return
        await self._serve()
        assert self._meta is not None
        self._meta.log.debug("web server serving on %s", self.url)
        try:
            await self._stopped.wait()
            await self._lowlevel.empty.wait()  # busy requests finish; upgraded sockets end with their metas
            if self._server is not None:
                await self._server.wait_closed()
        finally:
            for proto in list(self._lowlevel.connections):
                proto.force_close()  # cancelled before they ended: do not leave sockets behind
            for front in list(self._fronts):
                if front.transport is not None:
                    front.transport.abort()

    def terminate(self, reason: BaseException) -> None:
        """Close the listener and idle connections now (busy ones after their request).

        Safe to call on a server never spawned (``spawn_meta`` failed): it closes its socket.
        Raises nothing.
        """
        if self._terminated:
            return
        self._terminated = True
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        else:
            self._sock.close()  # never served: the bound socket is all there is
        for front, timer in list(self._fronts.items()):
            if timer is not None:
                timer.cancel()
            inner = front._inner
            if inner is None:
                if front.transport is not None:
                    front.transport.abort()  # no request yet
            elif isinstance(inner, web.RequestHandler):
                if front.transport in self._busy:
                    inner.close()  # busy: closes when its request ends
                else:
                    inner.force_close()  # idle keep-alive, or a request not handed to us yet

    def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
        connections = len(self._fronts) + self._lowlevel.upgraded
        return {"listener": f"{self.host}:{self.port}", "connections": str(connections)}


async def create_web_server(options: WebServerOptions) -> WebServer:
    """Bind ``options.host:options.port`` now and return the server meta-process behaviour.

    It serves once spawned with ``spawn_meta`` (``server.port`` is known before); if the
    spawn fails, ``server.terminate(err)`` closes its socket. Raises ``OSError`` if the
    address can not be bound, ``gen.IncorrectError`` if there is no handler.
    """
    if options.handler is None:
        raise gen.IncorrectError("WebServerOptions.handler is required")
    sock = _bind(options.host, options.port, options.backlog, options.reuse_port)
    try:
        return WebServer(options, sock)
    except BaseException:
        sock.close()
        raise
