"""The server's own opening handshake (websocket.upgrade): what it accepts, what it answers,
and that an upgraded socket never enters aiohttp's request handling."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from typing import Any, cast

import pytest
from websockets.asyncio.client import connect
from ws_helpers import RawClient, expect, serve, upgrade_request

import ergopy
from ergopy.meta import websocket
from ergopy.meta.websocket import engine

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
    """Enough of a transport for the protocol: reading can be paused and resumed, writes are dropped."""

    def __init__(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str) -> Any:
        return None

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def test_frames_already_read_are_delivered_after_the_socket_is_lost_while_reading_was_paused() -> None:
    """Frames read while nobody takes them (flood control, or before the connection starts)
    are held back with the socket paused; when the socket is then lost they are all
    delivered, in order, before the end (1006)."""
    tp = _PausableTransport()
    proto = engine.WSProtocol(client=False)
    proto.connection_made(cast(Any, tp))
    payload = b"x" * 1000
    frame = struct.pack("!BBH", 0x82, 0x80 | 126, len(payload)) + b"\0\0\0\0" + payload  # zero mask key
    proto.data_received(frame * 1000)
    assert tp.paused  # no callback yet: the first message waits, the socket is paused
    proto.connection_lost(ConnectionResetError())
    got: list[bytes] = []
    proto.attach(lambda op, body: got.append(body))
    assert got == [payload] * 1000
    assert not await proto.wait()  # then the end
    assert proto.close_code == 1006


async def test_an_upgrade_after_a_plain_request_on_the_same_connection_is_refused_with_400(node: ergopy.Node) -> None:
    """The front protocol takes an upgrade only as a connection's first request; one that comes
    after a plain request (keep-alive) would have to be taken from aiohttp's internals, so it
    is refused and the connection closed: clients open WebSockets on fresh connections."""
    s = await serve(node, pool=["w1"], mux_static=b"")
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200
    status, head = await raw.request(upgrade_request(s.port))
    assert status == 400
    assert b"new connection" in head or b"Connection: close" in head
    raw.close()
    assert s.queue.empty()


@pytest.mark.parametrize("unmask", [engine.unmask, engine.py_unmask], ids=["unmask", "py_unmask"])
def test_unmask_is_the_rfc_6455_xor_for_every_length(unmask: Any) -> None:
    key = b"\x01\x02\x03\xf4"
    for n in (*range(20), 125, 126, 511, 512, 513, 65536 + 3):
        data = os.urandom(n)
        expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        assert unmask(key, data) == expected
        assert unmask(key, memoryview(data)) == expected  # any contiguous bytes-like


def test_the_c_unmask_is_built_where_there_is_a_c_compiler() -> None:
    """A silent fallback to the Python one would cost 5-10x per small frame unnoticed."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the pure Python unmask is the one in use")
    assert engine.unmask is not engine.py_unmask
    with pytest.raises(ValueError, match="4 bytes"):
        engine.unmask(b"abc", b"payload")
    with pytest.raises(TypeError):
        engine.unmask(b"abcd", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        engine.unmask(b"abcd", memoryview(b"abcdefgh")[::2])  # type: ignore[arg-type]
