"""The multi-node launcher behind ``ergopy.run(main, nodes=N)``: one service, N node processes.

With ``nodes`` above 1 the calling process becomes a supervisor of N child processes
(``multiprocessing``'s "spawn" start method: a fresh interpreter each, so the script
needs the ``if __name__ == "__main__":`` guard). Each child runs ``main()`` on its own
event loop exactly as ``ergopy.run(main)`` does, and :func:`member` tells it who it is
(index 1..N, the count N and the service's cookie), so it can name its node and join
the others::

    async def main() -> None:
        me = ergopy.member()
        options = gen.NodeOptions(network=gen.NetworkOptions(cookie=me.cookie))
        node = await ergopy.start_node(f"web{me.index}@localhost", options)
        ...
        await node.wait()

    if __name__ == "__main__":
        ergopy.run(main, nodes=4)

What the launcher guarantees:

- **Stopping.** SIGINT (Ctrl-C) or SIGTERM to the launcher sends SIGTERM to every
  child (a node started by ``main`` stops gracefully: its WebSocket clients see close
  1001), waits up to ``grace`` seconds, then SIGKILLs what is left. A terminal's Ctrl-C
  also reaches the children directly (one process group); that is a stop, not a crash.
- **Restarts.** A child that dies while the service is not stopping (a non-zero exit,
  an exception out of ``main``, a signal) is started again after
  :data:`RESTART_BACKOFF` with the same index, so its node comes back under the same
  name and its peers reach it again through the registrar. More than ``intensity``
  restarts of one child within ``period`` seconds stop the whole service
  (:class:`LaunchError`). A child that exits 0 by itself is not restarted; the launcher
  returns when no child is left.
- **No orphans.** The launcher waits for every child it started before it returns or
  raises. On Linux each child asks the kernel (``PR_SET_PDEATHSIG``) for SIGTERM when
  the launcher dies, so even a SIGKILLed launcher leaves no node running (other systems
  have no such request: there a SIGKILLed launcher leaves its nodes running). The one
  helper process ``multiprocessing`` itself starts for "spawn" (its resource tracker)
  ignores signals and exits when the launcher's process does.

A child's exit status is ``main()``'s result when that is an int (as ``sys.exit``),
else 0; an exception out of ``main`` prints its traceback and exits 1.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from .gen import Error

__all__ = ["RESTART_BACKOFF", "LaunchError", "Member", "launch", "member"]

log = logging.getLogger("ergopy.launch")

RESTART_BACKOFF = 0.5
"""Seconds between a child's death and its restart: long enough for its peers and the
registrar to see the old node gone, short enough that clients barely notice."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class LaunchError(Error):
    """The launcher stopped the service because a node failed: it was restarted too often,
    or it did not stop cleanly (it had to be killed, or exited with an error while stopping)."""


@dataclass(frozen=True, slots=True)
class Member:
    """Who this process is in a service started by ``ergopy.run(main, nodes=N)``.

    ``index`` is 1..N (the same for a restarted child), ``count`` is N, ``cookie`` a
    random secret the launcher made for this run of the service (the same in every
    child; it travels in the process's start-up data, never on a command line or in the
    environment), to give ``gen.NetworkOptions(cookie=...)``.
    """

    index: int
    count: int
    cookie: str


_member: Member | None = None


def member() -> Member:
    """This process's place in the service: ``Member(index, count, cookie)``. Raises nothing.

    In a child of ``ergopy.run(main, nodes=N)``: its index (1..N), N and the service's
    cookie. Anywhere else (``ergopy.run(main)``, or no runner at all): index 1, count 1
    and a random cookie made once per process, known to no other process (so
    ``gen.NetworkOptions(cookie=member().cookie)`` type-checks and works alone; give a
    node your own shared cookie when it must join nodes that run on their own).
    """
    global _member
    if _member is None:
        _member = Member(1, 1, _new_cookie())
    return _member


def _new_cookie() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


@dataclass(slots=True)
class _Child:
    """One slot of the service: the current process for an index and its restart history."""

    index: int
    process: BaseProcess | None = None
    restart_at: float | None = None  # monotonic time of a pending restart
    restarts: collections.deque[float] = field(default_factory=collections.deque)


def launch(
    main: Callable[[], Coroutine[Any, Any, Any]],
    nodes: int,
    *,
    grace: float = 10.0,
    intensity: int = 5,
    period: float = 30.0,
    debug: bool = False,
    log_level: int = logging.INFO,
) -> None:
    """Run ``main()`` in ``nodes`` child processes and supervise them until they all stop.

    Returns when every child has stopped cleanly: after SIGINT/SIGTERM to this process
    (each child got SIGTERM and exited within ``grace`` seconds), or when each exited 0
    by itself. Raises :class:`LaunchError` (after stopping every other child) when one
    child was restarted more than ``intensity`` times within ``period`` seconds, or did
    not stop cleanly; ``ValueError`` for ``nodes`` < 1, a negative ``grace`` or
    ``period``, or a negative ``intensity``; ``RuntimeError`` off the main thread (signal
    handlers can only be installed there). ``main`` must be picklable (a module-level
    function, or a ``functools.partial`` of one) and the script needs the
    ``if __name__ == "__main__":`` guard: each child imports it afresh.
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes must be an int of at least 1, got {nodes!r}")
    if grace < 0 or period < 0 or intensity < 0:
        raise ValueError(f"grace, period and intensity must not be negative, got {grace!r}, {period!r}, {intensity!r}")
    from ._run import configure_logging

    configure_logging(log_level)
    _Launcher(main, nodes, grace, intensity, period, debug, log_level).run()


class _Launcher:
    def __init__(
        self,
        main: Callable[[], Coroutine[Any, Any, Any]],
        nodes: int,
        grace: float,
        intensity: int,
        period: float,
        debug: bool,
        log_level: int,
    ) -> None:
        self.main, self.grace, self.intensity, self.period = main, grace, intensity, period
        self.debug, self.log_level = debug, log_level
        self.count = nodes
        self.cookie = _new_cookie()
        self.context = multiprocessing.get_context("spawn")
        self.children = [_Child(i) for i in range(1, nodes + 1)]
        self.stopping = False
        self.failure: str | None = None  # why the service stops with an error
        self.unclean: list[str] = []  # children that did not stop cleanly
        self.deadline = 0.0
        # signal handlers write a byte here, so the wait below wakes at once
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.signalled = False

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                self._start(child)
            self._supervise()
        except BaseException:
            self._abort()  # e.g. a child that cannot be started: the others must not outlive us
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.wake_r.close()
            self.wake_w.close()
        if self.failure is not None:
            raise LaunchError(self.failure)
        if self.unclean:
            raise LaunchError("the service did not stop cleanly: " + "; ".join(self.unclean))

    # ---- signals -------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass  # the pipe is full: a wake-up is pending anyway

    # ---- the loop ------------------------------------------------------------------------

    def _supervise(self) -> None:
        while True:
            if self.signalled and not self.stopping:
                log.info("signal received, stopping %d nodes", self.count)
                self._stop_all()
            now = time.monotonic()
            for child in self.children:
                p = child.process
                if p is not None and p.exitcode is not None:
                    p.join()
                    child.process = None
                    self._exited(child, p, now)
                if child.restart_at is not None and child.restart_at <= now and not self.stopping:
                    child.restart_at = None
                    self._start(child)
            alive = [c.process for c in self.children if c.process is not None]
            pending = [c.restart_at for c in self.children if c.restart_at is not None]
            if not alive and not pending:
                return
            if self.stopping and now >= self.deadline:
                self._kill_all()
                return
            wake = self.deadline if self.stopping else min(pending, default=now + 3600.0)
            sentinels: list[Any] = [self.wake_r, *(p.sentinel for p in alive)]
            multiprocessing.connection.wait(sentinels, timeout=max(0.0, wake - now))
            try:
                while self.wake_r.recv(64):
                    pass
            except BlockingIOError:
                pass

    def _start(self, child: _Child) -> None:
        me = Member(child.index, self.count, self.cookie)
        args = (self.main, me, os.getpid(), self.debug, self.log_level)
        p = self.context.Process(target=_child_main, args=args, name=f"ergopy node {child.index}")
        # The child inherits an ignored SIGINT (a handler would be reset by exec): a Ctrl-C
        # while it imports must not print a traceback; its node's own handler replaces it.
        # A Ctrl-C within this call's few milliseconds reaches only the children.
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            p.start()
        finally:
            signal.signal(signal.SIGINT, handler)
        child.process = p
        log.info("started node %d of %d (pid %d)", child.index, self.count, p.pid)

    def _exited(self, child: _Child, p: BaseProcess, now: float) -> None:
        code = p.exitcode
        assert code is not None
        how = _describe(code)
        if self.stopping:
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                self.unclean.append(f"node {child.index} (pid {p.pid}) {how} while stopping")
            return
        if code == 0:
            log.info("node %d (pid %d) exited by itself; not restarting it", child.index, p.pid)
            return
        child.restarts.append(now)
        while child.restarts and child.restarts[0] < now - self.period:
            child.restarts.popleft()
        if len(child.restarts) > self.intensity:
            self.failure = (
                f"node {child.index} failed {len(child.restarts)} times within {self.period:g} s "
                f"(more than {self.intensity}; it {how} last): stopping the service"
            )
            log.error("%s", self.failure)
            self._stop_all()
            return
        child.restart_at = now + RESTART_BACKOFF
        log.warning(
            "node %d (pid %d) %s; restarting it in %g s (restart %d of %d within %g s)",
            child.index,
            p.pid,
            how,
            RESTART_BACKOFF,
            len(child.restarts),
            self.intensity,
            self.period,
        )

    def _stop_all(self) -> None:
        """SIGTERM to every child and no more restarts; the loop waits up to ``grace``."""
        self.stopping = True
        self.deadline = time.monotonic() + self.grace
        for child in self.children:
            child.restart_at = None
            if child.process is not None and child.process.exitcode is None:
                _signal(child.process, signal.SIGTERM)

    def _kill_all(self) -> None:
        """SIGKILL every child still running and reap it."""
        for child in self.children:
            p = child.process
            if p is None:
                continue
            if p.exitcode is None:
                self.unclean.append(f"node {child.index} (pid {p.pid}) did not stop within {self.grace:g} s: killed")
                log.error("%s", self.unclean[-1])
                _signal(p, signal.SIGKILL)
            p.join()
            child.process = None

    def _abort(self) -> None:
        """After an error in the launcher itself: SIGTERM to every child, up to ``grace``
        seconds for each to exit, then SIGKILL; every child reaped."""
        live = [c.process for c in self.children if c.process is not None]
        for p in live:
            _signal(p, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for p in live:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                _signal(p, signal.SIGKILL)
                p.join()
        for c in self.children:
            c.process = None


def _signal(p: BaseProcess, sig: int) -> None:
    if p.pid is not None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass  # it exited meanwhile; the loop reaps it


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"


# ---- in the child ------------------------------------------------------------------------


def _die_with_parent(launcher: int) -> None:
    """Ask Linux for SIGTERM when the launcher dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes  # only in a child, on Linux

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the child then outlives a SIGKILLed launcher
    if os.getppid() != launcher:
        sys.exit(0)  # the launcher died before the request above: nobody to serve


def _child_main(
    main: Callable[[], Coroutine[Any, Any, Any]], me: Member, launcher: int, debug: bool, log_level: int
) -> None:
    """A child's body: ``main()`` through ``ergopy.run`` with ``member()`` set; exits with
    main's int result (else 0), 1 on an exception, 0 when stopped by a signal before its
    node could handle it."""
    global _member
    _die_with_parent(launcher)
    _member = me
    from ._run import run

    try:
        result = run(main, debug=debug, log_level=log_level)
    except KeyboardInterrupt:
        sys.exit(0)  # a second Ctrl-C while the node stops: a stop, not a crash
    sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)
