"""A process: a behaviour, a three-queue mailbox and the scheduler that drains it.

A process is scheduled only when mail arrives: the push that makes the mailbox
non-empty queues it on the node's run queue (``runner.Runner``); its drain handles at most
the messages that were queued when it began, one at a time, then yields to the
loop. Behaviours whose callbacks are all plain ``def`` are drained by that
callback directly, with no task of their own; a behaviour with any ``async def``
callback gets a task per busy period, so an awaiting callback holds its process
(it handles no other message meanwhile) without blocking the node. Both run the
same loop (``_batches``, a generator: the async driver awaits what it yields).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable, Generator
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import (
    PID,
    Alias,
    Atom,
    Event,
    EventOptions,
    MessagePriority,
    MetaOptions,
    ProcessOptions,
    ProcessState,
    Ref,
)
from . import mailbox
from .log import SourceLog
from .meta import MetaRecord

if TYPE_CHECKING:
    from .node import Node

__all__ = ["ProcessRecord"]

_INIT = ProcessState.INIT
_SLEEP = ProcessState.SLEEP
_RUNNING = ProcessState.RUNNING
_WAIT = ProcessState.WAIT_RESPONSE
_TERMINATED = ProcessState.TERMINATED
_NOTHING = object()  # make_sender's 'no PID sent to yet'
_ZOMBEE = ProcessState.ZOMBEE
_ACTIVE = _RUNNING | _WAIT
_ALIVE = _INIT | _SLEEP | _RUNNING | _WAIT

_NORMAL = MessagePriority.NORMAL
_HIGH = MessagePriority.HIGH
_ASLEEP = mailbox.ASLEEP  # a batch's last yield: the process sleeps, alive
_ENDED = mailbox.ENDED  # a batch's last yield: the process has ended


def _ended() -> Generator[Any, Any, None]:
    """The drain loop of a process that has ended (its own refers to the process)."""
    while True:
        yield _ENDED


_ASYNC_CLASSES: dict[type, bool] = {}
_CALLBACKS = ("handle_message", "handle_call", "handle_event", "handle_inspect", "_ergo_system")


def is_async_behavior(cls: type) -> bool:
    """True if any per-message callback of ``cls`` is ``async def`` (cached per class)."""
    try:
        return _ASYNC_CLASSES[cls]
    except KeyError:
        result = any(inspect.iscoroutinefunction(getattr(cls, n, None)) for n in _CALLBACKS)
        _ASYNC_CLASSES[cls] = result
        return result


class ProcessRecord:
    """The node's side of a process; implements ``gen.Process`` for its behaviour."""

    __slots__ = (
        "_env",
        "_log",
        "_loop",
        "_node",
        "_runner",
        "_trap_exit",
        "alias_set",
        "async_mode",
        "batches",
        "behavior",
        "cb_message",
        "done",
        "drained",
        "events",
        "hi",
        "leader",
        "mailbox_size",
        "main",
        "metas",
        "name",
        "options",
        "parent_pid",
        "pid",
        "scheduled",
        "send_priority",
        "state",
        "system",
        "task",
        "urgent",
        "watching",
    )

    def __init__(
        self,
        node: Node,
        pid: PID,
        behavior: gen.ProcessBehavior,
        parent_pid: PID,
        leader: PID,
        options: ProcessOptions,
        env: dict[str, Any],
    ) -> None:
        self._node = node
        self._loop = node.loop
        self._runner = node.runner
        self.pid = pid
        self.behavior = behavior
        self.parent_pid = parent_pid
        self.leader = leader
        self.options = options
        self.name: Atom | None = None
        self.state = _INIT
        self.urgent: deque[tuple[Any, Any]] = deque()
        self.system: deque[tuple[Any, Any]] = deque()
        self.main: deque[tuple[Any, Any]] = deque()
        self.hi = 0  # items in urgent + system: one test on the hot path
        self.mailbox_size = options.mailbox_size
        self.scheduled = False
        self.async_mode = is_async_behavior(type(behavior))
        self.cb_message: Callable[[PID, Any], Any] = behavior.handle_message
        self.batches = self._batches()  # the drain loop, resumed once per batch
        self.task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = self._loop.create_future()
        # (threshold, future): woken when the main queue is down to threshold (flow control)
        self.drained: list[tuple[int, asyncio.Future[None]]] | None = None
        self.send_priority = options.send_priority
        self._trap_exit = False
        self._env = env
        self.alias_set: set[Alias] = set()
        self.metas: dict[Alias, MetaRecord] = {}
        self.events: dict[Atom, Ref] = {}
        self.watching: set[tuple[str, Any]] = set()  # (kind, target) links/monitors this process holds
        level = options.log_level if options.log_level != gen.LogLevel.DEFAULT else node.log_level
        self._log = SourceLog(node.process_logger, str(pid), "", type(behavior).__name__, level)

    def __repr__(self) -> str:
        return f"<process {self.pid} {type(self.behavior).__name__} {self.state.name}>"

    # ---- mailbox: called by the node's router -------------------------------------------

    def push(self, from_: Any, message: Any, priority: int) -> None:
        """Queue a message; raises ``ProcessTerminatedError`` or ``MailboxFullError``."""
        # The hot path: priority NORMAL, no mailbox bound, alive. Identity tests only:
        # ``state & flag`` on an IntFlag runs enum.py code (~0.6 us a message).
        # make_sender inlines these lines: change both together.
        if priority is _NORMAL and not self.mailbox_size and self.state is not _TERMINATED:
            self.main.append((from_, message))
            if not self.scheduled:
                self._schedule()
            return
        if self.state is _TERMINATED:
            raise gen.ProcessTerminatedError(f"process {self.pid} has terminated")
        if priority is _NORMAL or priority == 0:
            q = self.main
        elif priority == _HIGH:
            q = self.system
            self.hi += 1
        else:
            q = self.urgent
            self.hi += 1
        if self.mailbox_size and len(q) >= self.mailbox_size:
            if q is not self.main:
                self.hi -= 1
            self._mailbox_full(from_, message)
            return
        q.append((from_, message))
        if not self.scheduled:
            self._schedule()

    def push_urgent(self, item: Any) -> None:
        """Queue a system item (exit, inspect, kill) in the urgent queue, past any bound."""
        if self.state & _TERMINATED:
            raise gen.ProcessTerminatedError(f"process {self.pid} has terminated")
        self.urgent.append((None, item))
        self.hi += 1
        if not self.scheduled:
            self._schedule()

    def push_system(self, from_: Any, message: Any) -> None:
        """Queue a down notification in the system queue, past any bound."""
        if self.state & _TERMINATED:
            raise gen.ProcessTerminatedError(f"process {self.pid} has terminated")
        self.system.append((from_, message))
        self.hi += 1
        if not self.scheduled:
            self._schedule()

    def _mailbox_full(self, from_: Any, message: Any) -> None:
        fb = self.options.fallback
        if fb.enable and fb.name and from_ is not None:  # events and requests are not redirected
            self._node.route(self.pid, fb.name, gen.MessageFallback(self.pid, fb.tag, message), _NORMAL)
            return
        raise gen.MailboxFullError(f"mailbox of process {self.pid} is full ({self.mailbox_size} messages)")

    def _schedule(self) -> None:
        if self.state is _INIT:
            return  # run() after init handles what was queued meanwhile
        self.scheduled = True
        if self.async_mode:
            if self.task is None:
                self.task = self._loop.create_task(self._drain_async(), name=f"ergopy process {self.pid}")
        else:
            self._runner.add(self)

    def start_running(self) -> None:
        """Init succeeded: go to sleep and handle anything queued during init."""
        self.state = _SLEEP
        if self.main or self.hi:
            self._schedule()

    # ---- the drain loops ---------------------------------------------------------------------

    def _pop(self) -> tuple[Any, Any]:
        if self.hi:
            self.hi -= 1
            return self.urgent.popleft() if self.urgent else self.system.popleft()
        return self.main.popleft()

    def _batches(self) -> Generator[Any, Any, None]:
        """The one drain loop, for sync and async behaviours alike.

        Each ``next`` handles the messages queued when it began, one at a time, and
        yields ``_ASLEEP`` (the process sleeps, alive) or ``_ENDED`` (it has ended;
        never resumed again). A coroutine a callback returns is yielded first: the async
        driver awaits it and sends the result back; a sync behaviour's callbacks return
        none. One generator per process, made at spawn and resumed per batch: making
        and closing one per batch cost ping-pong a fifth. Raises what a callback raised.
        """
        running = _RUNNING
        popmain = self.main.popleft
        cb = self.cb_message
        while True:
            self.state = running
            for _ in range(len(self.main) + self.hi):  # what is queued now, then yield to the loop
                if self.hi:
                    from_, msg = self._pop()
                    r = self._special(msg) if from_ is None else self.behavior._ergo_system(from_, msg)
                else:
                    from_, msg = popmain()
                    r = cb(from_, msg) if from_ is not None else self._special(msg)
                if r is not None:  # the common case, None, costs this one test
                    if type(r) is CoroutineType:
                        r = yield r
                    if r is not None and isinstance(r, BaseException):
                        self.terminate(r)
                        yield _ENDED
                        return
                if self.state is not running:
                    if self.state is _ZOMBEE:
                        self.terminate(gen.TERMINATE_REASON_KILL)
                    yield _ENDED
                    return
            from_ = msg = r = None  # hold no message while asleep
            self.state = _SLEEP
            if self.drained is not None:
                self._wake_drained()
            yield _ASLEEP

    def _drain(self) -> None:
        """Run one batch for a sync behaviour: a loop callback, no task of its own."""
        if self.state is not _SLEEP:
            self.scheduled = False
            return
        batches = self.batches
        try:
            r = next(batches)
            while r is not _ASLEEP:
                if r is _ENDED:
                    return
                r = next(batches)  # a plain def returned a coroutine: dropped, as Python warns
        except BaseException as e:
            self._fail(e)
            return
        if self.main or self.hi:
            self._runner.add(self)
        else:
            self.scheduled = False

    def _fail(self, e: BaseException) -> None:
        """A callback raised ``e``: the process ends with it. Not only an ``Exception``: a
        ``CancelledError`` from ``fut.result()`` must not wedge the process (running for
        ever, its mailbox never drained); ``KeyboardInterrupt``/``SystemExit`` go on up."""
        self.terminate(e, failed=True)
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise e

    def wait_drained(self, threshold: int) -> asyncio.Future[None]:
        """A future done when the main queue holds at most ``threshold`` messages (or the process ends)."""
        fut: asyncio.Future[None] = self._loop.create_future()
        if len(self.main) <= threshold or self.state & _TERMINATED:
            fut.set_result(None)
            return fut
        if self.drained is None:
            self.drained = []
        self.drained.append((threshold, fut))
        return fut

    def _wake_drained(self, everyone: bool = False) -> None:
        assert self.drained is not None
        n = len(self.main)
        keep = []
        for threshold, fut in self.drained:
            if fut.done():
                continue
            if everyone or n <= threshold:
                fut.set_result(None)
            else:
                keep.append((threshold, fut))
        self.drained = keep or None

    async def _drain_async(self) -> None:
        """Run batches while there is mail, awaiting what callbacks return (async behaviours)."""
        try:
            while self.state is _SLEEP:
                batches = self.batches
                r = next(batches)
                while r is not _ASLEEP:
                    if r is _ENDED:
                        return
                    r = batches.send(await r)
                if not (self.main or self.hi):
                    break
                await asyncio.sleep(0)  # fairness: let connections and other processes run
        except asyncio.CancelledError as e:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                if not self.state & _TERMINATED:
                    self.terminate(gen.TERMINATE_REASON_KILL)  # kill() cancelled the callback
            else:
                self.terminate(e, failed=True)  # raised by the callback itself (fut.result())
        except BaseException as e:
            self._fail(e)
        finally:
            self.scheduled = False
            if self.task is asyncio.current_task():
                self.task = None

    # ---- items other than plain messages -----------------------------------------------------

    def _special(self, item: Any) -> Any:
        """Handle a queued request, inspect, exit, event or kill; may return a coroutine."""
        t = type(item)
        if t is mailbox.Request:
            return mailbox.answer_call(self._node, self.behavior, item)
        if t is mailbox.Event:
            return self.behavior.handle_event(item.message)
        if t is mailbox.Exit:
            return self._exit(item)
        if t is mailbox.Inspect:
            return mailbox.answer_inspect(self._node, self.behavior, item)
        raise gen.UnsupportedError(f"unknown mailbox item {item!r}")

    def _exit(self, item: mailbox.Exit) -> Any:
        """An exit signal: terminate, or hand it to a trapping behaviour as a message.

        As in Ergo, only an exit from the parent is untrappable (except for a behaviour with
        ``_ergo_parent_exit``, a supervisor, which stops its children first); a ``KILL`` reason is
        trappable like any other (``node.kill`` does not go through here), so a
        trapping supervisor hears of a killed child instead of dying with it.
        """
        from_parent = item.from_ == self.parent_pid and type(item.message) is gen.MessageExitPID
        if self._trap_exit and (not from_parent or self.behavior._ergo_parent_exit):
            return self.behavior._ergo_system(item.from_, item.message)
        return gen.ExitSignal(item.source, item.reason)

    # ---- termination ---------------------------------------------------------------------------

    def terminate(self, reason: BaseException, failed: bool = False) -> None:
        """End the process with ``reason``: unregister, notify watchers, run ``terminate``."""
        if self.state & _TERMINATED:
            return
        self.state = _TERMINATED
        self.scheduled = True  # nothing schedules a terminated process again
        self.batches = _ended()  # the running batch, if any, goes on in its driver's hands
        if not gen.is_normal(reason):  # raising a normal or shutdown reason is a normal stop
            if failed and not isinstance(reason, gen.Error):
                self._log.failure(reason, "process terminated abnormally - %r", reason)
            else:
                self._log.error("process terminated abnormally - %s", reason)
        self.main.clear()
        self.urgent.clear()
        self.system.clear()
        self.hi = 0
        if self.drained is not None:
            self._wake_drained(everyone=True)
        self._node.unregister_process(self, gen.unwrap_reason(reason))
        try:
            r = self.behavior._ergo_terminate(reason)
        except BaseException as e:
            self._log.exception("terminate callback raised")
            if isinstance(e, KeyboardInterrupt | SystemExit):
                self._node.process_done(self)
                raise
            r = None
        if r is not None and inspect.isawaitable(r):
            self._node.own_task(self._finish_terminate(r), f"ergopy terminate {self.pid}")
        else:
            self._node.process_done(self)

    async def _finish_terminate(self, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            self._log.exception("terminate callback raised")
        finally:
            self._node.process_done(self)

    def kill(self) -> None:
        """Terminate with KILL: at once if idle, after the current callback if running."""
        if self.state & _TERMINATED:
            return
        if self.state is _SLEEP or self.state is _INIT:
            self.terminate(gen.TERMINATE_REASON_KILL)
        else:
            self.state = _ZOMBEE
            if self.task is not None and self.task is not asyncio.current_task():
                self.task.cancel()  # an awaiting callback would otherwise hold the process forever

    # ---- gen.Process ------------------------------------------------------------------------------

    @property
    def parent(self) -> PID:
        return self.parent_pid

    @property
    def node(self) -> Node:
        return self._node

    @property
    def log(self) -> SourceLog:
        return self._log

    def env(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` (case-insensitive) in this process's environment, or ``default``."""
        return self._env.get(name.upper(), default)

    def set_env(self, name: str, value: Any) -> None:
        """Set ``name`` in this process's environment; ``None`` removes it (Go's ``SetEnv(name, nil)``)."""
        if value is None:
            self._env.pop(name.upper(), None)
        else:
            self._env[name.upper()] = value

    def env_list(self) -> dict[str, Any]:
        """A copy of this process's environment: the node's and the parent's as they were at
        spawn, then ``ProcessOptions.env``, then what ``set_env`` changed since."""
        return dict(self._env)

    def set_trap_exit(self, trap: bool) -> None:
        self._trap_exit = trap

    def trap_exit(self) -> bool:
        return self._trap_exit

    def set_send_priority(self, priority: MessagePriority) -> None:
        self.send_priority = MessagePriority(priority)

    def _require(self, states: ProcessState, what: str) -> None:
        if not self.state & states:
            raise gen.NotAllowedError(f"{what} is not allowed for process {self.pid} in state {self.state.name}")

    def send(self, to: gen.SendTarget, message: Any) -> None:
        self._node.route(self.pid, to, message, self.send_priority)

    def make_sender(self) -> Callable[[Any, Any], None]:
        """A ``send(to, message)`` bound to this process: the router's PID branch, inlined.

        A live local PID with a plain mailbox gets the message appended directly, and a
        live local meta-process's alias gets it pushed (as the router's alias branch);
        anything else (a name, a process's alias, a priority, a bound, an unknown or stale
        PID or alias) takes ``Node.route``, which counts dead letters and raises what it
        raises.
        The last PID sent to and its record are kept, so a stream of sends to one
        process looks it up once. A record that has terminated is never used (its
        state is tested on every send): the next send to it goes to the router (a
        dead letter) and lets the record go; until then it stays referenced, one
        record at most per sender.
        """
        node = self._node
        route = node.route
        lookup = node._procs.get  # the node's table of live processes (never rebound)
        alias_lookup = node._aliases.get  # and of local aliases, by ID (never rebound)
        name, creation = node.name, node.creation
        pid = self.pid
        last_to: Any = _NOTHING  # the PID object last sent to, and its live record
        last_p: Any = None

        def send(to: Any, message: Any) -> None:
            nonlocal last_to, last_p
            if to is last_to:
                p = last_p
            elif type(to) is PID and (p := lookup(to.id)) is not None and (p.pid is to or p.pid == to):
                last_to, last_p = to, p
            else:
                if (
                    type(to) is Alias
                    and type(m := alias_lookup(to.id)) is MetaRecord
                    and to.creation == creation
                    and to.node == name
                ):
                    # the router's alias branch for a live local meta-process (a reply to a
                    # WebSocket connection): a priority means nothing to a meta-process
                    try:
                        m.push(pid, message)
                        return
                    except gen.ProcessTerminatedError:
                        pass  # the router counts the dead letter
                route(pid, to, message, self.send_priority)
                return
            if self.send_priority is _NORMAL and not p.mailbox_size and p.state is not _TERMINATED:
                p.main.append((pid, message))  # push's fast path, inlined
                if not p.scheduled:
                    p._schedule()
                return
            if p.state is _TERMINATED:
                last_to, last_p = _NOTHING, None
            route(pid, to, message, self.send_priority)

        return send

    def send_pid(self, to: PID, message: Any) -> None:
        self._node.route(self.pid, to, message, self.send_priority)

    def send_alias(self, to: Alias, message: Any) -> None:
        self._node.route(self.pid, to, message, self.send_priority)

    def send_with_priority(self, to: gen.SendTarget, message: Any, priority: MessagePriority) -> None:
        self._node.route(self.pid, to, message, MessagePriority(priority))

    def send_after(self, to: gen.SendTarget, message: Any, after: float) -> Callable[[], bool]:
        return self._node.send_after(self.pid, to, message, after)

    def send_exit(self, to: PID, reason: BaseException) -> None:
        self._require(_ACTIVE | _INIT, "send_exit")
        self._node.send_exit_from(self.pid, to, reason)

    def send_exit_meta(self, alias: Alias, reason: BaseException) -> None:
        self._require(_ACTIVE | _INIT, "send_exit_meta")
        self._node.send_exit_meta(alias, reason)

    def send_response(self, to: PID, ref: Ref, value: Any) -> None:
        self._node.deliver_response(to, ref, value, None)

    def send_response_error(self, to: PID, ref: Ref, error: BaseException) -> None:
        self._node.deliver_response(to, ref, None, error)

    def forward(self, to: gen.SendTarget, from_: PID, message: Any) -> None:
        """Queue ``message`` for ``to`` as sent by ``from_``. Unlike ``send``, a local PID that
        is gone raises ``ProcessUnknownError`` (a pool then tries its next worker, as Go's
        ``Forward`` lets it); otherwise errors as ``send``."""
        if type(to) is PID and to.node == self._node.name and self._node.lookup_pid(to) is None:
            self._node._unknown(to)
        self._node.route(from_, to, message, _NORMAL)

    def forward_call(self, to: gen.CallTarget, from_: PID, ref: Ref, request: Any) -> None:
        self._node.route(None, to, mailbox.Request(from_, ref, request), _NORMAL)

    async def spawn(self, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any) -> PID:
        self._require(_ACTIVE | _INIT, "spawn")
        return await self._node.spawn_process(factory, options, args, parent=self)

    async def spawn_register(
        self, name: str, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any
    ) -> PID:
        self._require(_ACTIVE | _INIT, "spawn_register")
        return await self._node.spawn_process(factory, options, args, parent=self, name=name)

    def spawn_meta(self, behavior: gen.MetaBehavior, options: MetaOptions | None = None) -> Alias:
        self._require(_ACTIVE | _INIT, "spawn_meta")
        return self._node.spawn_meta(self, behavior, options)

    async def call(self, to: gen.CallTarget, request: Any, timeout: float | None = None) -> Any:
        self._require(_ACTIVE, "call")
        if self._is_self(to):
            raise gen.NotAllowedError(f"process {self.pid} can not call itself")
        prev = self.state
        self.state = _WAIT
        try:
            return await self._node.make_call(self.pid, to, request, timeout)
        finally:
            if self.state is _WAIT:
                self.state = prev

    def _is_self(self, to: Any) -> bool:
        """True if ``to`` addresses this process: its PID, name, ProcessID or one of its aliases."""
        t = type(to)
        if t is PID:
            return bool(to == self.pid)
        if t is Alias:
            return to in self.alias_set
        if t is gen.ProcessID:
            return self.name is not None and to.name == self.name and to.node in ("", self._node.name)
        return self.name is not None and isinstance(to, str) and to == self.name

    async def inspect(self, pid: PID, *items: str) -> dict[str, str]:
        self._require(_ACTIVE, "inspect")
        return await self._node.inspect(pid, *items, from_=self.pid)

    async def inspect_meta(self, alias: Alias, *items: str) -> dict[str, str]:
        self._require(_ACTIVE, "inspect_meta")
        return await self._node.inspect_meta(alias, *items, from_=self.pid)

    def register_name(self, name: str) -> None:
        self._require(_ACTIVE | _INIT, "register_name")
        self._node.register_name(name, self.pid)

    def unregister_name(self) -> None:
        if self.name is None:
            raise gen.NameUnknownError(f"process {self.pid} has no registered name")
        self._node.unregister_name(self.name)

    def create_alias(self) -> Alias:
        self._require(_ACTIVE | _INIT, "create_alias")
        return self._node.create_alias(self)

    def delete_alias(self, alias: Alias) -> None:
        if alias not in self.alias_set:
            raise gen.AliasUnknownError(f"process {self.pid} has no alias {alias}")
        self._node.delete_alias(self, alias)

    def aliases(self) -> list[Alias]:
        return list(self.alias_set)

    def link(self, target: gen.SendTarget) -> None:
        self._require(_ACTIVE, "link")
        self._node.targets.add(self, "link", target)

    def unlink(self, target: gen.SendTarget) -> None:
        self._require(_ACTIVE, "unlink")
        self._node.targets.remove(self, "link", target)

    def monitor(self, target: gen.SendTarget) -> None:
        self._require(_ACTIVE, "monitor")
        self._node.targets.add(self, "monitor", target)

    def demonitor(self, target: gen.SendTarget) -> None:
        self._require(_ACTIVE, "demonitor")
        self._node.targets.remove(self, "monitor", target)

    def link_node(self, name: str) -> None:
        self._require(_ACTIVE, "link_node")
        self._node.targets.add_node(self, "link", name)

    def unlink_node(self, name: str) -> None:
        self._require(_ACTIVE, "unlink_node")
        self._node.targets.remove_node(self, "link", name)

    def monitor_node(self, name: str) -> None:
        self._require(_ACTIVE, "monitor_node")
        self._node.targets.add_node(self, "monitor", name)

    def demonitor_node(self, name: str) -> None:
        self._require(_ACTIVE, "demonitor_node")
        self._node.targets.remove_node(self, "monitor", name)

    def register_event(self, name: str, options: EventOptions | None = None) -> Ref:
        self._require(_ACTIVE | _INIT, "register_event")
        return self._node.events.register(self, Atom(name), options or EventOptions())

    def unregister_event(self, name: str) -> None:
        self._node.events.unregister(self, Atom(name))

    def send_event(self, name: str, token: Ref, message: Any) -> None:
        self._node.events.publish(self, Atom(name), token, message)

    def link_event(self, event: Event) -> list[gen.MessageEvent]:
        self._require(_ACTIVE, "link_event")
        return self._node.targets.add(self, "link", event) or []

    def unlink_event(self, event: Event) -> None:
        self._require(_ACTIVE, "unlink_event")
        self._node.targets.remove(self, "link", event)

    def monitor_event(self, event: Event) -> list[gen.MessageEvent]:
        self._require(_ACTIVE, "monitor_event")
        return self._node.targets.add(self, "monitor", event) or []

    def demonitor_event(self, event: Event) -> None:
        self._require(_ACTIVE, "demonitor_event")
        self._node.targets.remove(self, "monitor", event)

    def info(self) -> dict[str, Any]:
        """What ``node.process_info`` reports about this process."""
        return {
            "pid": self.pid,
            "name": self.name,
            "behavior": type(self.behavior).__name__,
            "state": str(self.state.name).lower(),
            "parent": self.parent_pid,
            "leader": self.leader,
            "messages_mailbox": len(self.main) + len(self.system) + len(self.urgent),
            "mailbox_size": self.mailbox_size,
            "aliases": sorted(map(str, self.alias_set)),
            "metas": sorted(map(str, self.metas)),
            "events": sorted(str(e) for e in self.events),
            "trap_exit": self._trap_exit,
        }
