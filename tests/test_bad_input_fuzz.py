"""Property-based bad input on real sockets (hypothesis): whatever a client sends, it gets an
HTTP status, a close code, or a closed socket within a bounded time, never a hang; the node
stays up, nothing escapes but logged errors, and another connection keeps echoing.

``test_ws_bad_input.py`` has the hand-picked cases (each RFC 6455 close code); here the
inputs are generated. ``ERGOPY_FUZZ_EXAMPLES`` sets the examples per property (default 40).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from ws_helpers import HOST, RawClient, ServerProbe, upgrade_request

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket

EXAMPLES = int(os.environ.get("ERGOPY_FUZZ_EXAMPLES", "40"))
LIMIT = 4096  # max_message_size of the fuzzed server
HEAD_TIMEOUT = 0.3  # WebServerOptions.handshake_timeout: the request head must arrive within this
PING = 0.4  # keepalive interval and timeout: a connection left waiting for more bytes ends by itself
BOUND = HEAD_TIMEOUT + 3 * PING + 2.0  # the longest any outcome may take
# close codes a server may send (RFC 6455 §7.4.1); 1006 is what the worker hears on a dropped socket
SERVER_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011}

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Recorder(act.Actor):
    """Echoes every message; records each connection's MessageConnect and MessageDisconnect."""

    def init(self, seen: dict[gen.Alias, list[Any]]) -> None:
        self.seen = seen

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, websocket.Message):
            self.send_alias(message.id, websocket.Message(type=message.type, body=message.body))  # type: ignore[arg-type]
        elif isinstance(message, websocket.MessageConnect):
            self.seen[message.id] = [message]
        elif isinstance(message, websocket.MessageDisconnect):
            self.seen.setdefault(message.id, []).append(message)


@dataclass
class Fuzzed:
    node: ergopy.Node
    port: int
    witness: ClientConnection
    seen: dict[gen.Alias, list[Any]]
    examples: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: tuple[str, int | None]) -> None:
        self.examples += 1
        key = f"{outcome[0]} {outcome[1]}" if outcome[1] is not None else outcome[0]
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    async def check_alive(self) -> None:
        """The node is up, the witness connection echoes, and every connection that ended was reported."""
        assert self.node.is_alive()
        n = self.examples
        await self.witness.send(f"still there {n}")
        async with asyncio.timeout(5):
            assert await self.witness.recv() == f"still there {n}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOUND
        while any(len(v) < 2 for a, v in self.seen.items() if a != self.witness_id):
            assert loop.time() < deadline, f"a connection was never reported disconnected: {self.seen}"
            await asyncio.sleep(0.01)

    @property
    def witness_id(self) -> gen.Alias:
        return next(iter(self.seen))


@pytest.fixture
async def fuzzed(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Fuzzed]:
    caplog.set_level(logging.DEBUG)
    seen: dict[gen.Alias, list[Any]] = {}
    await node.spawn_register("rec", Recorder, None, seen)
    options = websocket.HandlerOptions(
        process_pool=["rec"], max_message_size=LIMIT, ping_interval=PING, ping_timeout=PING
    )
    probes: list[ServerProbe] = []

    def factory() -> ServerProbe:
        probes.append(ServerProbe())
        return probes[-1]

    queue: asyncio.Queue[Any] = asyncio.Queue()
    await node.spawn_register("srv", factory, None, queue, options, True, None, {"handshake_timeout": HEAD_TIMEOUT})
    port = probes[0].server.port
    async with connect(f"ws://{HOST}:{port}/ws") as witness:
        f = Fuzzed(node, port, witness, seen)
        yield f
        await f.check_alive()
        print(f"\n{f.examples} examples: {dict(sorted(f.outcomes.items()))}")
    assert_clean_log(caplog)


def assert_clean_log(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing CRITICAL, no traceback, nothing from asyncio's handler of lost exceptions."""
    bad = [
        r
        for r in caplog.records
        if r.levelno >= logging.CRITICAL
        or r.exc_info
        or (r.name.startswith("asyncio") and r.levelno >= logging.ERROR)
        or (r.name.startswith("aiohttp") and r.levelno >= logging.ERROR)
    ]
    assert not bad, [f"{r.name} {r.levelname} {r.getMessage()}" for r in bad]


# ---- the outcome of one raw connection -------------------------------------------------------------


async def outcome(raw: RawClient, *, upgraded: bool) -> tuple[str, int | None]:
    """Read until the server answers or hangs up: ("http", status), ("close", code) or ("eof", None).

    Fails the test if nothing decisive happens within ``BOUND`` seconds.
    """
    r = raw.reader
    try:
        async with asyncio.timeout(BOUND):
            if not upgraded:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return "eof", None
                status = int(head.split(b" ", 2)[1])
                assert status != 101, "bad input was upgraded"
                return "http", status
            while True:
                try:
                    b1, b2 = await r.readexactly(2)
                    n = b2 & 0x7F
                    if n == 126:
                        (n,) = struct.unpack("!H", await r.readexactly(2))
                    elif n == 127:
                        (n,) = struct.unpack("!Q", await r.readexactly(8))
                    payload = await r.readexactly(n)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return "eof", None
                if b1 & 0x0F == 8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    assert code in SERVER_CODES, f"close code {code}"
                    return "close", code
    except TimeoutError:
        pytest.fail(f"no answer, close or hang-up within {BOUND} s")
    finally:
        raw.close()


async def upgraded(port: int) -> RawClient:
    raw = await RawClient.open(port)
    status, _ = await raw.request(upgrade_request(port))
    assert status == 101
    return raw


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame (zero mask key: the payload goes as it is)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return struct.pack("!BB", first, 0x80 | n) + b"\0\0\0\0" + payload
    if n < 65536:
        return struct.pack("!BBH", first, 0x80 | 126, n) + b"\0\0\0\0" + payload
    return struct.pack("!BBQ", first, 0x80 | 127, n) + b"\0\0\0\0" + payload


def fragments(op: int, payload: bytes, cuts: list[int]) -> bytes:
    """``payload`` as one message in fragments cut at ``cuts`` (first frame ``op``, then continuations)."""
    points = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
    pieces = [payload[a:b] for a, b in itertools.pairwise(points)] or [b""]
    out = b""
    for i, piece in enumerate(pieces):
        out += frame(op if i == 0 else 0, piece, fin=i == len(pieces) - 1)
    return out


async def send_and_see(f: Fuzzed, raw: RawClient, data: bytes, eof: bool, *, upgraded: bool) -> tuple[str, int | None]:
    raw.writer.write(data)
    if eof and raw.writer.can_write_eof():
        raw.writer.write_eof()
    result = await outcome(raw, upgraded=upgraded)
    f.count(result)
    await f.check_alive()
    return result


# ---- before the upgrade --------------------------------------------------------------------------------


@fuzz
@given(data=st.binary(min_size=1, max_size=2048), eof=st.booleans())
async def test_random_bytes_as_the_request(fuzzed: Fuzzed, data: bytes, eof: bool) -> None:
    raw = await RawClient.open(fuzzed.port)
    kind, status = await send_and_see(fuzzed, raw, data, eof, upgraded=False)
    if kind == "http":
        assert status is not None and 400 <= status < 600, status


@fuzz
@given(cut=st.integers(min_value=0), eof=st.booleans(), path=st.sampled_from(["/ws", "/", "/x?a=b"]))
async def test_a_truncated_handshake(fuzzed: Fuzzed, cut: int, eof: bool, path: str) -> None:
    request = upgrade_request(fuzzed.port, path)
    data = request[: cut % (len(request) - 1)]  # never the whole head
    raw = await RawClient.open(fuzzed.port)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    kind, _ = await send_and_see(fuzzed, raw, data, eof, upgraded=False)
    if not eof:  # a head that never completes is cut at the web server's handshake timeout
        assert kind == "eof"
        assert loop.time() - t0 >= HEAD_TIMEOUT - 0.05


@fuzz
@given(
    headers=st.lists(
        st.tuples(
            st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=100),
        ),
        max_size=8,
    ),
    omit=st.lists(st.sampled_from(["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Host"])),
    method=st.sampled_from(["GET", "GET", "POST", "PUT", "HEAD", "OPTIONS"]),
)
async def test_random_upgrade_headers(
    fuzzed: Fuzzed, headers: list[tuple[str, str]], omit: list[str], method: str
) -> None:
    """Upgrade requests with missing, duplicated or extra headers: a 101 or a 4xx, never a hang."""
    raw = await RawClient.open(fuzzed.port)
    request = upgrade_request(fuzzed.port, method=method, extra=headers, omit=omit)
    raw.writer.write(request)
    try:
        async with asyncio.timeout(BOUND):
            head = await raw.reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        fuzzed.count(("eof", None))
        raw.close()
        await fuzzed.check_alive()
        return
    status = int(head.split(b" ", 2)[1])
    fuzzed.count(("http", status))
    if status == 101:
        raw.writer.write(frame(8, websocket.close_body(1000, "")))
        assert await outcome(raw, upgraded=True) == ("close", 1000)
    else:
        assert 400 <= status < 500, head
        raw.close()
    await fuzzed.check_alive()


# ---- after the upgrade ----------------------------------------------------------------------------------


header_fields = st.fixed_dictionaries(
    {
        "fin": st.booleans(),
        "rsv": st.integers(0, 7),
        "opcode": st.integers(0, 15),
        "mask": st.booleans(),
        "length": st.one_of(st.integers(0, 125), st.integers(126, 70000), st.integers(0, 2**63 - 1)),
        "send": st.integers(0, 300),  # payload bytes actually sent (may be fewer than announced)
    }
)


def raw_frame(h: dict[str, Any]) -> bytes:
    first = (0x80 if h["fin"] else 0) | (h["rsv"] << 4) | h["opcode"]
    n = h["length"]
    m = 0x80 if h["mask"] else 0
    if n < 126:
        head = struct.pack("!BB", first, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, m | 126, n)
    else:
        head = struct.pack("!BBQ", first, m | 127, n)
    if h["mask"]:
        head += os.urandom(4)
    return head + os.urandom(min(h["send"], n))


@fuzz
@given(frames=st.lists(st.one_of(header_fields.map(raw_frame), st.binary(max_size=64)), min_size=1, max_size=4),
       eof=st.booleans())  # fmt: skip
async def test_random_frames_after_a_valid_handshake(fuzzed: Fuzzed, frames: list[bytes], eof: bool) -> None:
    raw = await upgraded(fuzzed.port)
    kind, _ = await send_and_see(fuzzed, raw, b"".join(frames), eof, upgraded=True)
    assert kind in ("close", "eof")


@fuzz
@given(
    body=st.binary(min_size=1, max_size=300).filter(lambda b: not _utf8(b)),
    cuts=st.lists(st.integers(min_value=0), max_size=4),
)
async def test_invalid_utf8_in_text_closes_with_1007(fuzzed: Fuzzed, body: bytes, cuts: list[int]) -> None:
    raw = await upgraded(fuzzed.port)
    assert await send_and_see(fuzzed, raw, fragments(1, body, cuts), False, upgraded=True) == ("close", 1007)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@fuzz
@given(text=st.text(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=6))
async def test_valid_utf8_split_anywhere_is_echoed_whole(fuzzed: Fuzzed, text: str, cuts: list[int]) -> None:
    body = text.encode()
    raw = await upgraded(fuzzed.port)
    raw.writer.write(fragments(1, body, cuts))
    echo = await raw.read_frame(timeout=BOUND)
    while echo is not None and echo[0] == 9:  # a keepalive ping on the way
        raw.send_frame(10, echo[1])
        echo = await raw.read_frame(timeout=BOUND)
    assert echo == (1, body)
    raw.writer.write(frame(8, websocket.close_body(1000, "")))
    assert await send_and_see(fuzzed, raw, b"", False, upgraded=True) == ("close", 1000)


@fuzz
@given(
    size=st.one_of(st.integers(0, 2 * LIMIT), st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1])),
    cuts=st.lists(st.integers(min_value=0), max_size=5),
    binary=st.booleans(),
)
async def test_oversize_and_fragmented_messages(fuzzed: Fuzzed, size: int, cuts: list[int], binary: bool) -> None:
    """Up to max_message_size (in any fragments) is echoed whole; one byte more closes with 1009."""
    body = b"z" * size
    op = 2 if binary else 1
    raw = await upgraded(fuzzed.port)
    raw.writer.write(fragments(op, body, cuts))
    if size > LIMIT:
        assert await send_and_see(fuzzed, raw, b"", False, upgraded=True) == ("close", 1009)
        return
    echo = await raw.read_frame(timeout=BOUND)
    while echo is not None and echo[0] == 9:
        raw.send_frame(10, echo[1])
        echo = await raw.read_frame(timeout=BOUND)
    assert echo == (op, body)
    raw.writer.write(frame(8, websocket.close_body(1000, "")))
    assert await send_and_see(fuzzed, raw, b"", False, upgraded=True) == ("close", 1000)


# ---- slowloris ---------------------------------------------------------------------------------------------


async def test_a_handshake_trickled_slower_than_the_timeout_is_cut_at_the_timeout(fuzzed: Fuzzed) -> None:
    """A byte every 20 ms keeps the socket busy, but the head must be complete within the timeout."""
    raw = await RawClient.open(fuzzed.port)
    request = upgrade_request(fuzzed.port)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    cut_at = None
    for i in range(len(request)):  # ~4 s at this pace: far past the 0.3 s timeout
        try:
            raw.writer.write(request[i : i + 1])
            await raw.writer.drain()
        except ConnectionError:
            cut_at = loop.time() - t0
            break
        if raw.reader.at_eof():
            cut_at = loop.time() - t0
            break
        try:
            async with asyncio.timeout(0.02):  # the trickle's pace, watching for the hang-up meanwhile
                if await raw.reader.read(1) == b"":
                    cut_at = loop.time() - t0
                    break
                pytest.fail("the server answered an incomplete head")
        except TimeoutError:
            pass
    raw.close()
    assert cut_at is not None, "a trickled head was never cut"
    assert HEAD_TIMEOUT - 0.05 <= cut_at < HEAD_TIMEOUT + 0.5, cut_at
    print(f"\ntrickled head cut after {cut_at:.3f} s (timeout {HEAD_TIMEOUT} s)")
    fuzzed.count(("eof", None))
    await fuzzed.check_alive()
