"""The meta-process runner.

A meta-process has an alias as its ID and a parent process. ``init`` runs in
the caller; ``start()`` then runs as the meta-process's own task, concurrently
with its mailbox handler (``handle_message``/``handle_call``, one message at a
time, system queue first). Whichever ends first, ``start()`` returning or
raising, or the handler terminating it (an exit signal, a returned exception,
a raised one), ends it: ``terminate(reason)`` runs exactly once, watchers of the
alias are told, and ``start()`` is cancelled if it has not returned within
half a second (its cleanup may await a little: closing a socket, a session).
Everything the meta-process runs is owned by it and awaited by the
node.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Generator
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import PID, Alias, MessagePriority, MetaOptions, MetaState, Ref
from . import mailbox
from .log import SourceLog
from .runner import INLINE_DEPTH

if TYPE_CHECKING:
    from .node import Node
    from .process import ProcessRecord

__all__ = ["MetaRecord"]

_META_CALLBACKS = ("handle_message", "handle_call", "handle_inspect")
_START_GRACE = 0.5  # seconds start() has to return by itself after terminate(), then it is cancelled
_NO_QUEUE: deque[tuple[Any, Any]] = deque(maxlen=0)  # shared, always empty: a queue not made yet
_ASYNC_META: dict[type, bool] = {}
_SLEEP = MetaState.SLEEP
_RUNNING = MetaState.RUNNING


def _is_async_meta(cls: type) -> bool:
    try:
        return _ASYNC_META[cls]
    except KeyError:
        r = _ASYNC_META[cls] = any(inspect.iscoroutinefunction(getattr(cls, n, None)) for n in _META_CALLBACKS)
        return r


class MetaRecord:
    """The node's side of a meta-process; implements ``gen.MetaProcess`` for its behaviour."""

    __slots__ = (
        "_done",
        "_finished",
        "_level",
        "_log",
        "_loop",
        "_node",
        "_runner",
        "async_mode",
        "batches",
        "behavior",
        "handler_task",
        "handles_now",
        "id",
        "mailbox_size",
        "main",
        "options",
        "parent_record",
        "scheduled",
        "send_priority",
        "start_task",
        "state",
        "system",
        "terminate_task",
    )

    def __init__(
        self, node: Node, alias: Alias, parent: ProcessRecord, behavior: gen.MetaBehavior, options: MetaOptions
    ) -> None:
        self._node = node
        self._loop = node.loop
        self._runner = node.runner
        self.id = alias
        self.parent_record = parent
        self.behavior = behavior
        self.options = options
        self.state = MetaState.SLEEP
        # Queues are made on first use: an idle WebSocket connection is a meta-process,
        # and an empty deque costs 760 bytes; thousands of idle ones add up.
        self.main: deque[tuple[Any, Any]] = _NO_QUEUE
        self.system: deque[tuple[Any, Any]] = _NO_QUEUE
        self.mailbox_size = options.mailbox_size
        self.scheduled = False
        self.async_mode = _is_async_meta(type(behavior))
        # a message may be handled in the sender's call (push): sync handlers, no mailbox bound to enforce
        self.handles_now = not self.async_mode and not self.mailbox_size
        self.batches: Generator[Any, Any, None] | None = None  # the drain loop, made on first mail
        self.send_priority = options.send_priority
        self.start_task: asyncio.Task[None] | None = None
        self.handler_task: asyncio.Task[None] | None = None
        self.terminate_task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] | None = None  # made when someone waits (see done)
        self._finished = False
        level = options.log_level if options.log_level != gen.LogLevel.DEFAULT else parent.log.level()
        self._log: SourceLog | None = None
        self._level = level

    def __repr__(self) -> str:
        return f"<meta {self.id} {type(self.behavior).__name__} {self.state.name}>"

    @property
    def done(self) -> asyncio.Future[None]:
        """Resolved once fully terminated (its tasks ended). Made on first use: thousands of
        idle WebSocket connections are meta-processes nobody waits for until the node stops."""
        f = self._done
        if f is None:
            f = self._done = self._loop.create_future()
            if self._finished:
                f.set_result(None)
        return f

    # ---- gen.MetaProcess --------------------------------------------------------------------

    @property
    def parent(self) -> PID:
        return self.parent_record.pid

    @property
    def log(self) -> SourceLog:
        log = self._log
        if log is None:  # made on first use, like the queues
            log = SourceLog(self._node.meta_logger, str(self.id), "", type(self.behavior).__name__, self._level)
            self._log = log
        return log

    @property
    def node(self) -> Node:
        return self._node

    def env(self, name: str, default: Any = None) -> Any:
        return self.parent_record.env(name, default)

    def send(self, to: gen.SendTarget, message: Any) -> None:
        """Send with the parent's PID as ``from`` (allowed until the node stops).

        A PID or alias that is gone is a dead letter, not an error; raises what
        ``Node.send`` raises (an unregistered name, a full mailbox, another node).
        """
        self._node.route(self.parent_record.pid, to, message, self.send_priority)

    def send_with_priority(self, to: gen.SendTarget, message: Any, priority: MessagePriority) -> None:
        self._node.route(self.parent_record.pid, to, message, MessagePriority(priority))

    def send_response(self, to: PID, ref: Ref, value: Any) -> None:
        self._node.deliver_response(to, ref, value, None)

    def backlog(self, to: gen.SendTarget) -> int:
        """How many messages wait in the main queue of the local process ``to`` (0 if unknown)."""
        p = self._node.resolve(to)
        return len(p.main) if p is not None else 0

    async def wait_backlog(self, to: gen.SendTarget, high: int, low: int) -> None:
        """Flow control: if more than ``high`` messages wait at ``to``, wait until at most ``low`` do."""
        p = self._node.resolve(to)
        if p is not None and len(p.main) > high:
            await p.wait_drained(low)

    def spawn(self, behavior: gen.MetaBehavior, options: MetaOptions | None = None) -> Alias:
        """Spawn a sibling meta-process under the same parent process."""
        if self.state is MetaState.TERMINATED:
            raise gen.NotAllowedError(f"meta-process {self.id} has terminated")
        return self._node.spawn_meta(self.parent_record, behavior, options, check_parent=False)

    # ---- lifecycle ---------------------------------------------------------------------------

    def begin(self) -> None:
        self.start_task = self._loop.create_task(self._run_start(), name=f"ergopy meta {self.id}")

    async def _run_start(self) -> None:
        try:
            await self.behavior.start()
        except asyncio.CancelledError:
            if self.state is not MetaState.TERMINATED:
                self.terminate(gen.TERMINATE_REASON_KILL)
            return
        except gen.Error as e:
            # a reason, as Ergo's Start() returns an error: it goes to terminate() and to the
            # alias's monitors and links, and is logged at debug; the behaviour logs what it means
            if self.state is not MetaState.TERMINATED:
                self.terminate(e)
            return
        except Exception as e:
            if self.state is not MetaState.TERMINATED:
                self.log.failure(e, "meta-process start() raised: %r", e)
                self.terminate(e)
            return
        finally:
            self._maybe_done()
        self.terminate(gen.TERMINATE_REASON_NORMAL)

    def push(self, from_: Any, message: Any) -> None:
        """Queue a message or request in the main queue (whatever its priority, as Ergo).

        A sync meta-process with an unbounded mailbox that is asleep with nothing queued
        handles it at once, in the sender's call (see ``_handle_now``). Raises
        ``ProcessTerminatedError`` once it has terminated, ``MetaMailboxFullError`` when
        its bounded mailbox is full.
        """
        if self.state is _SLEEP and not self.scheduled and self.handles_now and self._runner.inline < INLINE_DEPTH:
            self._handle_now(from_, message)
            return
        if self.state is MetaState.TERMINATED:
            raise gen.ProcessTerminatedError(f"meta-process {self.id} has terminated")
        if self.main is _NO_QUEUE:
            self.main = deque()
        if self.mailbox_size and len(self.main) >= self.mailbox_size:
            raise gen.MetaMailboxFullError(f"mailbox of meta-process {self.id} is full ({self.mailbox_size} messages)")
        self.main.append((from_, message))
        if not self.scheduled:
            self._schedule()

    def _handle_now(self, from_: Any, message: Any) -> None:
        """Handle one message or request in the sender's call: the meta-process is asleep
        with nothing queued and its handler is a plain function, so queuing the message
        and draining the queue one callback later would reach the same call, in the same
        order, with a queue, a run-queue entry and a batch's resume more per message
        (a WebSocket connection's every reply takes this path).

        It is still one message at a time: the state is RUNNING meanwhile, so whatever
        reaches this meta-process during the call (its own sends to itself included) is
        queued and drained later as usual. What the handler raises or returns ends the
        meta-process as in a drain, never the sender. Nesting is bounded (``INLINE_DEPTH``).
        """
        runner = self._runner
        runner.inline += 1
        self.state = _RUNNING
        try:
            r = self._special(message) if from_ is None else self.behavior.handle_message(from_, message)
        except BaseException as e:
            self._fail(e)  # ends it; re-raises only KeyboardInterrupt/SystemExit
            return
        finally:
            runner.inline -= 1
        if self.state is not _RUNNING:  # terminated meanwhile
            return
        if r is not None and isinstance(r, BaseException):
            self.terminate(r)
            return
        self.state = _SLEEP

    def push_system(self, item: Any) -> None:
        """Queue an exit or inspect in the system queue."""
        if self.state is MetaState.TERMINATED:
            raise gen.ProcessTerminatedError(f"meta-process {self.id} has terminated")
        if self.system is _NO_QUEUE:
            self.system = deque()
        if self.mailbox_size and len(self.system) >= self.mailbox_size:
            raise gen.MetaMailboxFullError(f"system queue of meta-process {self.id} is full")
        self.system.append((None, item))
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        if self.async_mode:
            self.handler_task = self._loop.create_task(self._drain_async(), name=f"ergopy meta handler {self.id}")
        else:
            self._runner.add(self)

    def _batches(self) -> Generator[Any, Any, None]:
        """The one drain loop, for sync and async meta-processes alike (as ``ProcessRecord``'s).

        Each ``next`` handles the messages queued when it began, system queue first,
        and yields ``ASLEEP`` or ``ENDED``; a coroutine a callback returns is yielded
        first, for the async driver to await. Made on first use and dropped at the end:
        an idle connection never has one.
        """
        running = MetaState.RUNNING
        handle = self.behavior.handle_message
        while True:
            self.state = running
            for _ in range(len(self.main) + len(self.system)):
                from_, msg = self.system.popleft() if self.system else self.main.popleft()
                r = self._special(msg) if from_ is None else handle(from_, msg)
                if r is not None:
                    if type(r) is CoroutineType:
                        r = yield r
                    if r is not None and isinstance(r, BaseException):
                        self.terminate(r)
                        yield mailbox.ENDED
                        return
                if self.state is not running:  # terminated meanwhile
                    yield mailbox.ENDED
                    return
            from_ = msg = r = None  # hold no message while asleep
            self.state = MetaState.SLEEP
            yield mailbox.ASLEEP

    def _drain(self) -> None:
        """Run one batch for a sync meta-process: a loop callback, no task of its own."""
        if self.state is MetaState.TERMINATED:
            return
        batches = self.batches
        if batches is None:
            batches = self.batches = self._batches()
        try:
            r = next(batches)
            while r is not mailbox.ASLEEP:
                if r is mailbox.ENDED:
                    return
                r = next(batches)  # a plain def returned a coroutine: dropped, as Python warns
        except BaseException as e:
            self._fail(e)
            return
        if self.main or self.system:
            self._runner.add(self)
        else:
            self.scheduled = False

    async def _drain_async(self) -> None:
        """Run batches while there is mail, awaiting what callbacks return (async meta-processes)."""
        try:
            while self.state is MetaState.SLEEP:
                batches = self.batches
                if batches is None:
                    batches = self.batches = self._batches()
                r = next(batches)
                while r is not mailbox.ASLEEP:
                    if r is mailbox.ENDED:
                        return
                    r = batches.send(await r)
                if not (self.main or self.system):
                    break
                await asyncio.sleep(0)
        except asyncio.CancelledError as e:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                if self.state is not MetaState.TERMINATED:
                    self.terminate(gen.TERMINATE_REASON_KILL)
            else:
                self._fail(e)  # raised by the callback itself (fut.result())
        except BaseException as e:
            self._fail(e)
        finally:
            self.scheduled = False
            self._maybe_done()

    def _fail(self, e: BaseException) -> None:
        """A callback raised ``e``: the meta-process ends with it (quietly if it is a normal
        reason). Not only an ``Exception``: a ``CancelledError`` must not wedge it;
        ``KeyboardInterrupt``/``SystemExit`` go on up."""
        if not gen.is_normal(e):
            self.log.failure(e, "meta-process handler raised: %r", e)
        self.terminate(e)
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise e

    def _special(self, item: Any) -> Any:
        t = type(item)
        if t is mailbox.Request:
            return mailbox.answer_call(self._node, self.behavior, item)
        if t is mailbox.Exit:
            return item.reason
        if t is mailbox.Inspect:
            return mailbox.answer_inspect(self._node, self.behavior, item)
        raise gen.UnsupportedError(f"unknown mailbox item {item!r}")

    def terminate(self, reason: BaseException) -> None:
        """End the meta-process (once): unregister, notify, call ``terminate``, stop ``start``."""
        if self.state is MetaState.TERMINATED:
            return
        self.state = MetaState.TERMINATED
        self.batches = None  # a running batch goes on in its driver's hands
        self.main = _NO_QUEUE
        self.system = _NO_QUEUE
        if not gen.is_normal(reason):
            self.log.debug("meta-process terminated - %s", reason)
        self._node.unregister_meta(self, reason)
        try:
            r = self.behavior.terminate(reason)
        except Exception as e:
            self.log.failure(e, "meta-process terminate() raised: %r", e)
            r = None
        if r is not None and inspect.isawaitable(r):
            self.terminate_task = self._loop.create_task(
                self._finish_terminate(r), name=f"ergopy meta terminate {self.id}"
            )
        else:
            self._loop.call_soon(self._stop_start)
        self._maybe_done()

    async def _finish_terminate(self, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception as e:
            self.log.failure(e, "meta-process terminate() raised: %r", e)
        finally:
            self._stop_start()
            self._maybe_done()

    def _stop_start(self) -> None:
        """``terminate`` should make ``start`` return; cancel it if it has not after a grace period.

        An async handler still awaiting is cancelled at once (messages after termination
        are dropped). ``start`` gets ``_START_GRACE``: its cleanup may await (a client
        connection closing its HTTP session), which a cancel one loop turn later would cut
        short; a ``start`` that ``terminate`` does not wake holds ``node.stop()`` no longer.
        """
        h = self.handler_task
        if h is not None and not h.done() and h is not asyncio.current_task():
            h.cancel()
        t = self.start_task
        if t is not None and not t.done() and t is not asyncio.current_task():
            if type(self.behavior).start is gen.MetaBehavior.start:
                t.cancel()  # the default start() only waits: nothing to clean up
                return
            timer = self._loop.call_later(min(_START_GRACE, self._node.options.stop_timeout), t.cancel)
            t.add_done_callback(lambda _t: timer.cancel())

    def _maybe_done(self) -> None:
        if self._finished or self.state is not MetaState.TERMINATED:
            return
        for t in (self.start_task, self.handler_task, self.terminate_task):
            if t is not None and not t.done() and t is not asyncio.current_task():
                t.add_done_callback(lambda _t: self._maybe_done())
                return
        self._finished = True
        self._node._metas.discard(self)
        if self._done is not None:
            self._done.set_result(None)

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent_record.pid,
            "behavior": type(self.behavior).__name__,
            "state": str(self.state.name).lower(),
            "messages_mailbox": len(self.main) + len(self.system),
            "mailbox_size": self.mailbox_size,
        }
