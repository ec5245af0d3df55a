"""``web.Mux``: several handlers and plain HTTP routes on one port, natively and under ASGI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .asgi import lifespan
from .server import as_aiohttp_handler

__all__ = ["Mux", "StaticContent"]


class StaticContent:
    """A fixed HTTP response (a page, a script) that serves on both paths."""

    def __init__(self, body: bytes | str, content_type: str = "text/html; charset=utf-8") -> None:
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type

    async def serve_aiohttp(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        return web.Response(body=self.body, headers={"Content-Type": self.content_type})

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", self.content_type.encode()), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class Mux:
    """Routes by path: an exact match first, then the longest registered prefix ending in ``/``.

    ``mux.handle("/ws", ws_handler); mux.handle("/", web.StaticContent(page))``.
    Unmatched paths get 404.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Any] = {}

    def handle(self, path: str, handler: Any) -> None:
        """Serve ``path`` with ``handler`` (a websocket handler, ``StaticContent``, a Mux or a callable)."""
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with '/': {path!r}")
        self._routes[path] = handler

    def match(self, path: str) -> Any | None:
        h = self._routes.get(path)
        if h is not None:
            return h
        best = ""
        for prefix in self._routes:
            if prefix.endswith("/") and path.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self._routes.get(best) if best else None

    async def serve_aiohttp(self, request: web.BaseRequest) -> web.StreamResponse:
        h = self.match(request.path)
        if h is None:
            return web.Response(status=404, text="Not Found")
        return await as_aiohttp_handler(h)(request)

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        h = self.match(scope.get("path", "/"))
        if h is None or not callable(h):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"Not Found"})
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        await h(scope, receive, send)
