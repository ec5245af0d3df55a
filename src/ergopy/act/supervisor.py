"""``act.Supervisor``: a process that starts, watches and restarts its children.

Subclass it and return an :class:`SupervisorSpec` from ``init``::

    class Sup(act.Supervisor):
        def init(self, *args):
            return act.SupervisorSpec(
                type=act.SupervisorType.ONE_FOR_ONE,
                children=[act.SupervisorChildSpec(name="worker", factory=Worker, args=[1])],
                restart=act.SupervisorRestart(strategy=act.SupervisorStrategy.TRANSIENT))

Children are spawned in spec order (each registered under its spec name, except
for ``SIMPLE_ONE_FOR_ONE``) and linked both ways, so a supervisor that dies takes
its children with it. The supervisor traps exits; a child's exit reaches it
through the node's ``_ergo_system`` hook, before and apart from the user's
``handle_message``, which stays free for the user's own messages.

As in Ergo:

- ``TRANSIENT`` (default) restarts a child unless it ended normal/shutdown,
  ``TEMPORARY`` never restarts, ``PERMANENT`` always does.
- ``ONE_FOR_ONE`` restarts the child alone; ``ALL_FOR_ONE`` stops every other child
  (in reverse start order) and restarts them all; ``REST_FOR_ONE`` does that for
  the children started after it; ``SIMPLE_ONE_FOR_ONE`` starts nothing at init,
  ``start_child(name, *args)`` spawns unnamed instances.
- More than ``intensity`` restarts within ``period`` seconds (a sliding window)
  stops every child and ends the supervisor with ``SupervisorError("restarts
  exceeded")``.
- When no child is left running the supervisor ends with the last child's reason
  (not for ``SIMPLE_ONE_FOR_ONE``, ``PERMANENT`` or ``disable_auto_shutdown``);
  a ``significant`` child that ends without a restart ends the supervisor too.

Children are stopped with an exit signal from the supervisor (their parent, so
untrappable); ``keep_order`` stops them one by one, last started first, each after
the previous has ended. As in Go, the signal carries the reason that set it off:
siblings stopped for an ``ALL_FOR_ONE``/``REST_FOR_ONE`` restart get the failing
child's reason, children stopped for a shutdown get the shutdown's reason
(``disable_child`` stops with ``TERMINATE_REASON_SHUTDOWN``).

An exit from the supervisor's parent (``application_stop``, ``node.stop()``,
``send_exit`` from the parent) is handled like Go's supervisor does: it stops its
children first, waits for their exits, and only then ends with that reason.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import gen
from ..gen import PID, Atom, ProcessOptions
from ..gen.options import check_bool, check_enum, check_instance, check_int, check_seconds, check_str
from .actor import Actor

__all__ = [
    "Supervisor",
    "SupervisorChild",
    "SupervisorChildSpec",
    "SupervisorRestart",
    "SupervisorSpec",
    "SupervisorStrategy",
    "SupervisorType",
]

_DEFAULT_INTENSITY = 5  # Ergo's defaultRestartIntensity
_DEFAULT_PERIOD = 5  # seconds; Ergo's defaultRestartPeriod


class SupervisorType(enum.IntEnum):
    """How a child's restart affects its siblings (Ergo's values)."""

    ONE_FOR_ONE = 0
    ALL_FOR_ONE = 1
    REST_FOR_ONE = 2
    SIMPLE_ONE_FOR_ONE = 3


class SupervisorStrategy(enum.IntEnum):
    """When a terminated child is restarted (Ergo 3.1's values)."""

    TRANSIENT = 0  # unless it ended with TERMINATE_REASON_NORMAL or _SHUTDOWN
    TEMPORARY = 1  # never
    PERMANENT = 2  # always


@dataclass(slots=True)
class SupervisorRestart:
    """Restart strategy and limit: more than ``intensity`` restarts within ``period`` seconds is too many.

    ``intensity``/``period`` of 0 mean the default, 5 and 5. ``keep_order`` stops
    children one at a time in reverse start order (ignored for ``ONE_FOR_ONE``).
    """

    strategy: SupervisorStrategy = SupervisorStrategy.TRANSIENT
    intensity: int = _DEFAULT_INTENSITY
    period: float = _DEFAULT_PERIOD
    keep_order: bool = False

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming the field: a strategy that is not a
        ``SupervisorStrategy``, an intensity not an int in 0..65535 (Go's uint16), a period
        not a finite number of seconds >= 0, a keep_order not a bool."""
        self.strategy = check_enum(self, "strategy", self.strategy, SupervisorStrategy)
        self.intensity = check_int(self, "intensity", self.intensity, 0, 0xFFFF)
        self.period = check_seconds(self, "period", self.period, optional=False) or 0
        self.keep_order = check_bool(self, "keep_order", self.keep_order)


@dataclass(slots=True)
class SupervisorChildSpec:
    """One child: spawned as ``factory`` with ``args``, registered under ``name`` (except SOFO).

    A ``significant`` child that ends without being restarted ends the supervisor
    (ignored for ``SIMPLE_ONE_FOR_ONE`` and ``PERMANENT``).
    """

    name: str
    factory: gen.Factory
    args: list[Any] = field(default_factory=list)
    options: ProcessOptions = field(default_factory=ProcessOptions)
    significant: bool = False

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming the field: a name that is not a non-empty
        str, a factory that is not callable, args that are not a list or tuple (a str is not),
        options that are not ``gen.ProcessOptions``, a significant that is not a bool."""
        if not check_str(self, "name", self.name):
            raise ValueError(f"SupervisorChildSpec.name must not be empty, got {self.name!r}")
        if not callable(self.factory):
            raise TypeError(f"SupervisorChildSpec.factory must be a class or callable, got {self.factory!r}")
        if not isinstance(self.args, list | tuple):
            raise TypeError(f"SupervisorChildSpec.args must be a list, got {self.args!r}")
        self.args = list(self.args)
        self.options = check_instance(self, "options", self.options, ProcessOptions)
        self.significant = check_bool(self, "significant", self.significant)


@dataclass(slots=True)
class SupervisorSpec:
    """What ``Supervisor.init`` returns.

    ``enable_handle_child`` turns on ``handle_child_start``/``handle_child_terminate``;
    ``disable_auto_shutdown`` keeps the supervisor alive with no child running.
    """

    children: list[SupervisorChildSpec] = field(default_factory=list)
    type: SupervisorType = SupervisorType.ONE_FOR_ONE
    restart: SupervisorRestart = field(default_factory=SupervisorRestart)
    enable_handle_child: bool = False
    disable_auto_shutdown: bool = False

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming the field: children that are not a list
        of ``SupervisorChildSpec``, a type that is not a ``SupervisorType``, a restart that is
        not a ``SupervisorRestart``, flags that are not bools. (An empty or duplicate child
        list is refused by the supervisor's ``init``: ``SupervisorError``.)"""
        if not isinstance(self.children, list | tuple):
            raise TypeError(f"SupervisorSpec.children must be a list of SupervisorChildSpec, got {self.children!r}")
        for c in self.children:
            if not isinstance(c, SupervisorChildSpec):
                raise TypeError(f"SupervisorSpec.children must hold only SupervisorChildSpec, got {c!r}")
        self.children = list(self.children)
        self.type = check_enum(self, "type", self.type, SupervisorType)
        self.restart = check_instance(self, "restart", self.restart, SupervisorRestart)
        self.enable_handle_child = check_bool(self, "enable_handle_child", self.enable_handle_child)
        self.disable_auto_shutdown = check_bool(self, "disable_auto_shutdown", self.disable_auto_shutdown)


class SupervisorChild(NamedTuple):
    """A running child, as ``children()`` lists it: its spec name and PID."""

    spec: Atom
    pid: PID


@dataclass(frozen=True, slots=True)
class _ChildStarted:
    name: Atom
    pid: PID


@dataclass(frozen=True, slots=True)
class _ChildTerminated:
    name: Atom
    pid: PID
    reason: BaseException


@dataclass(slots=True)
class _Child:
    """The supervisor's record of one child spec."""

    spec: SupervisorChildSpec
    name: Atom
    index: int
    args: list[Any]
    pid: PID | None = None  # the running instance (not used for SOFO)
    disabled: bool = False


class _Mode(enum.Enum):
    NORMAL = 0
    RESTARTING = 1  # stopping siblings before restarting them (ALL/REST_FOR_ONE)
    SHUTDOWN = 2  # stopping every child before the supervisor ends


def _check_child(spec: SupervisorChildSpec) -> Atom:
    if not isinstance(spec, SupervisorChildSpec):
        raise gen.SupervisorError(f"a child spec must be an act.SupervisorChildSpec, got {spec!r}")
    if not spec.name:
        raise gen.SupervisorError("a supervisor child spec needs a name")
    if spec.factory is None:
        raise gen.SupervisorError(f"supervisor child spec {spec.name!r} has no factory")
    return Atom(spec.name)


class Supervisor(Actor):
    """Base class of supervisors: override ``init`` to return a :class:`SupervisorSpec`.

    ``handle_message``, ``handle_call`` and the other ``Actor`` callbacks remain the
    user's; children's exits never reach them.
    """

    # An exit from the parent (application stop, node stop) reaches _ergo_system, as in
    # Go where the supervisor reads its own urgent queue: it stops its children (in
    # reverse start order with keep_order), waits for their exits, then ends with it.
    _ergo_parent_exit = True

    # ---- callbacks (override) ------------------------------------------------------------------

    def init(self, *args: Any) -> Any:
        """Return the :class:`SupervisorSpec`; raise to refuse the spawn."""
        raise gen.SupervisorError(f"{type(self).__name__}.init must return an act.SupervisorSpec")

    def handle_child_start(self, name: Atom, pid: PID) -> Any:
        """A child started (with ``enable_handle_child``), after the strategy finished its work."""
        self.log.warning("Supervisor.handle_child_start: unhandled child start %s %s", name, pid)
        return None

    def handle_child_terminate(self, name: Atom, pid: PID, reason: BaseException) -> Any:
        """A child terminated (with ``enable_handle_child``), after the strategy finished its work."""
        self.log.warning("Supervisor.handle_child_terminate: unhandled child termination %s %s", name, pid)
        return None

    def handle_inspect(self, from_: PID, *items: str) -> Any:
        """The supervisor's type, strategy, limits and child counts."""
        return {
            "type": self._type.name,
            "strategy": self._restart.strategy.name,
            "intensity": str(self._restart.intensity),
            "period": str(self._restart.period),
            "keep_order": str(self._restart.keep_order),
            "auto_shutdown": str(self._auto_shutdown),
            "restarts_count": str(len(self._restarts)),
            "children_total": str(len(self._children)),
            "children_running": str(len(self._running)),
            "children_disabled": str(sum(c.disabled for c in self._children)),
        }

    # ---- the API, for the supervisor's own callbacks -------------------------------------------

    def children(self) -> list[SupervisorChild]:
        """The running children as ``(spec name, pid)``, in spec order then start order."""
        running = sorted(self._running.items(), key=lambda kv: (kv[1][0].index, kv[0].id))
        return [SupervisorChild(c.name, pid) for pid, (c, _) in running]

    async def start_child(self, name: str, *args: Any) -> PID:
        """Start the child ``name``; ``args``, if given, replace its spec's args.

        For ``SIMPLE_ONE_FOR_ONE`` this spawns one more unnamed instance. Otherwise the
        child must not be running (it ended and was not restarted). Raises
        ``SupervisorError`` (unknown, disabled or running child, or a restart in
        progress), ``NotAllowedError`` outside the running state, or what the child's
        ``init`` raised.
        """
        child = self._child_for_api(name, "start_child")
        if child.disabled:
            raise gen.SupervisorError(f"supervisor child {child.name} is disabled")
        call_args = list(args) if args else list(child.args)
        if self._type is SupervisorType.SIMPLE_ONE_FOR_ONE:
            return await self._spawn_child(child, call_args)
        if child.pid is not None:
            raise gen.SupervisorError(f"supervisor child {child.name} is already running as {child.pid}")
        return await self._spawn_child(child, call_args)

    async def add_child(self, spec: SupervisorChildSpec) -> PID | None:
        """Add a child spec and start it (for ``SIMPLE_ONE_FOR_ONE``: only add it; returns ``None``).

        Raises ``SupervisorError`` for an invalid or duplicate spec, or a restart in
        progress; ``NotAllowedError`` outside the running state; what ``init`` raised.
        """
        self._require_api("add_child")
        name = _check_child(spec)
        if any(c.name == name for c in self._children):
            raise gen.SupervisorError(f"supervisor child {name} is a duplicate")
        child = _Child(spec, name, len(self._children), list(spec.args))
        self._children.append(child)
        if self._type is SupervisorType.SIMPLE_ONE_FOR_ONE:
            return None
        return await self._spawn_child(child, child.args)

    async def enable_child(self, name: str) -> PID | None:
        """Enable a disabled child and start it (SOFO: only enable); returns its PID or ``None``.

        Raises ``SupervisorError`` for an unknown child or a restart in progress, or
        what the child's ``init`` raised.
        """
        child = self._child_for_api(name, "enable_child")
        if not child.disabled:
            return child.pid
        child.disabled = False
        if self._type is SupervisorType.SIMPLE_ONE_FOR_ONE or child.pid is not None:
            return child.pid
        return await self._spawn_child(child, child.args)

    def disable_child(self, name: str) -> None:
        """Disable the child ``name`` and stop it (SOFO: every instance) with ``TERMINATE_REASON_SHUTDOWN``.

        A disabled child is not restarted and ``start_child`` refuses it until
        ``enable_child``. Raises ``SupervisorError`` for an unknown child or a restart
        in progress.
        """
        child = self._child_for_api(name, "disable_child")
        if child.disabled:
            return
        child.disabled = True
        for pid, (c, _) in list(self._running.items()):
            if c is child:
                self._send_exit_to_child(pid, gen.TERMINATE_REASON_SHUTDOWN)

    # ---- the node's hooks -----------------------------------------------------------------------

    async def _ergo_init(self, args: tuple[Any, ...]) -> None:
        spec = self.init(*args)
        if hasattr(spec, "__await__"):
            spec = await spec
        if not isinstance(spec, SupervisorSpec):
            raise gen.SupervisorError(f"{type(self).__name__}.init returned {spec!r}, not an act.SupervisorSpec")
        self._type = SupervisorType(spec.type)
        r = spec.restart
        self._restart = SupervisorRestart(
            SupervisorStrategy(r.strategy),
            r.intensity if r.intensity > 0 else _DEFAULT_INTENSITY,
            r.period if r.period > 0 else _DEFAULT_PERIOD,
            r.keep_order,
        )
        if not spec.children and self._type is not SupervisorType.SIMPLE_ONE_FOR_ONE:
            raise gen.SupervisorError("supervisor children list can not be empty")
        self._children: list[_Child] = []
        for i, c in enumerate(spec.children):
            name = _check_child(c)
            if any(x.name == name for x in self._children):
                raise gen.SupervisorError(f"supervisor child {name} is a duplicate")
            self._children.append(_Child(c, name, i, list(c.args)))
        self._handle_child = spec.enable_handle_child
        self._auto_shutdown = not spec.disable_auto_shutdown
        self._running: dict[PID, tuple[_Child, list[Any]]] = {}
        self._restarts: deque[float] = deque()
        self._mode = _Mode.NORMAL
        self._wait: set[PID] = set()  # children sent an exit, whose end we wait for
        self._stop_queue: list[tuple[PID, BaseException]] = []  # keep_order: children still to be sent an exit
        self._restart_from = 0
        self._shutdown_reason: BaseException = gen.TERMINATE_REASON_SHUTDOWN
        self.set_trap_exit(True)
        if self._type is not SupervisorType.SIMPLE_ONE_FOR_ONE:
            await self._start_from(0)

    async def _ergo_system(self, from_: PID, message: Any) -> Any:
        """Every urgent/system-queue message passes here: child exits drive the strategy."""
        t = type(message)
        if t is gen.MessageExitPID:
            return await self._on_exit(message.pid, message.reason)
        if t is gen.MessageExitProcessID:
            return self._begin_shutdown(gen.ExitSignal(message.process_id, message.reason))
        if t is gen.MessageExitAlias:
            return self._begin_shutdown(gen.ExitSignal(message.alias, message.reason))
        if t is gen.MessageExitEvent:
            return self._begin_shutdown(gen.ExitSignal(message.event, message.reason))
        if t is gen.MessageExitNode:
            return self._begin_shutdown(gen.ExitSignal(message.name, gen.NoConnectionError("no connection")))
        if t is _ChildStarted and from_ == self.pid:
            r = self.handle_child_start(message.name, message.pid)
        elif t is _ChildTerminated and from_ == self.pid:
            r = self.handle_child_terminate(message.name, message.pid, message.reason)
        else:
            r = self.handle_message(from_, message)
        if hasattr(r, "__await__"):
            r = await r
        return r

    # ---- the strategy ---------------------------------------------------------------------------

    async def _on_exit(self, pid: PID, reason: BaseException) -> BaseException | None:
        entry = self._running.pop(pid, None)
        if entry is None:
            # an exit from a linked process that is not a child: stop everything, end with its reason
            return self._begin_shutdown(reason)
        child, args = entry
        if child.pid == pid:
            child.pid = None
        if self._handle_child:
            self.send_with_priority(self.pid, _ChildTerminated(child.name, pid, reason), gen.MessagePriority.HIGH)
        if self._mode is _Mode.SHUTDOWN:
            return self._shutdown_reason if self._stopped_one(pid) else None
        if self._mode is _Mode.RESTARTING:
            if child.index < self._restart_from:
                # a child before the restart point died meanwhile: restart from it
                self._restart_from = child.index
                self._stop(self._running_from(child.index), reason)
            if not self._stopped_one(pid):
                return None
            self._mode = _Mode.NORMAL
            return await self._start_from(self._restart_from)
        if child.disabled:
            return self._maybe_auto_shutdown(reason)
        strategy = self._restart.strategy
        if strategy is SupervisorStrategy.TEMPORARY or (
            strategy is SupervisorStrategy.TRANSIENT and gen.is_normal(reason)
        ):
            if child.spec.significant and self._type is not SupervisorType.SIMPLE_ONE_FOR_ONE:
                self.log.info("supervisor: significant child %s %s ended (%s), shutting down", child.name, pid, reason)
                return self._begin_shutdown(reason)
            return self._maybe_auto_shutdown(reason)
        if self._exceeded():
            self.log.error("supervisor: restart intensity exceeded (child %s %s ended: %s)", child.name, pid, reason)
            return self._begin_shutdown(gen.SupervisorError(f"restarts exceeded (last: {child.name} ended: {reason})"))
        if not self.node.is_alive():
            return self._begin_shutdown(gen.TERMINATE_REASON_SHUTDOWN)  # the node is stopping: nothing to restart
        if self._type is SupervisorType.SIMPLE_ONE_FOR_ONE:
            return await self._restart_one(child, args)
        if self._type is SupervisorType.ONE_FOR_ONE:
            return await self._restart_one(child, child.args)
        self._restart_from = 0 if self._type is SupervisorType.ALL_FOR_ONE else child.index
        siblings = list(self._running_from(self._restart_from))
        if not siblings:
            return await self._start_from(self._restart_from)
        self._mode = _Mode.RESTARTING
        self._stop(siblings, reason)
        return None

    async def _restart_one(self, child: _Child, args: list[Any]) -> BaseException | None:
        try:
            await self._spawn_child(child, args)
        except Exception as e:
            self.log.error("supervisor: can not restart child %s: %s", child.name, e)
            return e
        return None

    async def _start_from(self, index: int) -> BaseException | None:
        """Start every enabled, stopped child from ``index`` on, in spec order.

        During init a failure propagates (the spawn fails); later it ends the supervisor.
        """
        for child in self._children[index:]:
            if child.disabled or child.pid is not None:
                continue
            if self.state is gen.ProcessState.INIT:
                await self._spawn_child(child, child.args)
                continue
            r = await self._restart_one(child, child.args)
            if r is not None:
                return r
        return None

    async def _spawn_child(self, child: _Child, args: list[Any]) -> PID:
        options = dataclasses.replace(child.spec.options, link_parent=True, link_child=True)
        if self._type is SupervisorType.SIMPLE_ONE_FOR_ONE:
            pid = await self.spawn(child.spec.factory, options, *args)
        else:
            pid = await self.spawn_register(child.name.text, child.spec.factory, options, *args)
            child.pid = pid
            child.args = args
        self._running[pid] = (child, args)
        if self._handle_child:
            self.send_with_priority(self.pid, _ChildStarted(child.name, pid), gen.MessagePriority.HIGH)
        return pid

    def _running_from(self, index: int) -> list[PID]:
        """Running children with spec index >= ``index`` not already being stopped, in reverse start order."""
        busy = self._wait.union(pid for pid, _ in self._stop_queue)
        pids = [pid for pid, (c, _) in self._running.items() if c.index >= index and pid not in busy]
        pids.sort(key=lambda p: (self._running[p][0].index, p.id), reverse=True)
        return pids

    def _stop(self, pids: list[PID], reason: BaseException) -> None:
        """Send ``pids`` (reverse start order) an exit with ``reason``: all now, or one by one with keep_order.

        As Go's supervisor, siblings stopped for a restart get the failing child's
        reason, children stopped for a shutdown get the shutdown's reason.
        """
        if not pids:
            return
        if self._restart.keep_order:
            self._stop_queue.extend((pid, reason) for pid in pids)
            if not self._wait:
                self._send_next()
            return
        for pid in pids:
            self._wait.add(pid)
            self._send_exit_to_child(pid, reason)

    def _send_next(self) -> None:
        pid, reason = self._stop_queue.pop(0)
        self._wait.add(pid)
        self._send_exit_to_child(pid, reason)

    def _send_exit_to_child(self, pid: PID, reason: BaseException) -> None:
        try:
            self.send_exit(pid, reason)
        except gen.Error:
            pass  # already gone: its exit is on its way to us through the link

    def _stopped_one(self, pid: PID) -> bool:
        """``pid`` has ended; True when every child being stopped has."""
        self._wait.discard(pid)
        while not self._wait and self._stop_queue:
            nxt, _ = self._stop_queue[0]
            if nxt not in self._running:
                self._stop_queue.pop(0)
                continue
            self._send_next()
        return not self._wait and not self._stop_queue

    def _begin_shutdown(self, reason: BaseException) -> BaseException | None:
        """Stop every child (with ``reason``), then end with ``reason`` (returned now if none is running)."""
        if self._mode is _Mode.SHUTDOWN:
            return None  # already stopping everything; the first reason stands
        self._mode = _Mode.SHUTDOWN
        self._shutdown_reason = reason
        self._stop(self._running_from(0), gen.unwrap_reason(reason))
        if not self._wait and not self._stop_queue:
            return reason
        return None

    def _maybe_auto_shutdown(self, reason: BaseException) -> BaseException | None:
        if (
            self._running
            or not self._auto_shutdown
            or self._type is SupervisorType.SIMPLE_ONE_FOR_ONE
            or self._restart.strategy is SupervisorStrategy.PERMANENT
        ):
            return None
        self.log.info("supervisor: no child left running, shutting down")
        return reason

    def _exceeded(self) -> bool:
        """Record a restart; True if there were more than ``intensity`` within ``period`` seconds."""
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > self._restart.period:
            self._restarts.popleft()
        return len(self._restarts) > self._restart.intensity

    # ---- helpers --------------------------------------------------------------------------------

    def _require_api(self, what: str) -> None:
        if not self.state & (gen.ProcessState.RUNNING | gen.ProcessState.WAIT_RESPONSE):
            raise gen.NotAllowedError(f"{what} is not allowed for supervisor {self.pid} in state {self.state.name}")
        if self._mode is not _Mode.NORMAL:
            raise gen.SupervisorError(f"supervisor {self.pid} is applying its restart strategy; try again later")

    def _child_for_api(self, name: str, what: str) -> _Child:
        self._require_api(what)
        for c in self._children:
            if c.name == name:
                return c
        raise gen.SupervisorError(f"supervisor {self.pid} has no child spec {Atom(name)}")
