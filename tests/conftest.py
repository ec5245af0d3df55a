"""Shared fixtures: every async test runs on both the stock asyncio loop and uvloop.

``node`` is a fresh node per test, stopped (and checked to have left nothing
behind) at the end.

Hygiene: a test fails when asyncio reports a task destroyed while pending or a task
exception never retrieved (checked after a garbage collection at each test's end), and
(pyproject's ``filterwarnings``) on an unawaited coroutine, an unraisable exception or
an exception in a thread. In CI (``CI`` set): Hypothesis runs derandomized, a failing
property test prints its seed, and a missing uvloop stops the run at collection.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

import ergopy
from ergopy import act, gen

try:
    import uvloop
except ImportError:  # uvloop is an optional extra
    uvloop = None

CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

_LOOPS = [p for p in os.environ.get("ERGOPY_TEST_LOOPS", "asyncio,uvloop").split(",") if p]
if uvloop is None and "uvloop" in _LOOPS:
    if CI:
        # CI must run the whole matrix: without uvloop half of it would pass silently untested
        raise pytest.UsageError("CI is set but uvloop is not importable: pip install -e .[uvloop]")
    _LOOPS.remove("uvloop")

# Reproducible property tests in CI: the same examples on every run, and the failing one as a blob
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if CI:
    hypothesis_settings.load_profile("ci")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failing Hypothesis test reports the seed that reproduces it."""
    report: pytest.TestReport = yield
    test = getattr(getattr(item, "obj", None), "hypothesis", None)
    if report.failed and call.when == "call" and test is not None:
        report.sections.append(("hypothesis seed", _hypothesis_seed(item, test.inner_test)))
    return report


def _hypothesis_seed(item: pytest.Item, inner: Any) -> str:
    if hypothesis_settings.default.derandomize:
        from hypothesis.internal.compat import int_from_bytes
        from hypothesis.internal.reflection import function_digest

        seed = int_from_bytes(function_digest(inner))
        profile = hypothesis_settings.get_current_profile_name()
        return f"derandomized (profile {profile!r}): seed {seed}, the same on every run"
    seed = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_generated_seed", None)
    if seed is None:
        return "seed fixed by the test or by --hypothesis-seed"
    return f"seed {seed}: rerun with --hypothesis-seed={seed}"


class _AsyncioLeaks(logging.Handler):
    """Collects asyncio's reports of tasks dropped while pending or with an unread exception."""

    MARKS = ("Task was destroyed but it is pending", "Task exception was never retrieved")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(mark in message for mark in self.MARKS):
            self.found.append(message)


_asyncio_leaks = _AsyncioLeaks()
logging.getLogger("asyncio").addHandler(_asyncio_leaks)


@pytest.fixture(autouse=True)
def _no_asyncio_leaks() -> Generator[None, None, None]:
    """Fails the test if asyncio reported a leaked task while it ran (after its loop closed)."""
    yield
    gc.collect()  # a dropped task is reported when it is collected
    found, _asyncio_leaks.found[:] = list(_asyncio_leaks.found), []
    if found:
        pytest.fail("asyncio reported:\n" + "\n".join(found), pytrace=False)


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


# ---- nodes with a network (tests/test_net_node*.py) ------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a registrar: every node of a test shares it).

    Taken below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel
    handed out by ``bind(0)`` may meanwhile become the local port of some outgoing
    connection, and the registrar's later bind then fails with EADDRINUSE (seen in CI).
    """
    import random
    import socket

    for _ in range(200):  # bounded: most ports in the range are free
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:  # the registrar's UDP side too
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port in 20000-32000")


async def until_links(done: Callable[[], bool], *endpoints: Any, timeout: float = 5.0) -> None:
    """Wait until ``done()`` holds, checked at each link change of the network endpoints
    (``node.network._endpoint``); fails after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not done():
            waits = [asyncio.ensure_future(e.changes.wait()) for e in endpoints]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)


@pytest.fixture
async def net_cluster() -> AsyncIterator[Callable[..., Any]]:
    """``await net_cluster(name, **network options)`` starts a node with an acceptor on
    127.0.0.1 port 0 and the cookie "secret", sharing one free registrar port with the
    test's other nodes; every node is stopped at the end and checked to have left
    nothing behind (connections and requests included)."""
    port = free_port()
    started: list[ergopy.Node] = []

    async def start(name: str, **kw: Any) -> ergopy.Node:
        net_kw: dict[str, Any] = {
            "cookie": "secret",
            "acceptors": [gen.AcceptorOptions(host="127.0.0.1", port=0)],
            "registrar_port": port,
            **kw,
        }
        n = await ergopy.start_node(name, gen.NodeOptions(network=gen.NetworkOptions(**net_kw)))
        started.append(n)
        return n

    try:
        yield start
    finally:
        for n in reversed(started):
            await n.stop()
        for n in started:
            leftovers = {k: v for k, v in n.stats().items() if v and not k.startswith("dead_letters_")}
            assert not leftovers, f"{n.name} left things behind after stop: {leftovers}"


@pytest.fixture
async def net_pair(net_cluster: Callable[..., Any]) -> tuple[ergopy.Node, ergopy.Node]:
    """Nodes a@localhost and b@localhost, a connected to b."""
    a = await net_cluster("a@localhost")
    b = await net_cluster("b@localhost")
    await a.network.get_node("b@localhost")
    return a, b


# ---- the browser tests -----------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright; never a downloaded browser); the test is
    skipped without Playwright or Chromium."""
    api = pytest.importorskip("playwright.async_api", reason="Playwright is missing: pip install -e .[browser]")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    async with api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield b
        finally:
            await b.close()
