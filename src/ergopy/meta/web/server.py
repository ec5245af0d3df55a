"""The web server meta-process: one listening socket serving a handler (aiohttp engine).

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
from aiohttp.web_protocol import RequestHandler

from ... import gen
from ...gen.options import check_instance, check_int, check_seconds, check_str

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
    """

    host: str = "localhost"
    port: int = 0
    handler: Any = None
    ssl: ssl.SSLContext | None = None
    handshake_timeout: float | None = None
    backlog: int = 1024  # a burst of connects waits in the kernel, not in SYN retransmits
    max_line_size: int = DEFAULT_MAX_LINE_SIZE
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE

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


def as_aiohttp_handler(handler: Any) -> AiohttpHandler:
    """The aiohttp entry point of a handler, a mux, or a plain aiohttp callable."""
    serve = getattr(handler, "serve_aiohttp", None)
    if serve is not None:
        return serve  # type: ignore[no-any-return]
    if callable(handler):
        return handler  # type: ignore[no-any-return]
    raise gen.IncorrectError(f"{handler!r} can not serve HTTP: give a websocket handler, a web.Mux or a callable")


class _Server(web.Server):
    """aiohttp's low-level server, told when its last connection is gone.

    An upgraded WebSocket leaves aiohttp's connections (the handler takes its socket
    over, see ``websocket.upgrade``) and is counted here until its socket closes.
    """

    def __init__(self, handler: AiohttpHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.empty = asyncio.Event()
        self.empty.set()
        self.upgraded = 0

    def upgraded_adopted(self) -> None:
        self.upgraded += 1
        self.empty.clear()

    def upgraded_lost(self) -> None:
        self.upgraded -= 1
        self._check_empty()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.empty.clear()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        task = handler._task_handler
        if task is not None:
            # aiohttp drops the connection in a done callback of this task (scheduled
            # even when the task is already done): check after it.
            task.add_done_callback(lambda _t: self._check_empty())
        else:
            self._check_empty()

    def _check_empty(self) -> None:
        if not self.connections and not self.upgraded:
            self.empty.set()


def _head_timeout(options: WebServerOptions) -> float:
    """The request-head bound: the server's own, else a directly served handler's, else 15 s."""
    if options.handshake_timeout is not None:
        return options.handshake_timeout
    handler_options = getattr(options.handler, "options", None)
    timeout = getattr(handler_options, "handshake_timeout", None)
    return timeout if isinstance(timeout, int | float) and timeout > 0 else DEFAULT_REQUEST_HEADER_TIMEOUT


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    """One listening socket on the first address of ``host`` (IPv4 first, as clients try it first)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    if not infos:
        raise OSError(f"can not resolve {host!r}")
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
        self._pending: dict[RequestHandler, asyncio.TimerHandle] = {}
        self._loop = asyncio.get_running_loop()

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

    def _protocol(self) -> RequestHandler:
        proto = self._lowlevel()
        timeout = self._head_timeout_s
        if timeout and timeout > 0:
            self._pending[proto] = self._loop.call_later(timeout, self._head_timeout, proto)
        return proto

    def _head_timeout(self, proto: RequestHandler) -> None:
        """A connection that sent no complete request head in time is cut (slowloris)."""
        if self._pending.pop(proto, None) is not None and proto.transport is not None:
            proto.transport.abort()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        timer = self._pending.pop(request.protocol, None)
        if timer is not None:
            timer.cancel()
        return await self._entry(request)

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
        for timer in self._pending.values():
            timer.cancel()
        for proto in list(self._pending):
            if proto.transport is not None:
                proto.transport.abort()
        self._pending.clear()
        for proto in list(self._lowlevel.connections):
            if proto._waiter is not None:
                # Idle keep-alive (waiting for its next request): aiohttp's close() would
                # cancel that wait and end its task without closing the socket.
                proto.force_close()
            else:
                proto.close()  # busy: closes when its request ends

    def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
        connections = len(self._lowlevel.connections) + self._lowlevel.upgraded
        return {"listener": f"{self.host}:{self.port}", "connections": str(connections)}


async def create_web_server(options: WebServerOptions) -> WebServer:
    """Bind ``options.host:options.port`` now and return the server meta-process behaviour.

    It serves once spawned with ``spawn_meta`` (``server.port`` is known before); if the
    spawn fails, ``server.terminate(err)`` closes its socket. Raises ``OSError`` if the
    address can not be bound, ``gen.IncorrectError`` if there is no handler.
    """
    if options.handler is None:
        raise gen.IncorrectError("WebServerOptions.handler is required")
    sock = _bind(options.host, options.port, options.backlog)
    try:
        return WebServer(options, sock)
    except BaseException:
        sock.close()
        raise
