"""The node: the process table, names, aliases, routing, calls, timers and shutdown.

One node runs on one asyncio event loop. Everything it starts is tracked:
``stop()`` returns only when every meta-process and process has terminated and
every task they owned has finished.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .. import gen
from ..gen import (
    PID,
    Alias,
    Atom,
    MessagePriority,
    MetaOptions,
    NodeOptions,
    ProcessID,
    ProcessOptions,
    ProcessState,
    Ref,
)
from . import mailbox
from .application import Applications
from .events import Events
from .log import SourceLog
from .meta import MetaRecord
from .process import ProcessRecord
from .runner import Runner
from .targets import Targets

__all__ = ["Node", "signals_by_default", "start_node"]

signals_by_default: contextvars.ContextVar[bool] = contextvars.ContextVar("ergopy_signals", default=False)
"""Set by ``ergopy.run``: nodes started in its context stop on SIGINT/SIGTERM."""

_ALIVE = ProcessState.INIT | ProcessState.SLEEP | ProcessState.RUNNING | ProcessState.WAIT_RESPONSE
_NORMAL = MessagePriority.NORMAL
_FIRST_PID = 1000  # Ergo's nextID starts at 1000, so the first spawn gets 1001
_CORE_PID = 1
_INSPECT_TIMEOUT = 5.0  # Ergo's inspect timeout
# Dead-letter causes: the keys ``stats()`` and ``dead_letters()`` count them under.
_DEAD_PID = "dead_letters_pid_unknown"  # no live process has this PID
_DEAD_ALIAS = "dead_letters_alias_unknown"  # no live process or meta-process has this alias
_DEAD_TERMINATED = "dead_letters_terminated"  # the process was terminating as the message came
_DEAD_INCARNATION = "dead_letters_incarnation"  # a remote PID/alias of its node's previous incarnation


class _NodeState(enum.Enum):
    RUNNING = 1
    STOPPING = 2
    STOPPED = 3


def _check_name(name: str) -> Atom:
    if "@" not in name:
        raise gen.IncorrectError(f"incorrect FQDN node name {name!r} (example: node@localhost)")
    short, _, host = name.partition("@")
    if not short:
        raise gen.IncorrectError(f"too short node name {name!r}")
    if not host:
        raise gen.IncorrectError(f"too short host name {name!r}")
    if len(name.encode()) > 255:  # Ergo's limit for an Atom
        raise gen.IncorrectError(f"too long node name {name[:40]!r}... (max: 255 bytes)")
    return Atom(name)


class Node:
    """A running node. Create one with ``await ergopy.start_node("name@host")``."""

    def __init__(self, name: str, options: NodeOptions | None, loop: asyncio.AbstractEventLoop) -> None:
        self.options = options or NodeOptions()
        self.loop = loop
        self.runner = Runner(loop)  # the ready queue of processes and meta-processes with mail
        self._name = _check_name(name)
        self._creation = int(time.time())
        self._pid = PID(self._name, _CORE_PID, self._creation)
        self._ids = itertools.count(_FIRST_PID + 1)
        self._refs = itertools.count(time.time_ns())
        self._env: dict[str, Any] = {k.upper(): v for k, v in self.options.env.items()}
        self.log_level = self.options.log_level if self.options.log_level != gen.LogLevel.DEFAULT else gen.LogLevel.INFO
        self.process_logger = logging.getLogger("ergopy.process")
        self.meta_logger = logging.getLogger("ergopy.meta")
        self._log = SourceLog(logging.getLogger("ergopy.node"), self._name.crc32(), "", "node", self.log_level)
        self._procs: dict[int, ProcessRecord] = {}
        self._names: dict[str, ProcessRecord] = {}
        # alias.id -> record: a local alias is known by its id (node and creation are this
        # node's, checked on lookup), so an alias decoded off the network, equal to ours but
        # not the same object, is found by a tuple's hash and compare, not Alias's Python ones
        self._aliases: dict[tuple[int, int, int], ProcessRecord | MetaRecord] = {}
        self._records: set[ProcessRecord] = set()  # every process not yet fully terminated
        self._metas: set[MetaRecord] = set()  # every meta-process not yet fully terminated
        self._calls: dict[Ref, asyncio.Future[Any]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._owned: set[asyncio.Task[Any]] = set()
        self._dead_letters = {_DEAD_PID: 0, _DEAD_ALIAS: 0, _DEAD_TERMINATED: 0}
        self._network: Any = None  # a net.network.Network once start_node has started it
        self.targets = Targets(self)
        self.events = Events(self)
        self._apps = Applications(self)
        self._state = _NodeState.RUNNING
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._stop_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Node {self._name.text} {self._state.name.lower()} processes={len(self._procs)}>"

    # ---- identity ------------------------------------------------------------------------------

    @property
    def name(self) -> Atom:
        return self._name

    @property
    def creation(self) -> int:
        return self._creation

    @property
    def pid(self) -> PID:
        """The node's core PID (ID 1): the parent and ``from`` of what the node does itself."""
        return self._pid

    @property
    def log(self) -> SourceLog:
        return self._log

    @property
    def network(self) -> Any:
        """The node's network (``ergopy.net.network.Network``): acceptors, routes, connected nodes.

        Raises ``gen.NotAllowedError`` if the node was started without ``NodeOptions.network``.
        """
        if self._network is None:
            raise gen.NotAllowedError(f"node {self._name.text} has no network (set NodeOptions.network)")
        return self._network

    def is_alive(self) -> bool:
        return self._state is _NodeState.RUNNING

    def env(self, name: str, default: Any = None) -> Any:
        """The node's environment value ``name`` (case-insensitive), or ``default``."""
        return self._env.get(name.upper(), default)

    def set_env(self, name: str, value: Any) -> None:
        """Set ``name`` in the node's environment; ``None`` removes it (Go's ``SetEnv(name, nil)``).

        Processes spawned from now on inherit it; running ones keep the copy they got at spawn.
        """
        if value is None:
            self._env.pop(name.upper(), None)
        else:
            self._env[name.upper()] = value

    def env_list(self) -> dict[str, Any]:
        """A copy of the node's environment."""
        return dict(self._env)

    def make_ref(self) -> Ref:
        """A new unique ``Ref`` (printed as Ergo prints refs)."""
        n = next(self._refs)
        return Ref(self._name, self._creation, (n & 0x3FFFF, n >> 18, 0))

    def _make_alias(self) -> Alias:
        n = next(self._refs)
        return Alias(self._name, self._creation, (n & 0x3FFFF, n >> 18, 0))

    # ---- lookups ---------------------------------------------------------------------------------

    def lookup_pid(self, pid: PID) -> ProcessRecord | None:
        p = self._procs.get(pid.id)
        if p is None or (p.pid is not pid and p.pid != pid):
            return None
        return p

    def lookup_name(self, name: str) -> ProcessRecord | None:
        return self._names.get(name)

    def resolve(self, to: Any) -> ProcessRecord | None:
        """The local process a PID, name or ProcessID names (None if none, or if it is an alias)."""
        t = type(to)
        if t is PID:
            return self.lookup_pid(to)
        if t is str or t is Atom:
            return self._names.get(to)
        if t is ProcessID and (not to.node or to.node == self._name):
            return self._names.get(to.name)
        if t is Alias:
            r = self._alias_record(to)
            return r if isinstance(r, ProcessRecord) else None
        return None

    def alias_exists(self, alias: Alias) -> bool:
        return self._alias_record(alias) is not None

    def _alias_record(self, alias: Alias) -> ProcessRecord | MetaRecord | None:
        """The live local process or meta-process ``alias`` names (None if none, or if it
        is not an alias; raises nothing)."""
        if type(alias) is not Alias:
            return None
        r = self._aliases.get(alias.id)
        if r is None or alias.creation != self._creation or alias.node != self._name:
            return None
        return r

    def processes(self) -> list[PID]:
        """PIDs of every live process."""
        return [p.pid for p in self._procs.values()]

    def process_info(self, pid: PID) -> dict[str, Any]:
        """State, mailbox, name, aliases, metas of a process; ``ProcessUnknownError`` if none."""
        p = self.lookup_pid(pid)
        if p is None:
            raise gen.ProcessUnknownError(f"unknown process {pid}")
        return p.info()

    def meta_info(self, alias: Alias) -> dict[str, Any]:
        """State and mailbox of a meta-process; ``MetaUnknownError`` if none."""
        m = self._alias_record(alias)
        if type(m) is not MetaRecord:
            raise gen.MetaUnknownError(f"unknown meta-process {alias}")
        return m.info()

    def stats(self) -> dict[str, int]:
        """Counts of live things (processes, names, aliases, metas, pending calls, timers, links,
        monitors, tasks; with a network its connections, requests, remote calls and remotely
        watched targets) and, under keys starting ``dead_letters_``, the messages dropped so far
        because their PID or alias was gone, per cause (see :meth:`dead_letters`)."""
        return {
            "processes": len(self._procs),
            "records": len(self._records),
            "names": len(self._names),
            "aliases": len(self._aliases),
            "metas": len(self._metas),
            "calls": len(self._calls),
            "timers": len(self._timers),
            "links": sum(len(v) for v in self.targets.links.values()),
            "monitors": sum(len(v) for v in self.targets.monitors.values()),
            "tasks": len(self._owned),
            **(self._network.stats() if self._network is not None else {}),
            **self._dead_letters,
        }

    # ---- routing ---------------------------------------------------------------------------------

    def route(self, from_: Any, to: Any, message: Any, priority: int) -> None:
        """Queue ``message`` for ``to``.

        A PID or alias that no longer exists (or whose process has terminated) is not
        an error: the message is dropped and counted as a dead letter (a call request
        still raises, its caller waits for an answer). Raises ``ProcessUnknownError``
        for a name that is not registered, ``MailboxFullError`` for a full mailbox,
        ``NoConnectionError`` for a target on a node this one is not connected to (a
        send never dials: see ``net.network``), ``NodeTerminatedError`` once the node
        has stopped, ``UnsupportedError`` for anything not a target. A target on a
        connected node goes over the network; the errors of its node are not seen here.
        """
        t = type(to)
        if t is PID:
            p = self._procs.get(to.id)
            if p is not None and (p.pid is to or p.pid == to):
                try:
                    p.push(from_, message, priority)
                except gen.ProcessTerminatedError:
                    self._gone(to, message, _DEAD_TERMINATED)
                return
            self._gone(to, message, _DEAD_PID, from_, priority)
            return
        if t is Alias:
            r = self._aliases.get(to.id)  # _alias_record, inlined
            if r is None or to.creation != self._creation or to.node != self._name:
                self._gone(to, message, _DEAD_ALIAS, from_, priority)
                return
            try:
                if isinstance(r, MetaRecord):
                    r.push(from_, message)
                else:
                    r.push(from_, message, priority)
            except gen.ProcessTerminatedError:
                self._gone(to, message, _DEAD_TERMINATED)
            return
        if t is str or t is Atom:
            p = self._names.get(to)
            if p is None:
                self._unknown(ProcessID(to, self._name))
            p.push(from_, message, priority)
            return
        if t is ProcessID:
            if to.node and to.node != self._name:
                self._remote(from_, to, message, priority)
                return
            p = self._names.get(to.name)
            if p is None:
                self._unknown(to)
            p.push(from_, message, priority)
            return
        raise gen.UnsupportedError(f"can not send to {to!r}: expected a PID, ProcessID, Alias or name")

    def _gone(self, to: PID | Alias, message: Any, cause: str, from_: Any = None, priority: int = 0) -> None:
        """``to`` is not a live local process: send it over the network if it is remote,
        else drop ``message`` as a dead letter (Erlang's rule).

        Raises instead where the sender must know: a call request (its caller waits),
        a node that has stopped.
        """
        if to.node != self._name and self._state is not _NodeState.STOPPED:
            self._remote(from_, to, message, priority)
            return
        if type(message) is mailbox.Request or self._state is _NodeState.STOPPED:
            if cause is _DEAD_TERMINATED:
                raise gen.ProcessTerminatedError(f"process {to} has terminated")
            self._unknown(to)
        self._dead_letters[cause] += 1
        self._log.debug("dead letter: %s to %s dropped (%s)", type(message).__name__, to, cause)

    def _remote(self, from_: Any, to: Any, message: Any, priority: int) -> None:
        """The one seam to the network: ``to`` is on another node."""
        net = self._network
        if net is None:
            raise gen.NoConnectionError(f"no connection to node {to.node}: this node has no network")
        if type(message) is mailbox.Request:
            net.call(message.from_, to, message.ref, message.request)
        elif not net.send(from_, to, message, priority):
            self._dead_letters[_DEAD_INCARNATION] += 1
            self._log.debug("dead letter: %s to %s dropped (previous incarnation)", type(message).__name__, to)

    def route_call(self, from_: PID, to: Any, ref: Ref, request: Any) -> None:
        """Queue a call request from a remote caller (its answer goes back over the network).

        Raises as :meth:`route` does for a call (``ProcessUnknownError`` for a target that is gone).
        """
        self.route(None, to, mailbox.Request(from_, ref, request), _NORMAL)

    def call_pending(self, ref: Ref) -> bool:
        """Whether a call made with ``ref`` still waits for its answer."""
        return ref in self._calls

    def dead_letters(self) -> dict[str, int]:
        """Messages dropped because their PID or alias was gone, per cause (also in ``stats()``)."""
        return dict(self._dead_letters)

    def _unknown(self, to: Any) -> NoReturn:
        if self._state is _NodeState.STOPPED:
            raise gen.NodeTerminatedError(f"node {self._name.text} has stopped")
        node = getattr(to, "node", self._name)
        if node and node != self._name:
            if self._network is None:
                raise gen.NoConnectionError(f"no connection to node {node}: this node has no network")
            raise gen.NotAllowedError(f"{to} is on node {node}: this operation works on local processes only")
        raise gen.ProcessUnknownError(f"unknown process {to}")

    def send(self, to: gen.SendTarget, message: Any) -> None:
        """Send from the node's core PID; a PID or alias that is gone drops it (a dead letter).

        Raises ``ProcessUnknownError`` for an unregistered name, ``MailboxFullError``,
        ``NoConnectionError`` for a target on a node not connected, ``NodeTerminatedError``
        after stop; over the network also ``net.EncodeError`` for a value the peer cannot
        decode and ``MessageTooLargeError`` over the peer's size limit.
        """
        self.route(self._pid, to, message, _NORMAL)

    def send_pid(self, to: PID, message: Any) -> None:
        """Send to a PID from the node's core PID; errors as :meth:`send`."""
        self.route(self._pid, to, message, _NORMAL)

    def send_alias(self, to: Alias, message: Any) -> None:
        """Send to an alias from the node's core PID; errors as :meth:`send`."""
        self.route(self._pid, to, message, _NORMAL)

    def send_with_priority(self, to: gen.SendTarget, message: Any, priority: MessagePriority) -> None:
        """Send with ``priority`` (NORMAL, HIGH or MAX queue); errors as :meth:`send`."""
        self.route(self._pid, to, message, MessagePriority(priority))

    def send_after(self, from_: PID, to: gen.SendTarget, message: Any, after: float) -> Callable[[], bool]:
        """Send after ``after`` seconds; returns a cancel function (True if it was still pending)."""
        if isinstance(to, str) and type(to) is not Atom:
            to = Atom(to)

        def fire() -> None:
            self._timers.discard(handle)
            try:
                self.route(from_, to, message, _NORMAL)
            except gen.Error:
                pass  # delivery errors are ignored, as in Ergo

        handle = self.loop.call_later(max(0.0, after), fire)
        self._timers.add(handle)

        def cancel() -> bool:
            if handle in self._timers:
                self._timers.discard(handle)
                handle.cancel()
                return True
            return False

        return cancel

    def send_exit(self, to: PID, reason: BaseException) -> None:
        """Send an exit signal from the node's core PID (``Process.SendExit``)."""
        self.send_exit_from(self._pid, to, reason)

    def send_exit_from(self, from_: PID, to: PID, reason: BaseException) -> None:
        if reason is None:
            raise gen.IncorrectError("exit reason must not be None")
        if type(to) is not PID:
            raise gen.UnsupportedError(f"send_exit takes a PID, got {to!r}")
        p = self.lookup_pid(to)
        if p is None:
            if to.node != self._name and self._network is not None:
                self._network.exit(from_, to, reason)
                return
            self._unknown(to)
        p.push_urgent(mailbox.Exit(from_, from_, reason, gen.MessageExitPID(from_, reason)))

    def send_exit_meta(self, alias: Alias, reason: BaseException) -> None:
        """Terminate the meta-process ``alias`` with ``reason`` (via its system queue)."""
        if reason is None:
            raise gen.IncorrectError("exit reason must not be None")
        r = self._alias_record(alias)
        if r is None:
            raise gen.AliasUnknownError(f"unknown alias {alias}")
        if type(r) is not MetaRecord:
            raise gen.MetaUnknownError(f"alias {alias} does not belong to a meta-process")
        r.push_system(mailbox.Exit(self._pid, self._pid, reason, gen.MessageExitAlias(alias, reason)))

    def kill(self, pid: PID) -> None:
        """Terminate ``pid`` with ``TERMINATE_REASON_KILL``, untrappable."""
        p = self.lookup_pid(pid)
        if p is None:
            self._unknown(pid)
        p.kill()

    # ---- calls --------------------------------------------------------------------------------

    async def call(self, to: gen.CallTarget, request: Any, timeout: float | None = None) -> Any:
        """Call ``to`` from the node's core PID; see :meth:`make_call`."""
        return await self.make_call(self._pid, to, request, timeout)

    async def make_call(self, from_: PID, to: Any, request: Any, timeout: float | None) -> Any:
        """Send a request and wait for the reply.

        Raises ``gen.TimeoutError`` after ``timeout`` seconds (default 5), the
        routing errors if the request can not be queued, or the error the callee
        answered with ``send_response_error``.
        """
        if timeout is None or timeout <= 0:
            timeout = gen.DEFAULT_REQUEST_TIMEOUT
        ref = self.make_ref()
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._calls[ref] = fut
        try:
            try:
                self.route(None, to, mailbox.Request(from_, ref, request), _NORMAL)
            except gen.NoConnectionError:
                node = getattr(to, "node", None)
                if self._network is None or not node or node == self._name:
                    raise
                await self._network.get_node(node)  # a call waits anyway: connect on demand
                self.route(None, to, mailbox.Request(from_, ref, request), _NORMAL)
            try:
                async with asyncio.timeout(timeout):
                    return await fut
            except TimeoutError:
                raise gen.TimeoutError(f"call to {to} timed out after {timeout} s") from None
        finally:
            del self._calls[ref]

    def deliver_response(self, to: PID, ref: Ref, value: Any, error: BaseException | None) -> None:
        """Complete the call ``ref``; a reply nobody waits for any more is dropped."""
        fut = self._calls.get(ref)
        if fut is None and to is not None and to.node != self._name and self._network is not None:
            self._network.response(to, ref, value, error)
            return
        if fut is None or fut.done():
            self._log.trace("response %s to %s ignored: no caller is waiting", ref, to)
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    async def inspect(self, pid: PID, *items: str, from_: PID | None = None) -> dict[str, str]:
        """What the process's ``handle_inspect`` returns (5 s timeout)."""
        p = self.lookup_pid(pid)
        if p is None:
            self._unknown(pid)
        return await self._inspect(lambda ref: p.push_urgent(mailbox.Inspect(from_ or self._pid, ref, items)), pid)

    async def inspect_meta(self, alias: Alias, *items: str, from_: PID | None = None) -> dict[str, str]:
        """What the meta-process's ``handle_inspect`` returns (5 s timeout)."""
        m = self._alias_record(alias)
        if type(m) is not MetaRecord:
            raise gen.MetaUnknownError(f"unknown meta-process {alias}")
        return await self._inspect(lambda ref: m.push_system(mailbox.Inspect(from_ or self._pid, ref, items)), alias)

    async def _inspect(self, push: Callable[[Ref], None], target: object) -> dict[str, str]:
        ref = self.make_ref()
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._calls[ref] = fut
        try:
            push(ref)
            try:
                async with asyncio.timeout(_INSPECT_TIMEOUT):
                    result = await fut
            except TimeoutError:
                raise gen.TimeoutError(f"inspect of {target} timed out") from None
        finally:
            del self._calls[ref]
        return dict(result or {})

    # ---- spawning ------------------------------------------------------------------------------

    async def spawn(self, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any) -> PID:
        """Spawn a process with the node as parent; ``init(*args)`` runs before this returns.

        Raises what ``init`` raised (the process then never existed),
        ``NodeTerminatedError`` if the node is stopping, ``UnsupportedError`` if the
        factory does not make a ``ProcessBehavior``.
        """
        return await self.spawn_process(factory, options, args)

    async def spawn_register(
        self, name: str, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any
    ) -> PID:
        """Spawn and register under ``name`` (``TakenError`` if it is taken)."""
        return await self.spawn_process(factory, options, args, name=name)

    async def spawn_process(
        self,
        factory: gen.Factory,
        options: ProcessOptions | None,
        args: Iterable[Any],
        parent: ProcessRecord | None = None,
        name: str | None = None,
    ) -> PID:
        if self._state is not _NodeState.RUNNING:
            raise gen.NodeTerminatedError(f"node {self._name.text} is stopping; can not spawn")
        if options is None:
            options = ProcessOptions()
        behavior = factory()
        if not isinstance(behavior, gen.ProcessBehavior):
            raise gen.UnsupportedError(f"{factory!r} did not make a process behaviour (subclass act.Actor)")
        pid = PID(self._name, next(self._ids), self._creation)
        # a copy taken now (Go's): later set_env calls of the node or the parent do not reach it
        env = dict(parent._env) if parent is not None else dict(self._env)
        for k, v in options.env.items():
            if v is None:
                env.pop(k.upper(), None)  # as set_env(k, None): not inherited
            else:
                env[k.upper()] = v
        p = ProcessRecord(
            self,
            pid,
            behavior,
            parent.pid if parent is not None else self._pid,
            parent.leader if parent is not None else self._pid,
            options,
            env,
        )
        if name is not None:
            self._register(name, p)
        self._procs[pid.id] = p
        self._records.add(p)
        behavior._ergo_bind(p)
        try:
            r = behavior._ergo_init(tuple(args))
            if r is not None:
                await r
            if p.state is not ProcessState.INIT:
                raise gen.ProcessTerminatedError(f"process {pid} was killed during init")
        except BaseException as e:
            self._abort_spawn(p, e)
            raise
        if parent is not None:
            if options.link_parent:
                self.targets.add(p, "link", parent.pid)
            if options.link_child:
                self.targets.add(parent, "link", pid)
        p.start_running()
        return pid

    def _abort_spawn(self, p: ProcessRecord, e: BaseException) -> None:
        p.state = ProcessState.TERMINATED
        self._procs.pop(p.pid.id, None)
        if p.name is not None:
            self._names.pop(p.name, None)
            p.name = None
        for a in list(p.alias_set):
            self._aliases.pop(a.id, None)
        p.alias_set.clear()
        self.events.producer_terminated(p, e)
        for m in list(p.metas.values()):
            m.terminate(e)
        self.targets.fire(p.pid, e)
        self.targets.forget(p)
        p.main.clear()
        p.urgent.clear()
        p.system.clear()
        self.process_done(p)

    def spawn_meta(
        self,
        parent: ProcessRecord,
        behavior: gen.MetaBehavior,
        options: MetaOptions | None = None,
        check_parent: bool = True,
    ) -> Alias:
        """Start a meta-process owned by ``parent``; ``init`` runs now, ``start`` as a task."""
        if self._state is _NodeState.STOPPED:
            raise gen.NodeTerminatedError(f"node {self._name.text} has stopped")
        if not isinstance(behavior, gen.MetaBehavior):
            raise gen.UnsupportedError(f"{behavior!r} is not a gen.MetaBehavior")
        if check_parent and not parent.state & _ALIVE:
            raise gen.NotAllowedError(f"process {parent.pid} is not alive; can not spawn a meta-process")
        if parent.state & ProcessState.TERMINATED:
            raise gen.ProcessTerminatedError(f"process {parent.pid} has terminated")
        alias = self._make_alias()
        m = MetaRecord(self, alias, parent, behavior, options or MetaOptions())
        r: Any = behavior.init(m)  # type: ignore[func-returns-value]  # an async def init by mistake
        if asyncio.iscoroutine(r):
            r.close()
            raise gen.UnsupportedError(f"{type(behavior).__name__}.init must be a plain def, not async def")
        parent.metas[alias] = m
        self._aliases[alias.id] = m
        self._metas.add(m)  # until it has fully terminated (MetaRecord._maybe_done)
        if self._state is _NodeState.STOPPING:
            m.begin()
            m.terminate(gen.TERMINATE_REASON_SHUTDOWN)
            return alias
        m.begin()
        return alias

    # ---- names and aliases -------------------------------------------------------------------

    def _register(self, name: str, p: ProcessRecord) -> None:
        atom = Atom(name)
        if not atom:
            raise gen.IncorrectError("a process name must not be empty")
        if atom in self._names:
            raise gen.TakenError(f"name {atom} is taken by process {self._names[atom].pid}")
        if p.name is not None:
            raise gen.TakenError(f"process {p.pid} already has the name {p.name}")
        self._names[atom] = p
        p.name = atom
        p.log.set_name(atom.text)

    def register_name(self, name: str, pid: PID) -> None:
        """Register ``name`` for ``pid``; ``TakenError`` if either already has one."""
        p = self.lookup_pid(pid)
        if p is None:
            self._unknown(pid)
        self._register(name, p)

    def unregister_name(self, name: str) -> None:
        """Release ``name``; its links and monitors get ``UnregisteredError``."""
        p = self._names.pop(name, None)
        if p is None:
            raise gen.NameUnknownError(f"unknown name {Atom(name)}")
        p.name = None
        p.log.set_name("")
        self.targets.fire(ProcessID(name, self._name), gen.UnregisteredError(f"name {Atom(name)} was unregistered"))

    def create_alias(self, p: ProcessRecord) -> Alias:
        alias = self._make_alias()
        p.alias_set.add(alias)
        self._aliases[alias.id] = p
        return alias

    def delete_alias(self, p: ProcessRecord, alias: Alias) -> None:
        p.alias_set.discard(alias)
        self._aliases.pop(alias.id, None)
        self.targets.fire(alias, gen.UnregisteredError(f"alias {alias} was deleted"))

    # ---- termination ---------------------------------------------------------------------------

    def unregister_process(self, p: ProcessRecord, reason: BaseException) -> None:
        """A process terminated: free its PID, name, aliases, events; stop its metas; tell watchers."""
        self._procs.pop(p.pid.id, None)
        self.targets.fire(p.pid, reason)
        if p.name is not None:
            self._names.pop(p.name, None)
            self.targets.fire(ProcessID(p.name, self._name), reason)
        for a in p.alias_set:
            self._aliases.pop(a.id, None)
            self.targets.fire(a, reason)
        p.alias_set.clear()
        self.events.producer_terminated(p, reason)
        for m in list(p.metas.values()):
            m.terminate(reason)
        self.targets.forget(p)
        if self._apps.members:
            self._apps.member_terminated(p.pid, reason)

    def process_done(self, p: ProcessRecord) -> None:
        self._records.discard(p)
        if not p.done.done():
            p.done.set_result(None)

    def unregister_meta(self, m: MetaRecord, reason: BaseException) -> None:
        self._aliases.pop(m.id.id, None)
        m.parent_record.metas.pop(m.id, None)
        self.targets.fire(m.id, reason)

    def own_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the node owns and awaits (or cancels) on stop; returns the task."""
        task = self.loop.create_task(coro, name=name)
        self._owned.add(task)
        task.add_done_callback(self._owned.discard)
        return task

    # ---- applications ----------------------------------------------------------------------------

    def application_load(self, app: gen.ApplicationBehavior, *args: Any) -> Atom:
        """Load ``app``: call its ``load(node, *args)``; returns the application's name.

        Raises ``ApplicationError`` for a spec with no name or an empty group,
        ``TakenError`` if the name is loaded already, or what ``load`` raised.
        """
        return self._apps.load(app, *args)

    async def application_start(self, name: str, mode: gen.ApplicationMode | None = None) -> None:
        """Start the loaded application ``name``: its dependencies first, then its members in order.

        ``mode`` overrides the spec's. Raises ``ApplicationError`` (unknown, already
        running, missing dependency), or what a member's ``init`` raised (the members
        already started are stopped first).
        """
        await self._apps.start(name, mode)

    async def application_stop(self, name: str, timeout: float = 5.0) -> None:
        """Stop ``name``: a shutdown exit to every member; returns once all have ended.

        Raises ``ApplicationError`` if it is not loaded, ``gen.TimeoutError`` if a
        member is still alive after ``timeout`` seconds.
        """
        await self._apps.stop(name, timeout)

    def application_unload(self, name: str) -> None:
        """Forget a stopped application; ``ApplicationError`` if unknown or still running."""
        self._apps.unload(name)

    def applications(self) -> list[Atom]:
        """Names of every loaded application, running or not."""
        return self._apps.names()

    def applications_running(self) -> list[Atom]:
        """Names of the running applications."""
        return self._apps.names(gen.ApplicationState.RUNNING)

    def application_info(self, name: str) -> gen.ApplicationInfo:
        """Spec, mode, state and members of ``name``; ``ApplicationError`` if unknown."""
        return self._apps.info(name)

    # ---- stopping ----------------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until the node has stopped; ``gen.TimeoutError`` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._stopped)
        except TimeoutError:
            raise gen.TimeoutError(f"node {self._name.text} did not stop within {timeout} s") from None

    async def stop(self) -> None:
        """Stop gracefully; returns when everything has terminated.

        1. every meta-process is terminated with ``TERMINATE_REASON_SHUTDOWN``
           (WebSocket connections close with 1001 and send their ``MessageDisconnect``);
        2. processes get to handle what is in their mailboxes;
        3. every process gets an exit signal with ``TERMINATE_REASON_SHUTDOWN`` from
           its parent (untrappable), except that a supervisor's children are left to
           the supervisor, which stops them in its own order first (top down, as Go's);
           those still alive after ``stop_timeout`` are killed. It returns once every
           process has finished, an ``async def terminate`` included.

        Called from inside one of this node's processes or meta-processes, it starts the
        stop and returns at once: the caller is among what the stop ends, so waiting for
        it would hold the stop for ``stop_timeout`` and then kill the caller.
        """
        if self._stop_task is None:
            self._stop_task = self.loop.create_task(self._stop(), name=f"ergopy stop {self._name.text}")
        if self._inside():
            return
        await asyncio.shield(self._stop_task)

    def _inside(self) -> bool:
        """True if the running task belongs to a process or meta-process of this node."""
        current = asyncio.current_task()
        if current is None:
            return False
        if any(p.task is current for p in self._records):
            return True
        return any(current is m.start_task or current is m.handler_task for m in self._metas)

    async def _stop(self) -> None:
        self._state = _NodeState.STOPPING
        timeout = self.options.stop_timeout
        shutdown = gen.TERMINATE_REASON_SHUTDOWN
        for m in list(self._metas):
            m.terminate(shutdown)
        await self._wait_all([m.done for m in self._metas], timeout, "meta-processes")
        await self._settle(timeout)
        self._apps.node_stopping()
        await self._exit_processes(timeout)
        for p in list(self._procs.values()):
            p.kill()
        for m in list(self._metas):
            m.terminate(gen.TERMINATE_REASON_KILL)
        everything = [p.done for p in self._records] + [m.done for m in self._metas]
        await self._wait_all(everything, timeout, "killed processes")
        if self._network is not None:
            await self._network.stop()  # after the processes: their terminate frames went out
        for t in list(self._owned):
            t.cancel()
        if self._owned:
            await asyncio.gather(*self._owned, return_exceptions=True)
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        for fut in self._calls.values():
            if not fut.done():
                fut.set_exception(gen.NodeTerminatedError(f"node {self._name.text} stopped"))
        self._state = _NodeState.STOPPED
        self._stopped.set_result(None)

    async def _exit_processes(self, timeout: float) -> None:
        """Send every process a shutdown exit from its parent; wait until all have terminated.

        A process whose parent stops its children itself (a supervisor) is left to that
        parent, so a supervision tree stops top down and in its own order, as Go's does;
        one still alive once its parent has ended gets its exit then. Processes still
        alive after ``timeout`` are left to the kill phase.
        """
        deadline = self.loop.time() + timeout
        waiting: dict[ProcessRecord, list[ProcessRecord]] = {}  # supervisor -> children left to it
        for p in list(self._procs.values()):
            if p.state & ProcessState.TERMINATED:
                continue
            parent = self._procs.get(p.parent_pid.id)
            if (
                parent is not None
                and parent.pid == p.parent_pid
                and parent.behavior._ergo_parent_exit
                and parent.trap_exit()
                and not parent.state & ProcessState.TERMINATED
            ):
                waiting.setdefault(parent, []).append(p)
            else:
                self._exit_from_parent(p)
        while waiting:
            left = deadline - self.loop.time()
            if left <= 0:
                break
            await asyncio.wait([s.done for s in waiting], timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for sup in [s for s in waiting if s.done.done()]:
                for child in waiting.pop(sup):
                    if not child.state & ProcessState.TERMINATED:
                        self._exit_from_parent(child)  # outlived its supervisor
        await self._wait_all([p.done for p in self._records], max(0.0, deadline - self.loop.time()), "processes")

    def _exit_from_parent(self, p: ProcessRecord) -> None:
        shutdown = gen.TERMINATE_REASON_SHUTDOWN
        src = p.parent_pid
        p.push_urgent(mailbox.Exit(src, src, shutdown, gen.MessageExitPID(src, shutdown)))

    async def wait_tree(self, pids: Iterable[PID], timeout: float) -> bool:
        """Wait until the processes ``pids`` and every descendant of theirs (children spawned
        meanwhile included) have fully terminated, ``async def terminate`` included.

        Returns False if some are still running after ``timeout`` seconds.
        """
        known = set(pids)
        deadline = self.loop.time() + timeout
        while True:
            grew = True
            while grew:  # a child's PID joins once its parent's is known: whole subtrees
                grew = False
                for r in self._records:
                    if r.pid not in known and r.parent_pid in known:
                        known.add(r.pid)
                        grew = True
            pending = [r.done for r in self._records if r.pid in known and not r.done.done()]
            if not pending:
                return True
            left = deadline - self.loop.time()
            if left <= 0:
                return False
            await asyncio.wait(pending, timeout=left)  # then look again: children spawned meanwhile

    async def _wait_all(self, futures: list[asyncio.Future[None]], timeout: float, what: str) -> None:
        pending = [f for f in futures if not f.done()]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=timeout)
        if still:
            self._log.warning("%d %s did not terminate within %s s", len(still), what, timeout)

    async def _settle(self, timeout: float) -> None:
        """Let processes handle what is queued (e.g. the disconnects of closed connections).

        Each process is marked the first time it is seen busy: the settle waits until the
        messages queued at that moment are handled, not for what arrives later, so a
        process that keeps sending to itself does not hold up the stop for ``timeout``.
        """
        deadline = self.loop.time() + timeout
        marks: dict[ProcessRecord, list[tuple[Any, Any]]] = {}
        spins = 0
        while self._unsettled(marks):
            if self.loop.time() > deadline:
                return
            spins += 1
            # a bounded poll: first a few loop turns, then short sleeps for async handlers
            await asyncio.sleep(0 if spins < 100 else 0.005)

    def _unsettled(self, marks: dict[ProcessRecord, list[tuple[Any, Any]]]) -> bool:
        """True while some process still holds a message it had when first seen busy."""
        for p in list(self._procs.values()):
            if p.state & ProcessState.TERMINATED:
                continue
            mark = marks.get(p)
            if mark is None:
                if not p.scheduled or not (p.urgent or p.system or p.main):
                    continue  # idle, or finishing an async callback with nothing queued
                # the last queued item of each queue: FIFO, so once it is gone, so is all before it
                mark = marks[p] = [(q, q[-1]) for q in (p.urgent, p.system, p.main) if q]
            if any(any(x is last for x in q) for q, last in mark):
                return True
        return False


async def start_node(name: str, options: NodeOptions | None = None) -> Node:
    """Start a node named ``name@host`` on the running event loop; with
    ``NodeOptions.network`` its acceptors listen and it registers with the registrar.

    Raises ``gen.IncorrectError`` for a malformed name; with a network, ``OSError`` if
    an acceptor cannot bind, ``gen.TakenError`` if the registrar knows the name
    already, ``net.registrar.RegistrarError`` if no registrar can be reached.
    """
    loop = asyncio.get_running_loop()
    node = Node(name, options, loop)
    if node.options.network is not None:
        from ..net.network import Network  # the network seam: imported only when the network is on

        network = Network(node, node.options.network)
        await network.start()
        node._network = network
        node._dead_letters[_DEAD_INCARNATION] = 0
    if node.options.handle_signals or signals_by_default.get():
        _install_signal_handlers(node)
    node.log.debug("node %s started", node.name)
    return node


def _install_signal_handlers(node: Node) -> None:
    import signal

    def on_signal() -> None:
        node.log.info("signal received, stopping node %s", node.name)
        if node._stop_task is None:
            node._stop_task = node.loop.create_task(node._stop(), name=f"ergopy stop {node.name.text}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            node.loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):
            pass
