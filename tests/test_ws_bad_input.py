"""What a hostile or broken peer sends: each gets the RFC 6455 close code (or a 400), and the
server, the node and the other connections carry on."""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.asyncio.client import connect
from ws_helpers import RawClient, Served, expect, serve

import ergopy
from ergopy.meta import websocket

pytestmark = pytest.mark.timeout(20)  # a hang fails fast; every wait inside has its own timeout


async def still_serving(s: Served) -> None:
    """A fresh connection on the same server echoes, and its worker sees it all."""
    assert s.node.is_alive()
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        await c.send("are you ok")
        assert await asyncio.wait_for(c.recv(), 5) == "are you ok"
        assert (await expect(s.queue, websocket.Message)).id == mc.id
    assert (await expect(s.queue, websocket.MessageDisconnect)).id == mc.id


async def closed_with(s: Served, raw: RawClient, code: int) -> None:
    """The server answered with a close frame carrying ``code``, and the worker was told the same."""
    assert await raw.read_close() == code
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert md.code == code
    raw.close()


async def test_a_garbage_handshake_gets_400_or_a_closed_socket(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(os.urandom(200).replace(b"\r\n", b"..") + b"\r\n\r\n")
    assert status in (400, None)
    await raw.wait_eof()
    raw.close()
    assert s.queue.empty()
    await still_serving(s)


async def test_a_request_line_without_http_version_gets_400(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(b"GET /ws\r\n\r\n")
    assert status in (400, None)
    raw.close()
    await still_serving(s)


async def test_a_frame_header_over_the_size_limit_closes_with_1009(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(max_message_size=1 << 16))
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_header(2, 1 << 40)  # announces a terabyte; nothing is buffered for it
    await closed_with(s, raw, 1009)
    await still_serving(s)


async def test_invalid_utf8_text_closes_with_1007(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(1, b"ok \xff\xfe not utf-8")
    await closed_with(s, raw, 1007)
    await still_serving(s)


async def test_invalid_utf8_split_across_fragments_closes_with_1007(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(1, b"caf\xc3", fin=False)  # a valid prefix...
    raw.send_frame(0, b"(")  # ...completed by a byte that is not a continuation byte
    await closed_with(s, raw, 1007)
    await still_serving(s)


async def test_valid_utf8_split_across_fragments_is_delivered_whole(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(1, b"caf\xc3", fin=False)
    raw.send_frame(0, b"\xa9")
    m = await expect(s.queue, websocket.Message)
    assert (m.type, m.body) == (websocket.MessageType.TEXT, "café".encode())
    raw.close()


async def test_an_unmasked_client_frame_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(1, b"naked", mask=False)
    await closed_with(s, raw, 1002)
    assert s.queue.empty() or not isinstance(s.queue.get_nowait().message, websocket.Message)
    await still_serving(s)


async def test_a_reserved_opcode_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(3, b"?")
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_reserved_control_opcode_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(0xB, b"")
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_rsv_bits_without_an_extension_close_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(1, b"x", rsv=0b010)
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_control_frame_over_125_bytes_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(9, b"p" * 126)
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_fragmented_control_frame_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(9, b"p", fin=False)
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_continuation_without_a_start_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(0, b"orphan")
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_close_frame_with_an_invalid_code_closes_with_1002(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(8, websocket.close_body(999, ""))
    await closed_with(s, raw, 1002)
    await still_serving(s)


async def test_a_peer_that_vanishes_mid_frame_gives_1006(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.writer.write(b"\x81\x85ab")  # half a header
    raw.close()
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1006
    await still_serving(s)


async def test_frames_split_at_every_byte_are_delivered_then_an_unmasked_one_fails(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    sink = RawClient(raw.reader, raw.writer)
    frames = bytearray()
    real_write = raw.writer.write
    raw.writer.write = frames.extend  # type: ignore[method-assign]  # collect the frames' bytes...
    sink.send_frame(1, b"a" * 130)  # a 16-bit length header
    sink.send_frame(2, b"b" * 3)
    raw.writer.write = real_write  # type: ignore[method-assign]
    for i in range(len(frames)):  # ...and send them one byte per write
        raw.writer.write(frames[i : i + 1])
        await raw.writer.drain()
    assert (await expect(s.queue, websocket.Message)).body == b"a" * 130
    assert (await expect(s.queue, websocket.Message)).body == b"bbb"
    raw.send_frame(1, b"naked", mask=False)
    await closed_with(s, raw, 1002)
    await still_serving(s)
