"""The handler as an ASGI application under uvicorn, with the `websockets` client.

Under a foreign ASGI server the framing is the server's. These tests pin down
what still holds there: the message sequence, echo, round-robin, our
``max_message_size`` (close 1009), the origin check and 503s (as HTTP statuses
where the server supports denial responses), and 1001 on ``node.stop()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from ws_helpers import HOST, Got, Probe, assert_empty, expect

import ergopy
from ergopy import gen
from ergopy.meta import web, websocket

# uvicorn's websocket implementations that exist with the installed packages
IMPLS = ["websockets", "websockets-sansio"]

# uvicorn's legacy "websockets" implementation warns about itself and about websockets.legacy
pytestmark = [
    pytest.mark.timeout(20),  # a hang fails fast
    pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets.legacy"),
    pytest.mark.filterwarnings("ignore:.*websockets.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:remove second argument of ws_handler:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
]


class Parent(Probe):
    """The handler's parent process: spawns the handler meta-process (unless told not to)."""

    def init(self, queue: asyncio.Queue[Got], handler: websocket.Handler, spawn: bool) -> None:  # type: ignore[override]
        super().init(queue)
        if spawn:
            self.spawn_meta(handler, gen.MetaOptions())


@asynccontextmanager
async def uvicorn_server(app: Any, ws: str, **kwargs: Any) -> AsyncIterator[int]:
    """uvicorn serving ``app`` on 127.0.0.1, a free port (yielded); stopped on exit."""
    config = uvicorn.Config(app, host=HOST, port=0, lifespan="off", ws=ws, log_level="warning", **kwargs)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.force_exit = True  # do not wait for open websockets: they belong to the node
        await server.shutdown()


async def setup(
    node: ergopy.Node, options: websocket.HandlerOptions | None = None, spawn: bool = True
) -> tuple[websocket.Handler, asyncio.Queue[Got]]:
    q: asyncio.Queue[Got] = asyncio.Queue()
    options = options or websocket.HandlerOptions()
    options.process_pool = ["w1", "w2"]
    for name in options.process_pool:
        await node.spawn_register(name, Probe, None, q)
    handler = websocket.create_handler(options)
    await node.spawn_register("srv", Parent, None, q, handler, spawn)
    return handler, q


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_connect_messages_disconnect_and_echo(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node)
    async with uvicorn_server(handler, impl) as port:
        async with connect(f"ws://{HOST}:{port}/chat?room=1", additional_headers={"X-Token": "t"}) as c:
            mc = await expect(q, websocket.MessageConnect, at="w1")
            assert (mc.path, mc.query, mc.headers["x-token"]) == ("/chat", "room=1", "t")
            local = c.local_address
            assert mc.remote_addr == f"{local[0]}:{local[1]}"
            assert mc.local_addr == f"{HOST}:{port}"
            await c.send("hi")
            await c.send(b"\x00bin")
            m1 = await expect(q, websocket.Message, at="w1")
            m2 = await expect(q, websocket.Message, at="w1")
            assert (m1.id, m1.type, m1.body) == (mc.id, websocket.MessageType.TEXT, b"hi")
            assert (m2.id, m2.type, m2.body) == (mc.id, websocket.MessageType.BINARY, b"\x00bin")
            assert await c.recv() == "hi"
            assert await c.recv() == b"\x00bin"
        md = await expect(q, websocket.MessageDisconnect, at="w1")
        assert (md.id, md.code) == (mc.id, 1000)
        assert_empty(q)


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_pool_is_round_robin(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node)
    async with uvicorn_server(handler, impl) as port:
        for at in ("w1", "w2", "w1"):
            async with connect(f"ws://{HOST}:{port}/") as c:
                await expect(q, websocket.MessageConnect, at=at)
                await c.send(at)
                assert (await expect(q, websocket.Message, at=at)).body == at.encode()
            await expect(q, websocket.MessageDisconnect, at=at)


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_size_limit_follows_max_message_size_with_close_1009(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node, websocket.HandlerOptions(max_message_size=1000))
    async with uvicorn_server(handler, impl) as port, connect(f"ws://{HOST}:{port}/") as c:
        mc = await expect(q, websocket.MessageConnect)
        await c.send(b"x" * 1000)  # at the limit: delivered
        assert len((await expect(q, websocket.Message)).body) == 1000
        await c.recv()
        await c.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
        md = await expect(q, websocket.MessageDisconnect)
        assert (md.id, md.code) == (mc.id, 1009)


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_cross_origin_is_refused_with_403(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node)
    async with uvicorn_server(handler, impl) as port:
        with pytest.raises(InvalidStatus) as e:
            await connect(f"ws://{HOST}:{port}/", origin="http://evil.example")  # type: ignore[arg-type]
        assert e.value.response.status_code == 403
    assert_empty(q)


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_upgrade_before_the_handler_is_spawned_is_503(node: ergopy.Node, impl: str) -> None:
    handler, _ = await setup(node, spawn=False)
    async with uvicorn_server(handler, impl) as port:
        with pytest.raises(InvalidStatus) as e:
            await connect(f"ws://{HOST}:{port}/")
        assert e.value.response.status_code == 503


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_plain_http_gets_426(node: ergopy.Node, impl: str) -> None:
    handler, _ = await setup(node)
    async with (
        uvicorn_server(handler, impl) as port,
        aiohttp.ClientSession() as http,
        http.get(f"http://{HOST}:{port}/") as r,
    ):
        assert r.status == 426


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_mux_serves_the_handler_and_static_content(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node)
    mux = web.Mux()
    mux.handle("/ws", handler)
    mux.handle("/", web.StaticContent(b"<p>page</p>"))
    async with uvicorn_server(mux, impl) as port:
        async with aiohttp.ClientSession() as http, http.get(f"http://{HOST}:{port}/") as r:
            assert r.status == 200
            assert await r.read() == b"<p>page</p>"
        async with connect(f"ws://{HOST}:{port}/ws") as c:
            assert (await expect(q, websocket.MessageConnect)).path == "/ws"
            await c.send("via mux")
            assert await c.recv() == "via mux"


@pytest.mark.parametrize("impl", IMPLS)
async def test_asgi_node_stop_closes_with_1001_and_delivers_disconnect(node: ergopy.Node, impl: str) -> None:
    handler, q = await setup(node)
    async with uvicorn_server(handler, impl) as port, connect(f"ws://{HOST}:{port}/") as c:
        mc = await expect(q, websocket.MessageConnect)
        await asyncio.wait_for(node.stop(), 10)
        got = q.get_nowait()  # delivered before stop returned
        assert isinstance(got.message, websocket.MessageDisconnect)
        assert (got.message.id, got.message.code) == (mc.id, 1001)
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1001
