"""The WebSocket handler under web.create_web_server, against the independent `websockets` client."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from ws_helpers import HOST, Probe, RawClient, assert_empty, expect, make_certificate, run, serve, upgrade_request

import ergopy
from ergopy import gen
from ergopy.meta import websocket

pytestmark = pytest.mark.timeout(20)  # a hang fails fast; every wait inside has its own timeout


async def test_connect_messages_disconnect_arrive_in_order_with_the_alias(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(subprotocols=["chat"]))
    async with connect(s.url("/ws") + "?room=7&x=1", additional_headers={"X-Token": "abc"}, subprotocols=["chat"]) as c:
        mc = await expect(s.queue, websocket.MessageConnect, at="w1")
        assert mc.path == "/ws"
        assert mc.query == "room=7&x=1"
        assert mc.headers["x-token"] == "abc"
        assert mc.subprotocol == "chat"
        local = c.local_address
        assert mc.remote_addr == f"{local[0]}:{local[1]}"
        assert mc.local_addr == f"{HOST}:{s.port}"
        await c.send("one")
        await c.send(b"two")
        m1 = await expect(s.queue, websocket.Message, at="w1")
        m2 = await expect(s.queue, websocket.Message, at="w1")
        assert (m1.type, m1.body) == (websocket.MessageType.TEXT, b"one")
        assert (m2.type, m2.body) == (websocket.MessageType.BINARY, b"two")
        assert m1.id == m2.id == mc.id
        assert await c.recv() == "one"
        assert await c.recv() == b"two"
    md = await expect(s.queue, websocket.MessageDisconnect, at="w1")
    assert md.id == mc.id
    assert md.code == 1000
    assert_empty(s.queue)


async def test_pool_is_round_robin_per_handler_and_fixed_per_connection(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1", "w2"])
    clients = []
    for expected in ("w1", "w2", "w1"):
        c = await connect(s.url())
        clients.append((c, await expect(s.queue, websocket.MessageConnect, at=expected), expected))
    for c, mc, at in reversed(clients):
        for i in range(2):
            await c.send(f"{at}-{i}")
            m = await expect(s.queue, websocket.Message, at=at)
            assert m.id == mc.id
            assert await c.recv() == f"{at}-{i}"
    for c, mc, at in clients:
        await c.close()
        md = await expect(s.queue, websocket.MessageDisconnect, at=at)
        assert md.id == mc.id


async def test_empty_pool_sends_everything_to_the_handlers_parent(node: ergopy.Node) -> None:
    s = await serve(node, pool=[])
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect, at="srv")
        await c.send("hi")
        m = await expect(s.queue, websocket.Message, at="srv")
        assert m.id == mc.id
        assert await c.recv() == "hi"
    await expect(s.queue, websocket.MessageDisconnect, at="srv")


@pytest.mark.parametrize("kind", [None, 0, websocket.MessageType.TEXT])
async def test_send_alias_with_type_none_or_zero_sends_text(node: ergopy.Node, kind: int | None) -> None:
    s = await serve(node, pool=["w1"], echo=False)
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_alias(mc.id, websocket.Message(type=kind, body="héllo".encode()))
        assert await c.recv() == "héllo"  # a str: it came as a TEXT frame


async def test_send_alias_with_type_binary_sends_binary(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], echo=False)
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_alias(mc.id, websocket.Message(type=websocket.MessageType.BINARY, body=b"\x00\xff"))
        assert await c.recv() == b"\x00\xff"


async def test_sending_close_closes_with_that_code_and_reason(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_alias(
            mc.id, websocket.Message(type=websocket.MessageType.CLOSE, body=websocket.close_body(4000, "done"))
        )
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None
        assert (e.value.rcvd.code, e.value.rcvd.reason) == (4000, "done")
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.code, md.reason) == (4000, "done")


async def test_ping_from_the_server_is_answered_and_not_delivered(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    mc = await expect(s.queue, websocket.MessageConnect)
    node.send_alias(mc.id, websocket.Message(type=websocket.MessageType.PING, body=b"are you there"))
    assert await raw.read_frame() == (9, b"are you there")
    raw.send_frame(10, b"are you there")  # the pong is taken by the connection...
    raw.send_frame(1, b"after")
    m = await expect(s.queue, websocket.Message)  # ...and never reaches the worker
    assert m.body == b"after"
    assert await raw.read_frame() == (1, b"after")
    raw.close()
    await expect(s.queue, websocket.MessageDisconnect)


async def test_ping_from_the_server_is_invisible_to_a_websockets_client(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_alias(mc.id, websocket.Message(type=websocket.MessageType.PING, body=b"p"))
        node.send_alias(mc.id, websocket.Message(body=b"data"))
        assert await c.recv() == "data"
        await c.send("x")
        assert (await expect(s.queue, websocket.Message)).body == b"x"


async def test_a_client_ping_is_answered_with_a_pong(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url()) as c:
        await expect(s.queue, websocket.MessageConnect)
        waiter = await c.ping(b"123")
        latency = await asyncio.wait_for(waiter, 5)
        assert latency >= 0
        await c.send("after ping")
        assert (await expect(s.queue, websocket.Message)).body == b"after ping"


async def test_close_code_and_reason_from_the_client_arrive_in_message_disconnect(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    c = await connect(s.url())
    mc = await expect(s.queue, websocket.MessageConnect)
    await c.close(4321, "client says bye")
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code, md.reason) == (mc.id, 4321, "client says bye")
    assert c.close_code == 4321  # the server echoed the code


async def test_abrupt_tcp_reset_gives_message_disconnect_1006(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    c = await connect(s.url())
    mc = await expect(s.queue, websocket.MessageConnect)
    c.transport.abort()
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code) == (mc.id, 1006)


async def test_send_exit_meta_closes_the_socket_and_the_worker_gets_message_disconnect(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_exit_meta(mc.id, gen.Error("ttt"))
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1011
        md = await expect(s.queue, websocket.MessageDisconnect)
        assert md.id == mc.id
        assert md.code == 1011
    assert not node.alias_exists(mc.id)


async def test_inspect_meta_reports_counts_addresses_and_process(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        for body in ("abc", "defgh"):
            await c.send(body)
            await expect(s.queue, websocket.Message)
            await c.recv()
        info = await node.inspect_meta(mc.id)
        assert info["bytes in"] == "8"
        assert info["bytes out"] == "8"
        assert info["messages in"] == "2"
        assert info["messages out"] == "2"
        assert info["process"] == "'w1'"
        assert info["remote"] == mc.remote_addr
        assert info["local"] == mc.local_addr == f"{HOST}:{s.port}"


async def test_inspect_meta_process_is_empty_with_an_empty_pool(node: ergopy.Node) -> None:
    s = await serve(node, pool=[])
    async with connect(s.url()):
        mc = await expect(s.queue, websocket.MessageConnect)
        assert (await node.inspect_meta(mc.id))["process"] == ""


# ---- upgrade failures ----------------------------------------------------------------------------


async def _status(port: int, request: bytes) -> int | None:
    raw = await RawClient.open(port)
    try:
        status, _ = await raw.request(request)
        return status
    finally:
        raw.close()


async def test_upgrade_without_sec_websocket_key_is_400(node: ergopy.Node) -> None:
    s = await serve(node)
    assert await _status(s.port, upgrade_request(s.port, omit=["Sec-WebSocket-Key"])) == 400


async def test_upgrade_with_an_invalid_sec_websocket_key_is_400(node: ergopy.Node) -> None:
    s = await serve(node)
    assert await _status(s.port, upgrade_request(s.port, key="not-a-16-byte-key")) == 400


async def test_upgrade_with_an_unsupported_version_is_400(node: ergopy.Node) -> None:
    s = await serve(node)
    assert await _status(s.port, upgrade_request(s.port, version="8")) == 400


async def test_upgrade_without_the_upgrade_header_is_400(node: ergopy.Node) -> None:
    s = await serve(node)
    assert await _status(s.port, upgrade_request(s.port, omit=["Upgrade"])) == 400


async def test_cross_origin_upgrade_is_403_with_the_default_check(node: ergopy.Node) -> None:
    s = await serve(node)
    request = upgrade_request(s.port, extra=[("Origin", "http://evil.example")])
    assert await _status(s.port, request) == 403
    assert s.queue.empty()


async def test_same_origin_upgrade_is_allowed_with_the_default_check(node: ergopy.Node) -> None:
    s = await serve(node)
    request = upgrade_request(s.port, extra=[("Origin", f"http://{HOST}:{s.port}")])
    assert await _status(s.port, request) == 101
    await expect(s.queue, websocket.MessageConnect)
    await expect(s.queue, websocket.MessageDisconnect)


async def test_cross_origin_upgrade_is_allowed_by_a_check_origin_returning_true(node: ergopy.Node) -> None:
    seen: list[websocket.Request] = []

    def check(r: websocket.Request) -> bool:
        seen.append(r)
        return True

    s = await serve(node, options=websocket.HandlerOptions(check_origin=check))
    request = upgrade_request(s.port, "/ws?a=b", extra=[("Origin", "http://evil.example")])
    assert await _status(s.port, request) == 101
    await expect(s.queue, websocket.MessageConnect)
    (r,) = seen
    assert (r.method, r.path, r.query, r.origin) == ("GET", "/ws", "a=b", "http://evil.example")
    assert r.remote_addr.startswith(f"{HOST}:")


async def test_upgrade_refused_by_check_origin_is_403(node: ergopy.Node) -> None:
    s = await serve(node, options=websocket.HandlerOptions(check_origin=lambda r: False))
    assert await _status(s.port, upgrade_request(s.port)) == 403


async def test_non_get_upgrade_is_405(node: ergopy.Node) -> None:
    s = await serve(node)
    assert await _status(s.port, upgrade_request(s.port, method="POST")) == 405


async def test_upgrade_before_the_handler_is_spawned_is_503(node: ergopy.Node) -> None:
    s = await serve(node, spawn_handler=False)
    assert await _status(s.port, upgrade_request(s.port)) == 503


async def test_upgrade_after_the_handler_terminated_is_503(node: ergopy.Node) -> None:
    s = await serve(node)
    alias = s.handler_alias
    assert alias is not None
    async with connect(s.url()) as c:  # an open connection outlives its handler, as in Ergo
        await expect(s.queue, websocket.MessageConnect)
        await _monitor_and_stop(node, s.server, alias)
        assert (await expect(s.queue, gen.MessageDownAlias, at="srv")).alias == alias
        assert await _status(s.port, upgrade_request(s.port)) == 503
        await c.send("still here")
        assert (await expect(s.queue, websocket.Message)).body == b"still here"


async def _monitor_and_stop(node: ergopy.Node, server: gen.PID, alias: gen.Alias) -> None:
    def go(p: Probe) -> None:
        p.monitor(alias)
        p.send_exit_meta(alias, gen.TERMINATE_REASON_NORMAL)

    await run(node, server, go)


# ---- negotiation, TLS, mux ------------------------------------------------------------------------


async def test_subprotocol_is_negotiated_from_the_handlers_list(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(subprotocols=["chat.v2", "chat.v1"]))
    async with connect(s.url(), subprotocols=["chat.v1"]) as c:
        assert c.subprotocol == "chat.v1"
        assert (await expect(s.queue, websocket.MessageConnect)).subprotocol == "chat.v1"


async def test_subprotocol_choice_follows_the_servers_preference_order(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(subprotocols=["chat.v2", "chat.v1"]))
    async with connect(s.url(), subprotocols=["chat.v1", "chat.v2"]) as c:
        assert c.subprotocol == "chat.v2"
        assert (await expect(s.queue, websocket.MessageConnect)).subprotocol == "chat.v2"


async def test_no_common_subprotocol_means_none(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(subprotocols=["chat.v2"]))
    async with connect(s.url(), subprotocols=["other"]) as c:
        assert c.subprotocol is None
        assert (await expect(s.queue, websocket.MessageConnect)).subprotocol is None


async def test_compression_is_negotiated_when_enabled_and_messages_round_trip(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(enable_compression=True))
    async with connect(s.url(), compression="deflate") as c:
        assert [e.name for e in c.protocol.extensions] == ["permessage-deflate"]
        mc = await expect(s.queue, websocket.MessageConnect)
        body = "compressible " * 5000
        for _ in range(3):  # several messages: the context is kept across them
            await c.send(body)
            assert (await expect(s.queue, websocket.Message)).body == body.encode()
            assert await c.recv() == body
        info = await node.inspect_meta(mc.id)
        assert info["compression"] == "true"


async def test_compression_is_declined_when_disabled(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with connect(s.url(), compression="deflate") as c:
        assert c.protocol.extensions == []
        await c.send("plain")
        assert await c.recv() == "plain"


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


async def test_wss_with_a_self_signed_certificate(node: ergopy.Node, tls_cert: tuple[Path, Path]) -> None:
    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    s = await serve(node, pool=["w1"], ssl=server_ctx)
    assert s.url().startswith("wss://")
    async with connect(s.url(), ssl=client_ctx) as c:
        await expect(s.queue, websocket.MessageConnect)
        await c.send("secret")
        assert (await expect(s.queue, websocket.Message)).body == b"secret"
        assert await c.recv() == "secret"
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1000


async def test_mux_serves_the_handler_at_ws_and_static_content_at_root(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], mux_static=b"<h1>hello</h1>")
    async with aiohttp.ClientSession() as http, http.get(f"http://{HOST}:{s.port}/") as r:
        assert r.status == 200
        assert await r.read() == b"<h1>hello</h1>"
        assert r.headers["Content-Type"].startswith("text/html")
    async with connect(s.url("/ws")) as c:
        assert (await expect(s.queue, websocket.MessageConnect)).path == "/ws"
        await c.send("via mux")
        assert await c.recv() == "via mux"


# ---- shutdown --------------------------------------------------------------------------------------


async def test_node_stop_closes_clients_with_1001_and_delivers_disconnect_first(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1", "w2"])
    c1 = await connect(s.url())
    c2 = await connect(s.url())
    ids = {(await expect(s.queue, websocket.MessageConnect)).id for _ in range(2)}
    await asyncio.wait_for(node.stop(), 10)
    # both disconnects were delivered before stop returned
    got = [s.queue.get_nowait(), s.queue.get_nowait()]
    assert {g.at for g in got} == {"w1", "w2"}
    assert {g.message.id for g in got} == ids
    assert all(isinstance(g.message, websocket.MessageDisconnect) and g.message.code == 1001 for g in got)
    for c in (c1, c2):
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1001


async def test_node_stop_leaves_nothing_and_closes_the_clients_socket(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    c = await connect(s.url())
    await expect(s.queue, websocket.MessageConnect)
    await asyncio.wait_for(node.stop(), 10)
    assert not any(node.stats().values()), node.stats()
    await asyncio.wait_for(c.wait_closed(), 5)
    assert c.state is websockets.protocol.State.CLOSED
    assert s.probe.server._lowlevel.connections == []


async def test_a_server_connection_keeps_every_field_in_its_slots(node: ergopy.Node) -> None:
    """An idle connection's memory: the ``Connection`` of a live, pinged, used connection has
    put nothing in an instance dict (a field added without its slot lands there, and a dict of
    30 keys costs every connection 1.6 KiB: ``benchmarks/ws_memory.py`` shows where)."""
    options = websocket.HandlerOptions(ping_interval=0.05, ping_timeout=1.0)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port)
    mc = await expect(s.queue, websocket.MessageConnect)
    assert await raw.read_frame() == (9, b"")  # its keepalive ran...
    raw.send_frame(10, b"")
    raw.send_frame(1, b"hello")
    await expect(s.queue, websocket.Message)  # ...it read, and it wrote (the echo)
    assert await raw.read_frame() == (1, b"hello")
    record = node._alias_record(mc.id)
    conn = record.behavior
    assert type(conn) is websocket.Connection
    assert vars(conn) == {}, sorted(vars(conn))
    raw.close()
    await expect(s.queue, websocket.MessageDisconnect)
