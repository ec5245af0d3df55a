"""``act.Pool``: a process that spreads its messages and calls over N worker processes.

Subclass it and return :class:`PoolOptions` from ``init``::

    class Workers(act.Pool):
        def init(self, *args):
            return act.PoolOptions(pool_size=4, worker_factory=Worker, worker_args=[...])

Every message and call the pool receives goes to the next worker, round robin,
with its original sender: a worker's ``handle_call`` reply reaches the original
caller directly, as Ergo's ``Forward`` does. Workers are spawned linked both
ways; a worker that ends (whatever the reason) is replaced at once, and one
that can not take a message is skipped.

Forwarding is the default ``handle_message`` and ``handle_call``: override them
to handle some messages in the pool itself (``add_workers``, ``remove_workers``)
and call ``super()`` to forward the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import gen
from ..gen import PID, ProcessOptions, Ref
from .actor import Actor

__all__ = ["Pool", "PoolOptions"]

_DEFAULT_POOL_SIZE = 3  # Ergo's defaultPoolSize


@dataclass(slots=True)
class PoolOptions:
    """What ``Pool.init`` returns: how many workers, made how, with what mailbox bound (0: none)."""

    worker_factory: gen.Factory
    pool_size: int = _DEFAULT_POOL_SIZE
    worker_args: list[Any] = field(default_factory=list)
    worker_mailbox_size: int = 0


class Pool(Actor):
    """Base class of pools: override ``init`` to return :class:`PoolOptions`."""

    def init(self, *args: Any) -> Any:
        """Return the :class:`PoolOptions`; raise to refuse the spawn."""
        raise gen.IncorrectError(f"{type(self).__name__}.init must return act.PoolOptions")

    def handle_message(self, from_: PID, message: Any) -> Any:
        """Forward ``message`` to the next worker, keeping ``from_`` as its sender."""
        worker = self._next_worker(lambda pid: self.process.forward(pid, from_, message))
        if worker is None:
            self.log.error("pool: no worker could take a message from %s; dropped", from_)
        return None

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """Forward the call to the next worker; the worker's reply goes to the caller."""
        worker = self._next_worker(lambda pid: self.process.forward_call(pid, from_, ref, request))
        if worker is None:
            self.send_response_error(from_, ref, gen.MailboxFullError(f"pool {self.pid} has no worker to take it"))
        return None

    def handle_inspect(self, from_: PID, *items: str) -> Any:
        return {
            "pool_size": str(len(self._workers)),
            "worker_behavior": getattr(self._options.worker_factory, "__name__", repr(self._options.worker_factory)),
            "worker_mailbox_size": str(self._options.worker_mailbox_size),
            "worker_restarts": str(self._restarts),
            "messages_forwarded": str(self._forwarded),
        }

    # ---- the API ----------------------------------------------------------------------------------

    def workers(self) -> list[PID]:
        """The workers, in the order they will next be used."""
        return list(self._workers)

    async def add_workers(self, n: int) -> int:
        """Start ``n`` more workers; returns the pool size. Raises what a worker's ``init`` raised."""
        for _ in range(n):
            self._workers.append(await self._spawn_worker())
        return len(self._workers)

    def remove_workers(self, n: int) -> int:
        """Stop the ``n`` next-in-line workers (the front of :meth:`workers`, as Go's pool
        does) with ``TERMINATE_REASON_NORMAL``; returns the pool size.

        Raises ``gen.IncorrectError`` if the pool has fewer than ``n`` workers.
        """
        if n > len(self._workers):
            raise gen.IncorrectError(f"pool {self.pid} has {len(self._workers)} workers; can not remove {n}")
        for _ in range(n):
            pid = self._workers.popleft()
            self._retired.add(pid)
            try:
                self.send_exit(pid, gen.TERMINATE_REASON_NORMAL)
            except gen.Error:
                self._retired.discard(pid)  # already gone
        return len(self._workers)

    # ---- the node's hooks ---------------------------------------------------------------------------

    async def _ergo_init(self, args: tuple[Any, ...]) -> None:
        options = self.init(*args)
        if hasattr(options, "__await__"):
            options = await options
        if not isinstance(options, PoolOptions):
            raise gen.IncorrectError(f"{type(self).__name__}.init returned {options!r}, not act.PoolOptions")
        if options.pool_size < 1:
            options.pool_size = _DEFAULT_POOL_SIZE
        self._options = options
        self._workers: deque[PID] = deque()
        self._retired: set[PID] = set()  # removed workers whose exits we expect
        self._restarts = 0
        self._forwarded = 0
        self.set_trap_exit(True)
        await self.add_workers(options.pool_size)

    async def _ergo_system(self, from_: PID, message: Any) -> Any:
        """A worker's exit replaces the worker; any other exit ends the pool, as in Ergo."""
        if type(message) is gen.MessageExitPID:
            pid = message.pid
            if pid in self._retired:
                self._retired.discard(pid)
                return None
            if pid in self._workers:
                self._workers.remove(pid)
                if not self.node.is_alive():
                    return None
                try:
                    self._workers.append(await self._spawn_worker())
                except Exception as e:
                    self.log.error("pool: can not restart a worker: %s", e)
                    return e
                self._restarts += 1
                return None
            return gen.ExitSignal(pid, message.reason)
        if type(message) is gen.MessageExitProcessID:
            return gen.ExitSignal(message.process_id, message.reason)
        if type(message) is gen.MessageExitAlias:
            return gen.ExitSignal(message.alias, message.reason)
        if type(message) is gen.MessageExitEvent:
            return gen.ExitSignal(message.event, message.reason)
        if type(message) is gen.MessageExitNode:
            return gen.ExitSignal(message.name, gen.NoConnectionError("no connection"))
        r = self.handle_message(from_, message)
        if hasattr(r, "__await__"):
            r = await r
        return r

    # ---- helpers ------------------------------------------------------------------------------------

    async def _spawn_worker(self) -> PID:
        opts = ProcessOptions(mailbox_size=self._options.worker_mailbox_size, link_parent=True, link_child=True)
        return await self.spawn(self._options.worker_factory, opts, *self._options.worker_args)

    def _next_worker(self, deliver: Callable[[PID], None]) -> PID | None:
        """Hand the item to the next worker that takes it (round robin); None if none does."""
        for _ in range(len(self._workers)):
            pid = self._workers[0]
            self._workers.rotate(-1)
            try:
                deliver(pid)
            except gen.Error:
                continue  # full, or ending (its exit will replace it): try the next
            self._forwarded += 1
            return pid
        return None
