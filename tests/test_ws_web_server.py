"""The web server meta-process's life, and addresses written one way (issue 9 §5).

``web.create_web_server`` binds at once (the port is known) but serves only once the
behaviour is spawned; ``terminate`` closes at once (synchronous, like a connection's),
also for a server never spawned. IPv6 addresses are bracketed (``[::1]:port``) in
``Request`` and ``MessageConnect``, natively and under ASGI.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from aiohttp import web as aioweb
from websockets.asyncio.client import connect
from ws_helpers import HOST, Got, Probe, expect, run

import ergopy
from ergopy import gen
from ergopy.meta import web, websocket

NO_ANSWER = 0.3  # seconds a request waits to show that nothing answers it


async def hello(request: aioweb.BaseRequest) -> aioweb.StreamResponse:
    return aioweb.Response(text="hello")


async def _request(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return reader, writer


async def _no_answer(reader: asyncio.StreamReader) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(NO_ANSWER):
            await reader.readline()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        return await reader.readline()


async def test_a_web_server_serves_only_once_spawned(node: ergopy.Node) -> None:
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("p", Probe, None, q)
    server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello))
    assert server.port > 0  # bound at creation
    reader, writer = await _request(server.port)  # accepted by the kernel, not served
    await _no_answer(reader)
    await run(node, "p", lambda p: p.spawn_meta(server, gen.MetaOptions()))
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")  # the waiting request is served now
    writer.close()


async def test_a_server_never_spawned_does_not_serve_after_node_stop() -> None:
    n = await ergopy.start_node("webstop@localhost", gen.NodeOptions(stop_timeout=1.0))
    server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello))
    await n.stop()
    reader, writer = await _request(server.port)
    await _no_answer(reader)
    writer.close()
    server.terminate(gen.TERMINATE_REASON_SHUTDOWN)


async def test_terminate_closes_a_server_never_spawned_at_once() -> None:
    server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello))
    assert server.terminate(gen.TERMINATE_REASON_NORMAL) is None  # synchronous: nothing to await
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, server.port)
    server.terminate(gen.TERMINATE_REASON_NORMAL)  # twice is harmless


async def test_a_terminated_server_can_not_be_spawned(node: ergopy.Node) -> None:
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("p", Probe, None, q)
    server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello))
    server.terminate(gen.TERMINATE_REASON_NORMAL)
    with pytest.raises(gen.NotAllowedError):
        await run(node, "p", lambda p: p.spawn_meta(server, gen.MetaOptions()))


async def test_a_spawned_server_stops_listening_when_terminated(node: ergopy.Node) -> None:
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("p", Probe, None, q)
    server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello))
    alias = await run(node, "p", lambda p: p.spawn_meta(server, gen.MetaOptions()))
    reader, writer = await _request(server.port)
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
    writer.close()
    await run(node, "p", lambda p: p.monitor(alias))
    node.send_exit_meta(alias, gen.TERMINATE_REASON_NORMAL)
    down = await expect(q, gen.MessageDownAlias)
    assert down.alias == alias
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, server.port)


# ---- IPv6 addresses -------------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")


class Recorder:
    """A check_origin that keeps the Request it was shown."""

    def __init__(self) -> None:
        self.requests: list[websocket.Request] = []

    def __call__(self, request: websocket.Request) -> bool:
        self.requests.append(request)
        return True


async def _handler(node: ergopy.Node, q: asyncio.Queue[Got], recorder: Recorder) -> websocket.Handler:
    await node.spawn_register("w1", Probe, None, q)
    await node.spawn_register("srv", Probe, None, q)
    handler = websocket.create_handler(websocket.HandlerOptions(process_pool=["w1"], check_origin=recorder))
    await run(node, "srv", lambda p: p.spawn_meta(handler, gen.MetaOptions()))
    return handler


async def _check_bracketed(q: asyncio.Queue[Got], recorder: Recorder, url: str, port: int) -> None:
    async with connect(url, open_timeout=5) as ws:
        mc = await expect(q, websocket.MessageConnect)
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), 5) == "hi"
    assert mc.remote_addr.startswith("[::1]:"), mc.remote_addr
    assert int(mc.remote_addr.rsplit(":", 1)[1]) > 0
    assert mc.local_addr == f"[::1]:{port}", mc.local_addr
    (request,) = recorder.requests
    assert request.remote_addr == mc.remote_addr


@ipv6
async def test_ipv6_addresses_are_bracketed_natively(node: ergopy.Node) -> None:
    q: asyncio.Queue[Got] = asyncio.Queue()
    recorder = Recorder()
    handler = await _handler(node, q, recorder)
    server = await web.create_web_server(web.WebServerOptions(host="::1", port=0, handler=handler))
    await run(node, "srv", lambda p: p.spawn_meta(server, gen.MetaOptions()))
    assert server.url == f"http://[::1]:{server.port}"
    await _check_bracketed(q, recorder, f"ws://[::1]:{server.port}/ws", server.port)


@asynccontextmanager
async def _uvicorn(app: Any, host: str) -> AsyncIterator[int]:
    config = uvicorn.Config(app, host=host, port=0, lifespan="off", ws="websockets-sansio", log_level="warning")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.force_exit = True
        await server.shutdown()


@ipv6
@pytest.mark.timeout(20)
async def test_ipv6_addresses_are_bracketed_under_asgi(node: ergopy.Node) -> None:
    q: asyncio.Queue[Got] = asyncio.Queue()
    recorder = Recorder()
    handler = await _handler(node, q, recorder)
    async with _uvicorn(handler, "::1") as port:
        await _check_bracketed(q, recorder, f"ws://[::1]:{port}/ws", port)


async def test_two_servers_with_reuse_port_share_one_port_and_both_serve() -> None:
    """``reuse_port``: a second server binds the same port (the nodes of one service do);
    without it the second bind fails."""
    first = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=hello, reuse_port=True))
    try:
        second = await web.create_web_server(
            web.WebServerOptions(host=HOST, port=first.port, handler=hello, reuse_port=True)
        )
        second.terminate(gen.TERMINATE_REASON_NORMAL)
        with pytest.raises(OSError):
            await web.create_web_server(web.WebServerOptions(host=HOST, port=first.port, handler=hello))
    finally:
        first.terminate(gen.TERMINATE_REASON_NORMAL)
