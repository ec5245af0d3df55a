"""The server's own opening handshake (websocket.upgrade): what it accepts, what it answers,
and that an upgraded socket leaves aiohttp's request handling for good."""

from __future__ import annotations

import asyncio
import gc
import os
import struct
from typing import Any, cast

import pytest
from aiohttp import EofStream
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from websockets.asyncio.client import connect
from ws_helpers import RawClient, expect, serve, upgrade_request

import ergopy
from ergopy.meta import websocket
from ergopy.meta.websocket import upgrade
from ergopy.meta.websocket.aiohttp_fixes import ClientFrameMaskCheck

pytestmark = pytest.mark.timeout(20)


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + key + masked


async def test_frames_sent_with_the_upgrade_request_are_delivered(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port) + _masked_frame(1, b"early") + _masked_frame(2, b"bird"))
    assert status == 101
    mc = await expect(s.queue, websocket.MessageConnect)
    m1 = await expect(s.queue, websocket.Message)
    m2 = await expect(s.queue, websocket.Message)
    assert (m1.id, m1.type, m1.body) == (mc.id, websocket.MessageType.TEXT, b"early")
    assert (m2.id, m2.type, m2.body) == (mc.id, websocket.MessageType.BINARY, b"bird")
    assert await raw.read_frame() == (1, b"early")  # the probe echoes
    raw.close()
    await expect(s.queue, websocket.MessageDisconnect)


async def test_the_101_carries_the_accept_key_of_rfc_6455(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, head = await raw.request(upgrade_request(s.port, key="dGhlIHNhbXBsZSBub25jZQ=="))  # RFC 6455 §1.3
    assert status == 101
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert b"\r\nUpgrade: websocket\r\n" in head
    raw.close()


async def test_a_connection_header_with_several_tokens_upgrades(node: ergopy.Node) -> None:
    """Firefox sends ``Connection: keep-alive, Upgrade``."""
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    request = upgrade_request(s.port).replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive, Upgrade\r\n")
    status, _ = await raw.request(request)
    assert status == 101
    await expect(s.queue, websocket.MessageConnect)
    raw.close()


async def test_upgrade_without_connection_upgrade_is_400(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port, omit=["Connection"]))
    assert status == 400
    raw.close()
    assert s.queue.empty()


async def test_an_upgraded_socket_leaves_aiohttp_and_the_server_counts_it_until_it_closes(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    lowlevel = s.probe.server._lowlevel
    async with connect(s.url()) as c:
        await expect(s.queue, websocket.MessageConnect)
        await c.send("hi")
        assert await c.recv() == "hi"
        assert lowlevel.connections == []  # no aiohttp request handler is kept for it
        assert lowlevel.upgraded == 1
        assert (await node.inspect_meta(s.probe.server_alias))["connections"] == "1"
        assert s.handler.connections == 1
        assert not lowlevel.empty.is_set()
    await expect(s.queue, websocket.Message)
    await expect(s.queue, websocket.MessageDisconnect)
    assert s.handler.connections == 0  # told before MessageDisconnect went out
    await asyncio.wait_for(lowlevel.empty.wait(), 5)  # once the socket is closed
    assert lowlevel.upgraded == 0
    assert s.handler.accepted == 1


class _PausableTransport:
    """Enough of a transport for the protocol: reading can be paused and resumed."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def test_frames_already_read_are_delivered_after_the_socket_is_lost_while_the_queue_was_full() -> None:
    """aiohttp's reader parks on its full queue by weak reference only, with the frames it has
    read but not queued: the protocol keeps it, so they are all delivered after a reset."""
    loop = asyncio.get_running_loop()
    proto = upgrade.UpgradedProtocol(cast(Any, _PausableTransport()))
    queue = WebSocketDataQueue(cast(Any, proto), 2**16, loop=loop)
    proto.attach(queue, ClientFrameMaskCheck(WebSocketReader(queue, 0, compress=False, decode_text=False), queue))
    payload = b"x" * 1000
    frame = struct.pack("!BBH", 0x82, 0x80 | 126, len(payload)) + b"\0\0\0\0" + payload  # zero mask key
    proto.data_received(frame * 1000)
    assert queue._stalled_reader is not None  # the queue is full: the reader holds the rest
    proto.connection_lost(ConnectionResetError())
    gc.collect()
    got = 0
    with pytest.raises(EofStream):
        while True:
            msg = await queue.read()
            assert msg[1] == payload
            got += 1
    assert got == 1000
