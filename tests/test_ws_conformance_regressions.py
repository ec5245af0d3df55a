"""Regressions the Autobahn|Testsuite found (``tests/conformance/run``), each on a real socket.

Server side: a hand-made client (``RawClient``) sends the frames; client side: our
``create_connection`` against our own server.
"""

from __future__ import annotations

import asyncio
import gc
import struct

import pytest
from ws_helpers import Got, Probe, RawClient, expect, run, serve

import ergopy
from ergopy import gen
from ergopy.meta import websocket

LIMIT = 1000


# ---- message size: exactly max_message_size passes (aiohttp refused it: Autobahn 9.1.6, 9.2.6) ----


@pytest.mark.parametrize("opcode", [1, 2])
async def test_server_accepts_a_message_of_exactly_max_message_size(node: ergopy.Node, opcode: int) -> None:
    s = await serve(node, options=websocket.HandlerOptions(max_message_size=LIMIT))
    c = await RawClient.connect(s.port)
    try:
        c.send_frame(opcode, b"a" * LIMIT)
        assert await c.read_frame() == (opcode, b"a" * LIMIT)
        # the same size in two fragments
        c.send_frame(opcode, b"b" * (LIMIT - 10), fin=False)
        c.send_frame(0, b"b" * 10)
        assert await c.read_frame() == (opcode, b"b" * LIMIT)
        c.send_frame(opcode, b"c" * (LIMIT + 1))
        assert await c.read_close() == 1009
        await c.wait_eof()
    finally:
        c.close()
    await expect(s.queue, websocket.MessageConnect)
    await expect(s.queue, websocket.Message)
    await expect(s.queue, websocket.Message)
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1009


async def test_server_with_compression_accepts_exactly_max_message_size(node: ergopy.Node) -> None:
    """Through permessage-deflate (aiohttp decompresses up to its limit + 1; the exact check is ours)."""
    s = await serve(node, options=websocket.HandlerOptions(max_message_size=LIMIT, enable_compression=True))
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("c1", Probe, None, q, False)

    async def dial(p: Probe) -> gen.Alias:
        conn = await websocket.create_connection(
            websocket.ConnectionOptions(url=s.url(), enable_compression=True, max_message_size=LIMIT)
        )
        return p.spawn_meta(conn, gen.MetaOptions())

    alias: gen.Alias = await run(node, "c1", dial)
    assert (await expect(q, websocket.MessageConnect)).id == alias
    node.send_alias(alias, websocket.Message(type=websocket.MessageType.BINARY, body=b"z" * LIMIT))
    m = await expect(q, websocket.Message)
    assert m.body == b"z" * LIMIT
    node.send_alias(alias, websocket.Message(type=websocket.MessageType.BINARY, body=b"z" * (LIMIT + 1)))
    assert (await expect(q, websocket.MessageDisconnect)).code == 1009


async def test_client_accepts_a_message_of_exactly_max_message_size(node: ergopy.Node) -> None:
    s = await serve(node)  # echoes; its own limit is the 1 MiB default
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("c1", Probe, None, q, False)

    async def dial(p: Probe) -> gen.Alias:
        conn = await websocket.create_connection(websocket.ConnectionOptions(url=s.url(), max_message_size=LIMIT))
        return p.spawn_meta(conn, gen.MetaOptions())

    alias: gen.Alias = await run(node, "c1", dial)
    await expect(q, websocket.MessageConnect)
    node.send_alias(alias, websocket.Message(body=b"t" * LIMIT))
    assert (await expect(q, websocket.Message)).body == b"t" * LIMIT
    node.send_alias(alias, websocket.Message(body=b"t" * (LIMIT + 1)))  # its echo is one byte too big for us
    assert (await expect(q, websocket.MessageDisconnect)).code == 1009


# ---- close codes a peer must not send fail the connection with 1002 (aiohttp let 1006 through: 7.9.5) ----


@pytest.mark.parametrize(
    ("code", "answer"),
    [
        (1000, 1000),
        (1001, 1001),
        (1014, 1014),
        (3000, 3000),
        (4999, 4999),
        (999, 1002),
        (1004, 1002),
        (1005, 1002),
        (1006, 1002),
        (1015, 1002),
        (1016, 1002),
        (2999, 1002),
        (5000, 1002),
        (65535, 1002),
    ],
)
async def test_server_answers_a_close_code(node: ergopy.Node, code: int, answer: int) -> None:
    s = await serve(node)
    c = await RawClient.connect(s.port)
    try:
        c.send_frame(8, struct.pack("!H", code) + b"bye")
        assert await c.read_close() == answer
        await c.wait_eof()  # and the server closes TCP after the exchange
    finally:
        c.close()
    await expect(s.queue, websocket.MessageConnect)
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == answer


# ---- aiohttp closes a client socket when its response object is collected ----


async def test_client_connection_survives_garbage_collection(node: ergopy.Node) -> None:
    s = await serve(node)
    q: asyncio.Queue[Got] = asyncio.Queue()
    await node.spawn_register("c1", Probe, None, q, False)

    async def dial(p: Probe) -> gen.Alias:
        conn = await websocket.create_connection(websocket.ConnectionOptions(url=s.url()))
        return p.spawn_meta(conn, gen.MetaOptions())

    alias: gen.Alias = await run(node, "c1", dial)
    await expect(q, websocket.MessageConnect)
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0.01)
    node.send_alias(alias, websocket.Message(body=b"still here"))
    assert (await expect(q, websocket.Message)).body == b"still here"
    node.send_alias(alias, websocket.Message(type=websocket.MessageType.CLOSE, body=websocket.close_body(1000)))
    assert (await expect(q, websocket.MessageDisconnect)).code == 1000


async def test_a_finished_client_connection_leaves_no_unclosed_aiohttp_connection(node: ergopy.Node) -> None:
    """Its aiohttp response is closed with the connection, so collecting it logs nothing."""
    loop = asyncio.get_running_loop()
    logged: list[str] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: logged.append(str(ctx.get("message"))))
    try:
        s = await serve(node)
        q: asyncio.Queue[Got] = asyncio.Queue()
        await node.spawn_register("c1", Probe, None, q, False)

        async def dial(p: Probe) -> gen.Alias:
            conn = await websocket.create_connection(websocket.ConnectionOptions(url=s.url()))
            return p.spawn_meta(conn, gen.MetaOptions())

        alias: gen.Alias = await run(node, "c1", dial)
        await expect(q, websocket.MessageConnect)
        node.send_alias(alias, websocket.Message(type=websocket.MessageType.CLOSE, body=websocket.close_body(1000)))
        assert (await expect(q, websocket.MessageDisconnect)).code == 1000
        for _ in range(3):
            await asyncio.sleep(0.05)
            gc.collect()
    finally:
        loop.set_exception_handler(old)
    assert "Unclosed connection" not in logged
