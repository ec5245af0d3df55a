"""Options fail where they are built, naming the field and the value (issue 9 §2).

Every options class checks its fields when constructed: a wrong type is a
``TypeError``, a value out of range a ``ValueError``, and the message names
``Class.field`` and the value given. Values that used to be accepted and fail per
connection much later (``process_pool="w1"`` read as names 'w' and '1',
``max_message_size="1MB"``...) are refused at once. A pool name that takes no
connection is logged once per handler and name, with no traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from ws_helpers import HOST, expect, serve

import ergopy
from ergopy import gen
from ergopy.meta import web, websocket

W = websocket
G = gen

# (constructor, field, bad value, the exception it must raise)
BAD: list[tuple[Callable[..., Any], str, Any, type[Exception]]] = [
    # the ones issue 9 names
    (W.HandlerOptions, "process_pool", "w1", TypeError),
    (W.HandlerOptions, "max_message_size", "1MB", TypeError),
    (W.HandlerOptions, "slow_consumer", "nonsense", TypeError),
    (W.HandlerOptions, "ping_interval", "20", TypeError),
    (W.HandlerOptions, "outbound_limit", None, TypeError),
    # the rest of the handler's
    (W.HandlerOptions, "process_pool", ["w1", 2], TypeError),
    (W.HandlerOptions, "process_pool", ["w1", ""], ValueError),
    (W.HandlerOptions, "process_pool", None, TypeError),
    (W.HandlerOptions, "handshake_timeout", -1, ValueError),
    (W.HandlerOptions, "handshake_timeout", "15", TypeError),
    (W.HandlerOptions, "enable_compression", "yes", TypeError),
    (W.HandlerOptions, "check_origin", "same", TypeError),
    (W.HandlerOptions, "subprotocols", "chat", TypeError),
    (W.HandlerOptions, "max_message_size", -1, ValueError),
    (W.HandlerOptions, "max_message_size", True, TypeError),
    (W.HandlerOptions, "max_message_size", 1.5, TypeError),
    (W.HandlerOptions, "ping_timeout", math.nan, ValueError),
    (W.HandlerOptions, "ping_timeout", math.inf, ValueError),
    (W.HandlerOptions, "idle_timeout", -0.5, ValueError),
    (W.HandlerOptions, "mailbox_high_water", "1024", TypeError),
    (W.HandlerOptions, "mailbox_high_water", -1, ValueError),
    # the client connection's
    (W.ConnectionOptions, "process", ["w1"], TypeError),
    (W.ConnectionOptions, "url", b"ws://x/", TypeError),
    (W.ConnectionOptions, "handshake_timeout", "1", TypeError),
    (W.ConnectionOptions, "headers", [("a", "b")], TypeError),
    (W.ConnectionOptions, "headers", {"a": 1}, TypeError),
    (W.ConnectionOptions, "subprotocols", "chat", TypeError),
    (W.ConnectionOptions, "ssl", "yes", TypeError),
    (W.ConnectionOptions, "slow_consumer", "drop", TypeError),
    (W.ConnectionOptions, "outbound_limit", -5, ValueError),
    (W.ConnectionOptions, "ping_interval", "20", TypeError),
    # the limits alone
    (W.Limits, "max_message_size", "1MB", TypeError),
    (W.Limits, "ping_interval", -1, ValueError),
    # the web server's
    (web.WebServerOptions, "host", None, TypeError),
    (web.WebServerOptions, "port", "8080", TypeError),
    (web.WebServerOptions, "port", 70000, ValueError),
    (web.WebServerOptions, "port", -1, ValueError),
    (web.WebServerOptions, "handler", 42, TypeError),
    (web.WebServerOptions, "ssl", True, TypeError),
    (web.WebServerOptions, "handshake_timeout", "5", TypeError),
    (web.WebServerOptions, "backlog", 0, ValueError),
    (web.WebServerOptions, "max_line_size", "8k", TypeError),
    (web.WebServerOptions, "max_field_size", 0, ValueError),
    # gen's
    (G.NodeOptions, "env", None, TypeError),
    (G.NodeOptions, "env", {1: "x"}, TypeError),
    (G.NodeOptions, "log_level", "info", TypeError),
    (G.NodeOptions, "log_level", 17, ValueError),
    (G.NodeOptions, "stop_timeout", "5", TypeError),
    (G.NodeOptions, "stop_timeout", 0, ValueError),
    (G.NodeOptions, "stop_timeout", -1.0, ValueError),
    (G.NodeOptions, "handle_signals", 1, TypeError),
    (G.ProcessOptions, "mailbox_size", -1, ValueError),
    (G.ProcessOptions, "mailbox_size", "10", TypeError),
    (G.ProcessOptions, "fallback", "overflow", TypeError),
    (G.ProcessOptions, "link_parent", "yes", TypeError),
    (G.ProcessOptions, "link_child", None, TypeError),
    (G.ProcessOptions, "send_priority", "high", TypeError),
    (G.ProcessOptions, "send_priority", 5, ValueError),
    (G.ProcessOptions, "log_level", None, TypeError),
    (G.ProcessOptions, "env", ["a"], TypeError),
    (G.ProcessFallback, "enable", "yes", TypeError),
    (G.ProcessFallback, "name", 3, TypeError),
    (G.ProcessFallback, "tag", None, TypeError),
    (G.MetaOptions, "mailbox_size", -1, ValueError),
    (G.MetaOptions, "mailbox_size", 2.0, TypeError),
    (G.MetaOptions, "send_priority", 3, ValueError),
    (G.MetaOptions, "log_level", "debug", TypeError),
    (G.EventOptions, "notify", "yes", TypeError),
    (G.EventOptions, "buffer", -1, ValueError),
]


@pytest.mark.parametrize(
    ("cls", "name", "value", "error"),
    BAD,
    ids=[f"{c.__name__}.{n}={v!r}" for c, n, v, _ in BAD],
)
def test_a_bad_option_fails_at_construction_naming_the_field_and_value(
    cls: Callable[..., Any], name: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        cls(**{name: value})
    text = str(info.value)
    assert f"{cls.__name__}.{name}" in text  # type: ignore[attr-defined]
    assert repr(value) in text


def test_every_options_class_accepts_its_defaults_and_ordinary_values() -> None:
    W.HandlerOptions()
    W.HandlerOptions(["w1", "w2"], 0, True, lambda r: True, ("chat",))  # its own fields stay positional
    W.HandlerOptions(process_pool=("w1",), ping_interval=None, ping_timeout=0, idle_timeout=2, max_message_size=0)
    W.HandlerOptions(slow_consumer=W.SlowConsumerPolicy.DROP, handshake_timeout=None)
    W.ConnectionOptions(process="w1", url="ws://x/", headers={"A": "b"}, subprotocols=["chat"], ssl=False)
    W.ConnectionOptions(ssl=ssl.create_default_context())
    web.WebServerOptions(host="::1", port=65535, handler=lambda request: request, handshake_timeout=0.5)
    G.NodeOptions(env={"Mode": "test"}, log_level=G.LogLevel.DEBUG, stop_timeout=0.05, handle_signals=True)
    G.ProcessOptions(mailbox_size=7, fallback=G.ProcessFallback(True, "overflow", "t1"), env={"own": "o"})
    G.MetaOptions(mailbox_size=1, send_priority=G.MessagePriority.HIGH, log_level=G.LogLevel.WARNING)
    G.EventOptions(notify=True, buffer=10)


def test_an_int_for_an_enum_field_becomes_the_member() -> None:
    assert G.MetaOptions(send_priority=2).send_priority is G.MessagePriority.MAX
    assert G.ProcessOptions(log_level=-1).log_level is G.LogLevel.DEBUG


def test_a_process_pool_is_kept_as_a_tuple_of_names() -> None:
    names = ["w1", "w2"]
    options = W.HandlerOptions(process_pool=names)
    names.append("w3")  # the caller's list changing later changes nothing
    assert options.process_pool == ("w1", "w2")


def test_a_fallback_needs_a_name_when_enabled() -> None:
    with pytest.raises(ValueError, match=r"ProcessFallback\.name"):
        G.ProcessFallback(enable=True)


def test_the_limit_fields_are_declared_once_and_given_by_keyword() -> None:
    limits = {f.name for f in dataclasses.fields(W.Limits)}
    assert limits == {
        "max_message_size",
        "outbound_limit",
        "slow_consumer",
        "ping_interval",
        "ping_timeout",
        "idle_timeout",
        "mailbox_high_water",
    }
    for cls in (W.HandlerOptions, W.ConnectionOptions):
        assert issubclass(cls, W.Limits)
        own = {f.name for f in dataclasses.fields(cls)} - limits
        assert not own & limits
        assert all(f.kw_only for f in dataclasses.fields(cls) if f.name in limits)
        assert not any(f.kw_only for f in dataclasses.fields(cls) if f.name in own)
    options = W.HandlerOptions(max_message_size=100, ping_interval=None)
    copy = options.limits()
    assert type(copy) is W.Limits
    assert (copy.max_message_size, copy.ping_interval) == (100, None)


# ---- a pool name that takes no connection -------------------------------------------------------


async def _closed_code(port: int) -> int | None:
    async with websockets.connect(f"ws://{HOST}:{port}/ws", open_timeout=5, close_timeout=5) as ws:
        try:
            async with asyncio.timeout(5):
                await ws.recv()
        except websockets.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd is not None else None
    pytest.fail("the connection stayed open")


async def _echo_through_w1(port: int, queue: asyncio.Queue[Any]) -> None:
    async with websockets.connect(f"ws://{HOST}:{port}/ws", open_timeout=5) as ws:
        await expect(queue, websocket.MessageConnect, at="w1")
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), 5) == "hi"
    await expect(queue, websocket.Message, at="w1")
    await expect(queue, websocket.MessageDisconnect, at="w1")


async def test_a_pool_name_that_is_not_registered_is_logged_once_per_handler_and_name(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    s = await serve(node, pool=["w1", "w2"])
    node.unregister_name("w2")  # as a misspelt pool name: nothing answers to it
    codes = []
    for _ in range(3):  # round-robin: w1, then the missing w2
        await _echo_through_w1(s.port, s.queue)
        codes.append(await _closed_code(s.port))
    assert codes == [1011, 1011, 1011]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "'w2'" in errors[0] and "1011" in errors[0]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a missing pool process"


async def test_a_pool_name_that_comes_back_and_goes_again_is_logged_again(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    s = await serve(node, pool=["w1"])
    record = node.lookup_name("w1")
    assert record is not None
    pid = record.pid
    node.unregister_name("w1")
    assert await _closed_code(s.port) == 1011
    assert await _closed_code(s.port) == 1011
    node.register_name("w1", pid)
    await _echo_through_w1(s.port, s.queue)
    node.unregister_name("w1")
    assert await _closed_code(s.port) == 1011
    about = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "'w1'" in r.getMessage()]
    assert len(about) == 2, about
