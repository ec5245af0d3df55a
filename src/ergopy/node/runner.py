"""The node's run queue: the processes and meta-processes that have mail, drained by one loop callback.

Before it, every process that got mail scheduled its own ``loop.call_soon(drain)``:
one loop handle per wake-up, and a message that wakes another process waited for
the next loop turn (an I/O poll) before it was handled. Ping-pong between two
actors paid a whole loop turn per hop.

Now a process (or meta-process) with new mail is appended to the node's ready
queue, and one ``call_soon(run)`` drains the queue in order. A process readied
while the queue runs (the receiver of a message just sent) is run in the same
callback, up to ``EXTRA`` more drains than were queued when it began; then the
runner yields to the loop (timers and I/O wait at most that many drains more than
before) and goes on in the next turn. Each drain still handles only the messages
queued when it began, so no process monopolises the queue, and each process keeps
its messages in the order they were sent.

At the end of each run the hooks registered with :func:`after_run` for the loop run
too: the WebSocket engine writes the frames the run queued there, in the same loop
callback, instead of one loop turn later (and, seeing the run in progress, schedules no
callback of its own for them).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["EXTRA", "INLINE_DEPTH", "AfterRun", "Runner", "after_run"]

EXTRA = 64
"""Drains a run may do beyond those queued when it began (chains of sends between processes)."""

INLINE_DEPTH = 4
"""How many meta-process handlers may run nested inside a sender's call (see ``MetaRecord.push``):
a chain of meta-processes forwarding to each other is queued beyond it, never recursing deep."""


class AfterRun:
    """The hooks of one loop's runs (shared by every node's runner on the loop), and
    whether a run is in progress: work queued while ``running`` is non-zero is seen by
    the hooks at that run's end, so it needs no loop callback of its own."""

    __slots__ = ("hooks", "running")

    def __init__(self) -> None:
        self.hooks: list[Callable[[], None]] = []
        self.running = 0  # runs in progress (one at most: runs are loop callbacks)


_AFTER_RUN: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AfterRun] = weakref.WeakKeyDictionary()


def _after_run_of(loop: asyncio.AbstractEventLoop) -> AfterRun:
    after = _AFTER_RUN.get(loop)
    if after is None:
        after = _AFTER_RUN[loop] = AfterRun()
    return after


def after_run(loop: asyncio.AbstractEventLoop, hook: Callable[[], None]) -> AfterRun:
    """Call ``hook()`` at the end of every run of the run queue of every node on ``loop``;
    returns the loop's :class:`AfterRun`. A hook runs once ``running`` is back to 0.

    A hook must not raise (what it raises propagates to the loop's exception handler).
    """
    after = _after_run_of(loop)
    after.hooks.append(hook)
    return after


class _Drainable(Protocol):
    def _drain(self) -> None: ...


class Runner:
    """One per node: the ready queue of its sync processes and meta-processes."""

    __slots__ = ("_after", "_loop", "_ready", "_scheduled", "inline")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.inline = 0  # meta-process handlers running inside a sender's call now (MetaRecord.push)
        self._after = _after_run_of(loop)  # shared: hooks registered later are seen
        self._ready: deque[_Drainable] = deque()
        self._scheduled = False

    def add(self, record: _Drainable) -> None:
        """Queue ``record`` to be drained (it is queued once: its ``scheduled`` flag guards it)."""
        self._ready.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        ready = self._ready
        budget = len(ready) + EXTRA
        pop = ready.popleft
        after = self._after
        after.running += 1
        try:
            while ready and budget:
                budget -= 1
                pop()._drain()  # a drain catches what its callbacks raise but KeyboardInterrupt/SystemExit
        finally:
            after.running -= 1  # before the hooks: what they cause to be queued is not theirs to see
            if ready:
                self._loop.call_soon(self._run)
            else:
                self._scheduled = False
            for hook in after.hooks:
                hook()
