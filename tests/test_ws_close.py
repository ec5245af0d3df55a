"""Close frames, close reasons and what is logged when a connection ends (issue 9 §1, §3).

* A close a worker asks for never puts an invalid frame on the wire: ``Message.close``
  checks the code when it is built; a raw CLOSE with a code an endpoint may not send
  closes with 1011 (and one warning); a reason is cut to 123 bytes.
* The connection meta-process ends ``normal`` only for 1000/1001; otherwise with
  ``websocket.CloseError(code, reason)``, which a monitor sees.
* Expected ends (peer vanished, worker gone, worker's mailbox full) log one line each,
  no traceback; a full mailbox is said so, not "gone".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from conftest import receive
from websockets.asyncio.client import ClientConnection
from ws_helpers import HOST, Got, RawClient, ServerProbe, expect, run, serve

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket


async def next_matching(queue: asyncio.Queue[Got], pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """The next probe message matching ``pred`` (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            got = await queue.get()
            if pred(got.message):
                return got.message


def down_of(alias: gen.Alias) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, gen.MessageDownAlias) and m.alias == alias


async def closed_by_server(ws: ClientConnection) -> websockets.ConnectionClosed:
    """Read until the server closes; the client's view of the close."""
    try:
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as e:
        return e
    raise AssertionError("unreachable")


# ---- Message.close: checked when built ------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_message_close_refuses_a_code_an_endpoint_may_not_send(code: int) -> None:
    with pytest.raises(ValueError, match=str(code)):
        websocket.Message.close(code, "bye")


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_message_close_builds_a_close_for_a_code_an_endpoint_may_send(code: int) -> None:
    m = websocket.Message.close(code, "bye")
    assert m.type == websocket.MessageType.CLOSE
    assert websocket.parse_close_body(m.body) == (code, "bye")


def test_message_close_refuses_what_is_not_a_code_or_a_reason() -> None:
    with pytest.raises(TypeError):
        websocket.Message.close("1000")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        websocket.Message.close(1000, b"bye")  # type: ignore[arg-type]


def test_message_close_cuts_a_long_reason_at_a_character_boundary() -> None:
    ascii_reason = websocket.parse_close_body(websocket.Message.close(4000, "x" * 300).body)[1]
    assert ascii_reason == "x" * 123
    # 2-byte characters: 61 fit in 123 bytes, the 62nd would be cut in half
    _, reason = websocket.parse_close_body(websocket.Message.close(4000, "é" * 100).body)
    assert reason == "é" * 61
    assert len(reason.encode()) == 122
    assert len(websocket.Message.close(4000, "€" * 100).body) <= 125


# ---- a raw close on the wire ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [websocket.close_body(999, "nope"), websocket.close_body(1005, ""), websocket.close_body(5000, ""), b"\x03"],
    ids=["999", "1005", "5000", "one-byte"],
)
async def test_a_raw_close_with_an_invalid_code_reaches_the_client_as_1011_not_1002(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.send_alias(mc.id, websocket.Message(type=websocket.MessageType.CLOSE, body=body))
        closed = await closed_by_server(ws)
    assert closed.rcvd is not None, f"the client failed the connection itself: {closed}"
    assert closed.rcvd.code == 1011
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert md.code == 1011
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "1011" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


async def test_a_raw_close_with_a_300_character_reason_is_cut_to_123_bytes(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        mc = await expect(s.queue, websocket.MessageConnect)
        body = websocket.close_body(4000, "é" * 150)  # 300 bytes
        node.send_alias(mc.id, websocket.Message(type=websocket.MessageType.CLOSE, body=body))
        closed = await closed_by_server(ws)
    assert closed.rcvd is not None, f"the client failed the connection itself: {closed}"
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "é" * 61)


async def test_message_close_from_a_worker_reaches_the_client(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        mc = await expect(s.queue, websocket.MessageConnect)
        await run(node, "w1", lambda p: p.send_alias(mc.id, websocket.Message.close(4001, "done")))
        closed = await closed_by_server(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4001, "done")


# ---- the reason the connection meta-process ends with ---------------------------------------------


async def _monitored(node: ergopy.Node, s: Any) -> gen.Alias:
    mc = await next_matching(s.queue, lambda m: isinstance(m, websocket.MessageConnect))
    await run(node, "w1", lambda p: p.monitor(mc.id))
    return mc.id  # type: ignore[no-any-return]


@pytest.mark.parametrize("code", [1000, 1001])
async def test_a_connection_closed_with_1000_or_1001_ends_normal(node: ergopy.Node, code: int) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        alias = await _monitored(node, s)
        await ws.close(code)
    down = await next_matching(s.queue, down_of(alias))
    assert down.reason is gen.TERMINATE_REASON_NORMAL


async def test_a_connection_closed_with_4001_ends_with_a_close_error(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        alias = await _monitored(node, s)
        await ws.close(4001, "bye")
    down = await next_matching(s.queue, down_of(alias))
    assert isinstance(down.reason, websocket.CloseError)
    assert isinstance(down.reason, gen.Error)
    assert (down.reason.code, down.reason.reason) == (4001, "bye")
    assert "4001" in str(down.reason) and "bye" in str(down.reason)


async def test_a_peer_that_vanishes_ends_the_connection_with_1006(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    alias = await _monitored(node, s)
    raw.close()  # TCP reset, no close frame
    down = await next_matching(s.queue, down_of(alias))
    assert isinstance(down.reason, websocket.CloseError)
    assert down.reason.code == 1006


async def test_a_message_too_big_ends_the_connection_with_1009(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(max_message_size=100))
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        alias = await _monitored(node, s)
        await ws.send("x" * 101)
        closed = await closed_by_server(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009
    down = await next_matching(s.queue, down_of(alias))
    assert isinstance(down.reason, websocket.CloseError)
    assert down.reason.code == 1009


async def test_a_keepalive_timeout_ends_the_connection_with_1011_and_says_so(node: ergopy.Node) -> None:
    options = websocket.HandlerOptions(ping_interval=0.1, ping_timeout=0.1)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port)  # reads nothing, answers no ping
    alias = await _monitored(node, s)
    down = await next_matching(s.queue, down_of(alias))
    assert isinstance(down.reason, websocket.CloseError)
    assert down.reason.code == 1011
    assert "keepalive" in down.reason.reason
    raw.close()


async def test_a_link_sees_the_close_error_too(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        mc = await next_matching(s.queue, lambda m: isinstance(m, websocket.MessageConnect))

        def link(p: Any) -> None:
            p.set_trap_exit(True)
            p.link(mc.id)

        await run(node, "w1", link)
        await ws.close(4002, "linked")
    exit_ = await next_matching(s.queue, lambda m: isinstance(m, gen.MessageExitAlias))
    assert isinstance(exit_.reason, websocket.CloseError)
    assert exit_.reason.code == 4002


# ---- one log line per expected end ----------------------------------------------------------------


def _lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= level and r.name.startswith("ergopy")]


async def test_a_peer_that_vanishes_is_one_info_line_with_no_traceback(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    s = await serve(node, pool=["w1"])
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.close()
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert md.code == 1006
    lines = _lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO and "1006" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_worker_gone_mid_connection_is_one_error_line_with_no_traceback(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    s = await serve(node, pool=["w1"])
    async with websockets.connect(s.url(), open_timeout=5, close_timeout=5) as ws:
        mc = await expect(s.queue, websocket.MessageConnect)
        node.unregister_name("w1")  # the pool's name no longer answers
        await ws.send("anyone?")
        closed = await closed_by_server(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    assert "no process" in closed.rcvd.reason
    await until_gone(node, mc.id)
    lines = _lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.ERROR and "1011" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


async def until_gone(node: ergopy.Node, alias: gen.Alias, timeout: float = 5.0) -> None:
    """Until the connection meta-process has ended (monitored from a fresh probe)."""
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Watcher(act.Actor):
        def init(self) -> None:
            self.monitor(alias)

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            q.put_nowait(message)

    if not node.alias_exists(alias):
        return
    try:
        pid = await node.spawn(Watcher)
    except gen.Error:  # gone between the check and the monitor
        return
    down = await receive(q, timeout)
    assert isinstance(down, gen.MessageDownAlias), down
    node.kill(pid)


class Blocking(act.Actor):
    """A worker that stops at its first websocket.Message until ``release`` is set."""

    def init(self, release: asyncio.Event) -> None:
        self.release = release

    async def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, websocket.Message):
            await self.release.wait()


async def test_a_worker_whose_mailbox_is_full_is_said_full_not_gone(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    release = asyncio.Event()
    await node.spawn_register("slow", Blocking, gen.ProcessOptions(mailbox_size=1), release)
    queue: asyncio.Queue[Got] = asyncio.Queue()
    probes: list[ServerProbe] = []

    def factory() -> ServerProbe:
        probes.append(ServerProbe())
        return probes[0]

    options = websocket.HandlerOptions(process_pool=["slow"])
    await node.spawn_register("srv", factory, None, queue, options, True, None, {})
    try:
        async with websockets.connect(f"ws://{HOST}:{probes[0].server.port}/ws", open_timeout=5) as ws:
            for i in range(3):  # the first holds the worker, the second fills its mailbox
                await ws.send(str(i))
            closed = await closed_by_server(ws)
    finally:
        release.set()
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    assert "full" in closed.rcvd.reason and "gone" not in closed.rcvd.reason
    errors = _lines(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "full" in errors[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
