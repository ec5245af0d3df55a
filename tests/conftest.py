"""Shared fixtures: every async test runs on both the stock asyncio loop and uvloop.

``node`` is a fresh node per test, stopped (and checked to have left nothing
behind) at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

import ergopy
from ergopy import gen

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
        leftovers = {k: v for k, v in n.stats().items() if v}
        assert not leftovers, f"node left things behind after stop: {leftovers}"


async def receive(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    """The next item a test probe collected; fails the test after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await queue.get()
    except TimeoutError:
        pytest.fail(f"nothing arrived within {timeout} s")
