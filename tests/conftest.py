"""Shared fixtures: every async test runs on both the stock asyncio loop and uvloop.

``node`` is a fresh node per test, stopped (and checked to have left nothing
behind) at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import ergopy
from ergopy import act, gen

try:
    import uvloop
except ImportError:  # uvloop is an optional extra
    uvloop = None

_LOOPS = [p for p in os.environ.get("ERGOPY_TEST_LOOPS", "asyncio,uvloop").split(",") if p]
if uvloop is None and "uvloop" in _LOOPS:
    _LOOPS.remove("uvloop")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    factories: dict[str, Any] = {}
    if "asyncio" in _LOOPS:
        factories["asyncio"] = asyncio.new_event_loop
    if "uvloop" in _LOOPS and uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


_node_ids = itertools.count(1)


@pytest.fixture
async def node() -> AsyncIterator[ergopy.Node]:
    n = await ergopy.start_node(f"test{next(_node_ids)}@localhost", gen.NodeOptions(stop_timeout=5.0))
    try:
        yield n
    finally:
        await n.stop()
        # dead letters are a history (messages dropped), not live things left behind
        leftovers = {k: v for k, v in n.stats().items() if v and not k.startswith("dead_letters_")}
        assert not leftovers, f"node left things behind after stop: {leftovers}"


async def receive(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    """The next item a test probe collected; fails the test after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await queue.get()
    except TimeoutError:
        pytest.fail(f"nothing arrived within {timeout} s")


class Runner(act.Actor):
    """A probe process: runs callables sent to it (reporting ``("ok", result)`` or
    ``("error", exc)``), puts events as ``("event", message)`` and every other message
    into its queue, and reports ``("terminated", reason)``."""

    def init(self, queue: asyncio.Queue[Any], trap: bool = False) -> None:
        self.queue = queue
        self.set_trap_exit(trap)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if callable(message):
            try:
                self.queue.put_nowait(("ok", message(self)))
            except gen.Error as e:
                self.queue.put_nowait(("error", e))
            return
        self.queue.put_nowait(message)

    def handle_event(self, message: gen.MessageEvent) -> None:
        self.queue.put_nowait(("event", message))

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


async def run_in(node: ergopy.Node, q: asyncio.Queue[Any], pid: gen.PID, action: Callable[[Any], Any]) -> Any:
    """Run ``action(actor)`` inside ``pid`` (a process that reports like ``Runner``);
    return its result or raise its error."""
    node.send(pid, action)
    kind, value = await receive(q)
    if kind == "error":
        raise value
    assert kind == "ok", (kind, value)
    return value
