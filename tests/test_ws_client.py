"""Our client connection (create_connection + spawn_meta) against an independent `websockets` server."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from ws_helpers import HOST, Got, Probe, expect, make_certificate, run

import ergopy
from ergopy import gen
from ergopy.meta import websocket

pytestmark = pytest.mark.timeout(20)  # a hang fails fast; every wait inside has its own timeout


@dataclass
class Peer:
    """A websockets echo server; ``closed`` gets (close code, reason) of every connection that ended."""

    port: int
    connected: asyncio.Queue[ServerConnection] = field(default_factory=asyncio.Queue)
    closed: asyncio.Queue[tuple[int | None, str | None]] = field(default_factory=asyncio.Queue)

    def url(self, path: str = "/echo") -> str:
        return f"ws://{HOST}:{self.port}{path}"


@asynccontextmanager
async def peer(**kwargs: Any) -> AsyncIterator[Peer]:
    p = Peer(0)

    async def handler(ws: ServerConnection) -> None:
        p.connected.put_nowait(ws)
        try:
            async for m in ws:
                if m == "close me":
                    await ws.close(4001, "server bye")
                    break
                await ws.send(m)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            p.closed.put_nowait((rcvd.code, rcvd.reason) if rcvd else (None, None))

    async with serve(handler, HOST, 0, **kwargs) as server:
        p.port = next(iter(server.sockets)).getsockname()[1]
        yield p


async def start_worker(node: ergopy.Node, name: str = "w1") -> asyncio.Queue[Got]:
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register(name, Probe, None, q, False)
    return q


async def dial(node: ergopy.Node, url: str, at: str = "w1", **kwargs: Any) -> gen.Alias:
    """From inside process ``at``: create_connection to ``url`` and spawn_meta it (messages go to ``at``)."""

    async def go(p: Probe) -> gen.Alias:
        conn = await websocket.create_connection(websocket.ConnectionOptions(url=url, **kwargs))
        return p.spawn_meta(conn, gen.MetaOptions())

    alias: gen.Alias = await run(node, at, go)
    return alias


async def test_client_gets_connect_echo_and_disconnect(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer() as srv:
        alias = await dial(node, srv.url("/echo?k=v"))
        mc = await expect(q, websocket.MessageConnect, at="w1")
        assert mc.id == alias
        assert (mc.path, mc.query) == ("/echo", "k=v")
        assert mc.remote_addr == f"{HOST}:{srv.port}"
        node.send_alias(alias, websocket.Message(body=b"hi"))
        m = await expect(q, websocket.Message, at="w1")
        assert (m.id, m.type, m.body) == (alias, websocket.MessageType.TEXT, b"hi")
        node.send_alias(alias, websocket.Message(type=websocket.MessageType.BINARY, body=b"\x01\x02"))
        m = await expect(q, websocket.Message, at="w1")
        assert (m.type, m.body) == (websocket.MessageType.BINARY, b"\x01\x02")
        node.send_alias(alias, websocket.Message(type=websocket.MessageType.CLOSE, body=websocket.close_body(1000)))
        md = await expect(q, websocket.MessageDisconnect, at="w1")
        assert (md.id, md.code) == (alias, 1000)
        assert await asyncio.wait_for(srv.closed.get(), 5) == (1000, "")


async def test_client_messages_go_to_the_spawning_process_when_process_is_empty(node: ergopy.Node) -> None:
    q = await start_worker(node, "owner")
    async with peer() as srv:
        alias = await dial(node, srv.url(), at="owner")
        assert (await expect(q, websocket.MessageConnect, at="owner")).id == alias


async def test_client_messages_go_to_the_named_process(node: ergopy.Node) -> None:
    q = await start_worker(node, "owner")
    await node.spawn_register("target", Probe, None, q, False)
    async with peer() as srv:
        alias = await dial(node, srv.url(), at="owner", process="target")
        assert (await expect(q, websocket.MessageConnect, at="target")).id == alias
        node.send_alias(alias, websocket.Message(body=b"x"))
        assert (await expect(q, websocket.Message, at="target")).body == b"x"


async def test_send_exit_meta_closes_the_client_connection(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer() as srv:
        alias = await dial(node, srv.url())
        await expect(q, websocket.MessageConnect)
        node.send_exit_meta(alias, gen.Error("ttt"))
        md = await expect(q, websocket.MessageDisconnect)
        assert md.id == alias
        code, _ = await asyncio.wait_for(srv.closed.get(), 5)
        assert code == 1011
        assert not node.alias_exists(alias)


async def test_server_close_code_and_reason_arrive_in_message_disconnect(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer() as srv:
        alias = await dial(node, srv.url())
        await expect(q, websocket.MessageConnect)
        node.send_alias(alias, websocket.Message(body=b"close me"))
        md = await expect(q, websocket.MessageDisconnect)
        assert (md.id, md.code, md.reason) == (alias, 4001, "server bye")


async def test_client_answers_server_pings(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer() as srv:
        await dial(node, srv.url())
        await expect(q, websocket.MessageConnect)
        ws = await asyncio.wait_for(srv.connected.get(), 5)
        await asyncio.wait_for(await ws.ping(b"x"), 5)


async def test_client_subprotocol_and_headers_are_sent(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer(subprotocols=["v1"]) as srv:
        await dial(node, srv.url(), subprotocols=["v1"], headers={"X-Who": "ergopy"})
        mc = await expect(q, websocket.MessageConnect)
        assert mc.subprotocol == "v1"
        ws = await asyncio.wait_for(srv.connected.get(), 5)
        assert ws.request is not None and ws.request.headers["X-Who"] == "ergopy"


async def test_client_compression_round_trips(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer(compression="deflate") as srv:
        alias = await dial(node, srv.url(), enable_compression=True)
        await expect(q, websocket.MessageConnect)
        ws = await asyncio.wait_for(srv.connected.get(), 5)
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        body = b"abcabc" * 20000
        for _ in range(3):
            node.send_alias(alias, websocket.Message(body=body))
            assert (await expect(q, websocket.Message)).body == body


async def test_connect_error_to_a_closed_port_is_quick(node: ergopy.Node) -> None:
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(websocket.ConnectError):
        await websocket.create_connection(websocket.ConnectionOptions(url=f"ws://{HOST}:{port}/"))
    assert loop.time() - t0 < 1.0


async def test_connect_error_after_handshake_timeout_against_a_silent_server(node: ergopy.Node) -> None:
    ended: asyncio.Queue[bytes] = asyncio.Queue()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ended.put_nowait(await reader.read(-1))  # never answers; reads until the client gives up
        except ConnectionError:
            ended.put_nowait(b"")
        finally:
            writer.close()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        t0 = loop.time()
        with pytest.raises(websocket.ConnectError, match="timed out"):
            await websocket.create_connection(
                websocket.ConnectionOptions(url=f"ws://{HOST}:{port}/", handshake_timeout=0.3)
            )
        assert 0.29 <= loop.time() - t0 < 1.5  # uvloop clocks in milliseconds
        request = await asyncio.wait_for(ended.get(), 5)  # and the client closed its socket
        assert request.startswith(b"GET / HTTP/1.1")
    finally:
        server.close()
        await server.wait_closed()


async def test_connect_error_for_a_non_websocket_url() -> None:
    with pytest.raises(websocket.ConnectError):
        await websocket.create_connection(websocket.ConnectionOptions(url="http://127.0.0.1:1/"))


async def test_terminate_after_a_failed_spawn_meta_closes_the_socket(node: ergopy.Node) -> None:
    q = await start_worker(node)
    async with peer() as srv:
        conn = await websocket.create_connection(websocket.ConnectionOptions(url=srv.url()))
        await asyncio.wait_for(srv.connected.get(), 5)
        probe: Probe = await run(node, "w1", lambda p: p)
        pid = probe.pid
        await node.spawn_register("watcher", Probe, None, q, False)
        await run(node, "watcher", lambda p: p.monitor(pid))
        node.send_exit(pid, gen.TERMINATE_REASON_SHUTDOWN)
        await expect(q, gen.MessageDownPID, at="watcher")
        with pytest.raises(gen.Error) as e:
            probe.spawn_meta(conn, gen.MetaOptions())  # the process is gone: spawn_meta fails
        conn.terminate(e.value)
        code, _ = await asyncio.wait_for(srv.closed.get(), 5)  # the server saw the connection end
        assert code == 1011


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


async def test_client_connects_over_wss_with_a_given_ssl_context(
    node: ergopy.Node, tls_cert: tuple[Path, Path]
) -> None:
    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    q = await start_worker(node)
    async with peer(ssl=server_ctx) as srv:
        alias = await dial(node, f"wss://{HOST}:{srv.port}/", ssl=client_ctx)
        await expect(q, websocket.MessageConnect)
        node.send_alias(alias, websocket.Message(body=b"over tls"))
        assert (await expect(q, websocket.Message)).body == b"over tls"


async def test_client_refuses_an_unverified_certificate(node: ergopy.Node, tls_cert: tuple[Path, Path]) -> None:
    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with peer(ssl=server_ctx) as srv:
        with pytest.raises(websocket.ConnectError):
            await websocket.create_connection(websocket.ConnectionOptions(url=f"wss://{HOST}:{srv.port}/"))
