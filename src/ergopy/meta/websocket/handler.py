"""The WebSocket Handler meta-process: upgrades HTTP requests, spawns one Connection each.

A handler is a ``gen.MetaBehavior`` (spawn it with ``spawn_meta`` before it
serves), and it serves on two paths that build the same ``websocket.Request``:

* natively, under ``web.create_web_server`` (ergopy's own engine, ``websocket.engine``:
  every limit is ours; the web server's front protocol calls ``accept_upgrade``);
* as a plain ASGI application (Starlette, FastAPI, uvicorn...): the server does
  the framing, so message size, compression and keepalive follow its settings.

Each upgraded connection becomes a sibling meta-process (same parent) whose
messages go to the next process of the pool, round-robin per handler and fixed
for the connection; with an empty pool, to the handler's parent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ... import gen
from ..web.asgi import lifespan
from . import upgrade
from .connection import Connection, ProcessReport
from .engine import WSProtocol
from .messages import Request
from .options import HandlerOptions
from .transport import AsgiTransport, address

__all__ = ["Handler", "create_handler", "same_origin"]


def same_origin(request: Request) -> bool:
    """gorilla's rule: no Origin header, or its host[:port] equals the Host header (ASCII case-insensitive)."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        return False
    return host.lower() == request.headers.get("Host", "").lower()


class Handler(gen.MetaBehavior):
    """Made by :func:`create_handler`. Callable as an ASGI application."""

    def __init__(self, options: HandlerOptions) -> None:
        self.options = options
        self._pool = [gen.Atom(p) for p in options.process_pool]
        self._next = -1
        self._meta: gen.MetaProcess | None = None
        self._terminated = False
        self._stopped: asyncio.Event | None = None
        self._check_origin = options.check_origin or same_origin
        self._limits = options.limits()
        self._report = ProcessReport()  # pool names that took no connection, each logged once
        self.connections = 0  # currently open
        self.accepted = 0  # since start

    # ---- meta-process callbacks ----------------------------------------------------------------

    def init(self, process: gen.MetaProcess) -> None:
        self._meta = process
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    def terminate(self, reason: BaseException) -> None:
        """Stop accepting (503); connections already open keep running, as in Ergo."""
        self._terminated = True
        if self._stopped is not None:
            self._stopped.set()

    def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
        return {
            "process pool": ",".join(p.text for p in self._pool),
            "connections": str(self.connections),
            "accepted": str(self.accepted),
        }

    # ---- shared by both serving paths ------------------------------------------------------

    def _unavailable(self) -> str | None:
        if self._meta is None:
            return "Handler is not initialized"
        if self._terminated:
            return "Handler terminated"
        return None

    def _next_process(self) -> str:
        if not self._pool:
            return ""
        self._next = (self._next + 1) % len(self._pool)  # wraps instead of overflowing (Ergo's int32 quirk)
        return self._pool[self._next].text

    def _pool_report(self) -> ProcessReport | None:
        return self._report if self._pool else None

    def _log_error(self, msg: str, *args: Any) -> None:
        if self._meta is not None:
            self._meta.log.error(msg, *args)

    def _spawn(self, conn: Connection) -> bool:
        assert self._meta is not None
        try:
            self._meta.spawn(conn, gen.MetaOptions())
        except gen.Error as e:
            self._log_error("unable to spawn meta process: %s", e)
            conn.terminate(e)
            return False
        return True

    async def _run(self, conn: Connection) -> None:
        self.connections += 1
        self.accepted += 1
        try:
            await conn.wait_closed()
        finally:
            self.connections -= 1

    # ---- native (web.create_web_server) ----------------------------------------------------------------------

    async def serve_aiohttp(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer an upgrade request that reached aiohttp: the refusals (503, 405, 400, 403) with
        their reason; a valid upgrade only arrives here after a plain request on the same
        connection (the front protocol takes the others) and is refused with 400."""
        why = self._unavailable()
        if why is not None:
            return web.Response(status=503, text=why)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        req = Request(
            request.method,
            request.path,
            request.query_string,
            request.headers,
            address(peer),
            "https" if request.secure else "http",
        )
        if request.method != "GET":
            self._log_error("can not upgrade to websocket: method %s not allowed", request.method)
            return web.Response(status=405, text="Method Not Allowed", headers={"Allow": "GET"})
        if request.headers.get("Sec-WebSocket-Version", "").strip() != "13":
            # RFC 6455 §4.4 (and gorilla): only version 13; aiohttp would also take drafts 7 and 8
            self._log_error("can not upgrade to websocket: unsupported Sec-WebSocket-Version")
            return web.Response(
                status=400, text="Bad Request: unsupported WebSocket version", headers={"Sec-WebSocket-Version": "13"}
            )
        if not self._origin_ok(req):
            return web.Response(status=403, text="Forbidden: cross-origin WebSocket upgrade")
        opts = self.options
        try:
            upgrade.handshake(request.headers, opts.subprotocols, opts.enable_compression)
        except upgrade.HandshakeError as e:
            self._log_error("can not upgrade to websocket: %s", e.text)
            return web.Response(status=e.status, text=e.text)
        # A valid upgrade reaches aiohttp only on a connection that served a plain request
        # before (keep-alive): the web server's front protocol takes every upgrade that opens
        # a connection, before aiohttp sees it. Browsers and clients open a WebSocket on a
        # fresh connection; this one is refused rather than taken from aiohttp's internals.
        self._log_error("can not upgrade to websocket on a connection that served HTTP requests before")
        return web.Response(
            status=400, text="Bad Request: open the WebSocket on a new connection", headers={"Connection": "close"}
        )

    def accept_upgrade(
        self, head: upgrade.RequestHead, transport: asyncio.Transport, tail: bytes, secure: bool, on_lost: Any = None
    ) -> bool:
        """Upgrade the request that opened ``transport`` (``head``, then ``tail``: what the
        peer sent after it) if it is a valid one this handler takes: write the 101, give the
        socket to a :class:`~.engine.WSProtocol` and spawn its connection; True then. False
        (nothing done) for a request to refuse: the HTTP server answers it through
        ``serve_aiohttp``, which says why. ``on_lost``: called when the socket closes. Raises nothing."""
        if self._unavailable() is not None or head.method != "GET" or head.version != "HTTP/1.1":
            return False
        headers = head.headers
        if headers.get("Sec-WebSocket-Version", "").strip() != "13":
            return False
        url = URL(head.target, encoded=True)
        req = Request(
            "GET",
            url.path,
            url.query_string,
            headers,
            address(transport.get_extra_info("peername")),
            "https" if secure else "http",
        )
        try:
            if not self._check_origin(req):
                return False
        except Exception:
            return False
        opts = self.options
        try:
            response, subprotocol, compress, no_takeover = upgrade.handshake(
                headers, opts.subprotocols, opts.enable_compression
            )
        except upgrade.HandshakeError:
            return False
        loop = asyncio.get_running_loop()
        t = WSProtocol(
            client=False,
            compress=compress,
            no_takeover=no_takeover,
            compress_threshold=opts.compression_threshold,
            subprotocol=subprotocol,
            max_message_size=opts.max_message_size,
            loop=loop,
            on_lost=on_lost,
        )
        transport.write(response)
        transport.set_protocol(t)
        t.connection_made(transport)
        conn = Connection(
            t,
            self._next_process(),
            self._limits,
            path=req.path,
            query=req.query,
            headers=req.headers,
            report=self._pool_report(),
        )
        if tail:
            t.data_received(tail)
        if self._spawn(conn):
            self.connections += 1
            self.accepted += 1
            conn.on_end(self._connection_ended)
        return True

    def _connection_ended(self) -> None:
        self.connections -= 1

    def _origin_ok(self, req: Request) -> bool:
        try:
            ok = self._check_origin(req)
        except Exception as e:
            self._log_error("check_origin raised: %r", e)
            ok = False
        if not ok:
            # the Origin is the peer's text: logged escaped (repr) and cut, never raw
            origin = (req.headers.get("Origin") or "")[:100]
            self._log_error("can not upgrade to websocket: origin %r not allowed", origin)
        return ok

    # ---- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        """The handler as an ASGI application (``websocket`` scopes; plain HTTP gets 426)."""
        kind = scope["type"]
        if kind == "lifespan":
            await lifespan(receive, send)
            return
        if kind == "http":
            await _asgi_http(send, 426, "Upgrade Required: this endpoint speaks WebSocket", {"upgrade": "websocket"})
            return
        if kind != "websocket":
            return
        event = await receive()
        if event["type"] != "websocket.connect":
            return
        headers = CIMultiDictProxy(CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]))
        req = Request(
            "GET",
            scope.get("path", "/"),
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            address(scope.get("client")),
            "https" if scope.get("scheme") in ("wss", "https") else "http",
        )
        why = self._unavailable()
        if why is not None:
            await _asgi_deny(scope, send, 503, why)
            return
        if not self._origin_ok(req):
            await _asgi_deny(scope, send, 403, "Forbidden: cross-origin WebSocket upgrade")
            return
        offered = headers.getall("Sec-WebSocket-Protocol", ())
        subprotocol = upgrade.choose_subprotocol(offered, self.options.subprotocols)
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        t = AsgiTransport(
            receive,
            send,
            remote_addr=req.remote_addr,
            local_addr=address(scope.get("server")),
            subprotocol=subprotocol,
            max_message_size=self.options.max_message_size,
        )
        conn = Connection(
            t,
            self._next_process(),
            self._limits,
            path=req.path,
            query=req.query,
            headers=headers,
            report=self._pool_report(),
        )
        if self._spawn(conn):
            await self._run(conn)


async def _asgi_http(send: Any, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
    body = text.encode()
    hdrs = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def _asgi_deny(scope: Mapping[str, Any], send: Any, status: int, text: str) -> None:
    """Refuse an upgrade: with the HTTP status if the server supports denial responses, else close."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = text.encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1008 if status == 403 else 1013})


def create_handler(options: HandlerOptions | None = None) -> Handler:
    """A WebSocket handler meta-process behaviour; start it with ``spawn_meta``.

    Serve it with ``web.create_web_server(web.WebServerOptions(handler=...))`` (or in a
    ``web.Mux``), or mount it in any ASGI server. Until it is spawned, and after it
    terminates, upgrades get 503.
    """
    return Handler(options or HandlerOptions())
