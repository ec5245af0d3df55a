"""ergopy's WebSocket engine (websocket.engine) on its own terms: public APIs only, messages
pushed from data_received, UTF-8 failed fast, the shared no-context-takeover compressor."""

from __future__ import annotations

import ast
import asyncio
import gc
import struct
import weakref
import zlib
from pathlib import Path
from typing import Any

import pytest
from ws_helpers import Got, RawClient, expect, serve, upgrade_request

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket
from ergopy.meta.websocket import engine
from ergopy.node import runner

pytestmark = pytest.mark.timeout(20)

SRC = Path(__file__).resolve().parents[1] / "src" / "ergopy"


def test_no_private_name_of_any_dependency_is_imported() -> None:
    """aiohttp (or any other package) only through its public names: no ``_module`` on the
    import path, no ``_name`` imported, so a newer aiohttp can not break the engine."""
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if not node.module.startswith("ergopy"):
                    parts = node.module.split(".")
                    names = [a.name for a in node.names]
                    if any(p.startswith("_") and p != "__future__" for p in parts) or any(
                        n.startswith("_") for n in names
                    ):
                        offenders.append(f"{path.relative_to(SRC)}: from {node.module} import {', '.join(names)}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if any(p.startswith("_") for p in a.name.split(".")):
                        offenders.append(f"{path.relative_to(SRC)}: import {a.name}")
    assert offenders == []
    # the internals of aiohttp's objects the old engine reached into: never read off another object
    aiohttp_internals = {
        "_message_tail", "_task_handler", "_reading_paused", "_buffer_paused", "_manager",
        "_waiter", "_writer", "_reader", "_response", "_stalled_reader",
    }  # fmt: skip
    for path in (SRC / "meta").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in aiohttp_internals:
                owner = node.value
                assert isinstance(owner, ast.Name) and owner.id == "self", f"{path.name}:{node.lineno} .{node.attr}"
        assert "web_protocol" not in path.read_text()


def _masked(first: int, payload: bytes) -> bytes:
    key = b"\x11\x22\x33\x44"
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        return struct.pack("!BB", first, 0x80 | len(payload)) + key + masked
    return struct.pack("!BBH", first, 0x80 | 126, len(payload)) + key + masked


async def test_invalid_utf8_in_a_first_fragment_closes_with_1007_before_the_message_ends(node: ergopy.Node) -> None:
    """Fail fast (Autobahn 6.4.1/6.4.2): the fragment that holds invalid UTF-8 closes the
    connection, without waiting for a final fragment that may never come."""
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port))
    assert status == 101
    await expect(s.queue, websocket.MessageConnect)
    raw.writer.write(_masked(0x01, b"ok \xc0\xaf then"))  # text, not final; 0xC0 is never valid UTF-8
    assert await raw.read_close() == 1007
    d = await expect(s.queue, websocket.MessageDisconnect)
    assert d.code == 1007
    raw.close()


async def test_a_valid_multibyte_character_split_across_fragments_passes(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port))
    assert status == 101
    await expect(s.queue, websocket.MessageConnect)
    text = "é€😀".encode()
    raw.writer.write(_masked(0x01, text[:1]) + _masked(0x00, text[1:4]) + _masked(0x80, text[4:]))
    m = await expect(s.queue, websocket.Message)
    assert m.body == text
    raw.close()


async def _deflate_client(port: int) -> RawClient:
    raw = await RawClient.open(port)
    status, head = await raw.request(
        upgrade_request(port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")])
    )
    assert status == 101
    assert b"server_no_context_takeover" in head
    return raw


async def _read_compressed(raw: RawClient) -> bytes:
    b1, b2 = await asyncio.wait_for(raw.reader.readexactly(2), 5)
    assert b1 & 0x40, "the echo is compressed"
    n = b2 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await raw.reader.readexactly(2))
    return await raw.reader.readexactly(n)


async def test_no_context_takeover_messages_stand_alone_across_connections(node: ergopy.Node) -> None:
    """Connections without context takeover share one compressor per loop: every message it
    writes must inflate on its own (a fresh decompressor), whatever was compressed before
    for this or another connection."""
    options = websocket.HandlerOptions(enable_compression=True, compression_threshold=0)
    s = await serve(node, pool=["w1"], options=options)
    a = await _deflate_client(s.port)
    b = await _deflate_client(s.port)
    for _ in range(2):
        await expect(s.queue, websocket.MessageConnect)
    body = b"the same words again and again, " * 3
    for i in range(6):
        c = (a, b)[i % 2]
        c.writer.write(_masked(0x82, body))  # uncompressed in, echoed compressed
        wire = await _read_compressed(c)
        assert zlib.decompressobj(-15).decompress(wire + b"\x00\x00\xff\xff") == body
        assert len(wire) < len(body) // 2
    a.close()
    b.close()


class SyncProbe(act.Actor):
    """A probe whose ``handle_message`` is a plain function: it runs in the node's run queue."""

    def init(self, queue: asyncio.Queue[Got], echo: bool = True) -> None:
        self.queue = queue
        self.echo = echo

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.queue.put_nowait(Got(str(self.name), message))
        if self.echo and type(message) is websocket.Message:
            self.send_alias(message.id, message)


async def test_replies_queued_in_a_run_of_the_run_queue_are_written_at_its_end_with_no_callback_of_their_own(
    node: ergopy.Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync worker's reply is queued while the node runs its run queue, whose end writes
    it (``after_run``): the engine's own flush callback is then never scheduled, where it
    used to run once per run and find nothing to write."""
    callbacks = 0
    flusher_run = engine._Flusher._run

    def counted(self: Any) -> None:
        nonlocal callbacks
        callbacks += 1
        flusher_run(self)

    s = await serve(node, pool=["w1"], worker=SyncProbe)
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    monkeypatch.setattr(engine._Flusher, "_run", counted)
    for i in range(20):
        raw.send_frame(0x1, b"echo %d" % i)
        assert await raw.read_frame() == (0x1, b"echo %d" % i)
    assert callbacks == 0
    raw.send_frame(0x9, b"ping")  # a pong is queued from data_received, outside any run: it takes the callback
    assert await raw.read_frame() == (0xA, b"ping")
    assert callbacks == 1
    raw.close()


@pytest.mark.parametrize(
    ("threshold", "compressed"),
    [(None, {127: False, 128: True, 400: True}), (0, {1: True, 127: True})],
    ids=["default-128", "zero"],
)
async def test_messages_under_the_compression_threshold_go_uncompressed(
    node: ergopy.Node, threshold: int | None, compressed: dict[int, bool]
) -> None:
    """With permessage-deflate on, a message shorter than ``compression_threshold`` (128 by
    default) is sent with RSV1 clear, as RFC 7692 allows per message; one as long or longer
    is compressed; threshold 0 compresses every message."""
    extra = {} if threshold is None else {"compression_threshold": threshold}
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(enable_compression=True, **extra))
    c = await _deflate_client(s.port)
    await expect(s.queue, websocket.MessageConnect)
    for size, want in compressed.items():
        body = bytes(i % 7 for i in range(size))
        c.writer.write(_masked(0x82, body))
        b1, b2 = await asyncio.wait_for(c.reader.readexactly(2), 5)
        n = b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await c.reader.readexactly(2))
        wire = await c.reader.readexactly(n)
        assert bool(b1 & 0x40) == want, size
        got = zlib.decompressobj(-15).decompress(wire + b"\x00\x00\xff\xff") if want else wire
        assert got == body
    c.close()


async def test_a_compressed_message_fragmented_without_end_is_cut_with_1009(node: ergopy.Node) -> None:
    """The inflated size is known only at the end; until then what a compressed fragmented
    message holds is bounded (2 x max_message_size + 1 KiB), so endless fragments can not
    grow the server's memory: 1009 at once."""
    options = websocket.HandlerOptions(enable_compression=True, max_message_size=1000)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]))
    assert status == 101
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(0x2, b"\x00" * 100, fin=False, rsv=4)  # RSV1: compressed, first fragment
    for _ in range(40):
        raw.send_frame(0x0, b"\x00" * 100, fin=False)
    assert await raw.read_close() == 1009
    d = await expect(s.queue, websocket.MessageDisconnect)
    assert d.code == 1009
    raw.close()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_closed_loop_that_served_websockets_is_freed(loop_kind: str) -> None:
    """The engine's per-loop flusher and the runner's per-loop hooks are kept in dicts keyed
    weakly by the loop: nothing in them may refer back to the loop, or every loop a program
    (or a test suite) ever served WebSockets on would stay alive for ever, with its node."""
    factory = pytest.importorskip("uvloop").new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop

    async def serve_one_echo() -> None:
        n = await ergopy.start_node("freed@localhost")
        try:
            served = await serve(n)
            raw = await RawClient.connect(served.port)
            raw.send_frame(0x1, b"hi")
            await expect(served.queue, websocket.MessageConnect)
            await expect(served.queue, websocket.Message)
            assert await raw.read_frame() == (0x1, b"hi")
            raw.close()
        finally:
            await n.stop()

    loop = factory()
    try:
        loop.run_until_complete(serve_one_echo())
    finally:
        loop.close()
    # the engine and the runner did keep something for this loop: the check below means something
    assert loop in engine._FLUSHERS and loop in runner._AFTER_RUN
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    holders = [type(r).__name__ for r in gc.get_referrers(gone())]
    assert gone() is None, f"the closed loop is still referred to by {holders}"
