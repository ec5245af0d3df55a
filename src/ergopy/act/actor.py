"""``act.Actor``: the behaviour users subclass for a process.

Every callback is optional and may be ``def`` or ``async def``::

    class Worker(act.Actor):
        def init(self, *args): ...
        def handle_message(self, from_, message): ...
        async def handle_call(self, from_, ref, request): return reply
        def handle_event(self, message: gen.MessageEvent): ...
        def handle_inspect(self, from_, *items): return {"key": "value"}
        def terminate(self, reason): ...

A callback that raises terminates the process with that exception as reason;
one that returns an exception instance (``gen.TERMINATE_REASON_NORMAL``,
``gen.TERMINATE_REASON_SHUTDOWN``, or any other) terminates it with that reason.
Raising or returning normal/shutdown is a normal stop (nothing logged at error).
``handle_call`` replies with what it returns; returning ``None`` sends no reply
(answer later with ``send_response``), returning a terminate reason
(``gen.TERMINATE_REASON_NORMAL``...) stops with no reply (Go's ``return nil,
gen.TerminateReasonNormal``, to forward a request and exit), and
``gen.ReplyAndStop(value)`` replies then terminates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import gen
from ..gen import PID, Alias, Atom, Event, EventOptions, MessagePriority, MetaOptions, ProcessOptions, Ref

__all__ = ["Actor"]

_SENDS = ("send", "send_pid", "send_alias")
_FAST_SENDS: dict[type, tuple[str, ...]] = {}


def _fast_sends(cls: type) -> tuple[str, ...]:
    """The send methods ``cls`` does not override (cached per class): those may be bound
    straight to the router; an override is always called."""
    try:
        return _FAST_SENDS[cls]
    except KeyError:
        fast = tuple(n for n in _SENDS if getattr(cls, n) is getattr(Actor, n))
        _FAST_SENDS[cls] = fast
        return fast


class Actor(gen.ProcessBehavior):
    """Base class of processes. Override the callbacks you need; use the methods inside."""

    # ---- callbacks (override) ------------------------------------------------------------------

    def init(self, *args: Any) -> Any:
        """Called once, before ``spawn`` returns, with the spawn arguments. Raise to refuse."""
        return None

    def handle_message(self, from_: PID, message: Any) -> Any:
        """A message sent to this process. The default logs a warning."""
        self._process.log.warning("Actor.handle_message: unhandled message from %s: %r", from_, message)
        return None

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """A synchronous request; return the reply. The default logs a warning and does not reply."""
        self._process.log.warning("Actor.handle_call: unhandled request from %s: %r", from_, request)
        return None

    def handle_event(self, message: gen.MessageEvent) -> Any:
        """An event from a linked or monitored ``gen.Event``. The default logs a warning."""
        self._process.log.warning("Actor.handle_event: unhandled event %s: %r", message.event, message.message)
        return None

    def handle_inspect(self, from_: PID, *items: str) -> Any:
        """Answer ``inspect``: a ``dict[str, str]``. The default is empty."""
        return {}

    def terminate(self, reason: BaseException) -> Any:
        """Called once when the process terminates, with the reason."""
        return None

    # ---- the node's hooks ------------------------------------------------------------------------

    def _ergo_bind(self, process: gen.Process) -> None:
        self._process = process
        # The send path is the hot path: bind it straight to the node's router, except
        # for the methods a subclass overrides (decided once per class).
        fast = _fast_sends(type(self))
        if fast:
            make_sender = getattr(process, "make_sender", None)
            if make_sender is not None:
                sender = make_sender()
                for name in fast:
                    setattr(self, name, sender)

    def _ergo_init(self, args: tuple[Any, ...]) -> Any:
        return self.init(*args)

    def _ergo_terminate(self, reason: BaseException) -> Any:
        return self.terminate(reason)

    # ---- what a process can do -----------------------------------------------------------------

    @property
    def process(self) -> gen.Process:
        """The ``gen.Process`` this actor runs in."""
        return self._process

    @property
    def pid(self) -> PID:
        return self._process.pid

    @property
    def name(self) -> Atom | None:
        """The registered name, or ``None``."""
        return self._process.name

    @property
    def parent(self) -> PID:
        return self._process.parent

    @property
    def leader(self) -> PID:
        return self._process.leader

    @property
    def node(self) -> gen.Node:
        return self._process.node

    @property
    def log(self) -> gen.Log:
        return self._process.log

    @property
    def state(self) -> gen.ProcessState:
        return self._process.state

    def env(self, name: str, default: Any = None) -> Any:
        """A value of this process's environment: a copy taken at spawn of the parent's (the
        node's for a process the node spawned) with ``ProcessOptions.env`` on top."""
        return self._process.env(name, default)

    def set_env(self, name: str, value: Any) -> None:
        """Set ``name`` in this process's environment; ``None`` removes it."""
        self._process.set_env(name, value)

    def set_trap_exit(self, trap: bool) -> None:
        """Trap exit signals: receive ``gen.MessageExit*`` in ``handle_message`` instead of terminating."""
        self._process.set_trap_exit(trap)

    def trap_exit(self) -> bool:
        return self._process.trap_exit()

    def set_send_priority(self, priority: MessagePriority) -> None:
        self._process.set_send_priority(priority)

    def send(self, to: gen.SendTarget, message: Any) -> None:
        """Queue ``message`` for ``to`` (PID, name, ProcessID or Alias).

        A PID or alias that no longer exists is not an error: the message is dropped and
        counted as a dead letter (``node.stats()``). Raises ``ProcessUnknownError`` for a
        name that is not registered, ``MailboxFullError`` for a full mailbox,
        ``NoConnectionError`` for a target on another node.
        """
        self._process.send(to, message)

    def send_pid(self, to: PID, message: Any) -> None:
        """Send to a PID; errors as ``send`` (a PID that is gone is a dead letter)."""
        self._process.send(to, message)

    def send_alias(self, to: Alias, message: Any) -> None:
        """Send to an alias (e.g. a WebSocket connection); an alias that is gone is a dead
        letter, not an error; errors as ``send``."""
        self._process.send(to, message)

    def send_with_priority(self, to: gen.SendTarget, message: Any, priority: MessagePriority) -> None:
        self._process.send_with_priority(to, message, priority)

    def send_after(self, to: gen.SendTarget, message: Any, after: float) -> Callable[[], bool]:
        """Send after ``after`` seconds; returns a cancel function."""
        return self._process.send_after(to, message, after)

    def send_exit(self, to: PID, reason: BaseException) -> None:
        """Send an exit signal to ``to``."""
        self._process.send_exit(to, reason)

    def send_exit_meta(self, alias: Alias, reason: BaseException) -> None:
        """Terminate the meta-process ``alias`` with ``reason``."""
        self._process.send_exit_meta(alias, reason)

    def send_response(self, to: PID, ref: Ref, value: Any) -> None:
        """Answer a call later (after ``handle_call`` returned ``None``)."""
        self._process.send_response(to, ref, value)

    def send_response_error(self, to: PID, ref: Ref, error: BaseException) -> None:
        """Answer a call with an error: the caller's ``call`` raises it."""
        self._process.send_response_error(to, ref, error)

    async def spawn(self, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any) -> PID:
        """Spawn a child process; see ``Node.spawn``."""
        return await self._process.spawn(factory, options, *args)

    async def spawn_register(
        self, name: str, factory: gen.Factory, options: ProcessOptions | None = None, *args: Any
    ) -> PID:
        """Spawn a child process registered under ``name``."""
        return await self._process.spawn_register(name, factory, options, *args)

    def spawn_meta(self, behavior: gen.MetaBehavior, options: MetaOptions | None = None) -> Alias:
        """Start a meta-process owned by this process; returns its alias."""
        return self._process.spawn_meta(behavior, options)

    async def call(self, to: gen.CallTarget, request: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for the reply (default timeout 5 s; ``gen.TimeoutError``)."""
        return await self._process.call(to, request, timeout)

    async def inspect(self, pid: PID, *items: str) -> dict[str, str]:
        return await self._process.inspect(pid, *items)

    async def inspect_meta(self, alias: Alias, *items: str) -> dict[str, str]:
        return await self._process.inspect_meta(alias, *items)

    def register_name(self, name: str) -> None:
        self._process.register_name(name)

    def unregister_name(self) -> None:
        self._process.unregister_name()

    def create_alias(self) -> Alias:
        return self._process.create_alias()

    def delete_alias(self, alias: Alias) -> None:
        self._process.delete_alias(alias)

    def link(self, target: gen.SendTarget) -> None:
        """Link to ``target``: its end is an exit signal to this process."""
        self._process.link(target)

    def unlink(self, target: gen.SendTarget) -> None:
        self._process.unlink(target)

    def monitor(self, target: gen.SendTarget) -> None:
        """Monitor ``target``: its end arrives as a ``gen.MessageDown*``."""
        self._process.monitor(target)

    def demonitor(self, target: gen.SendTarget) -> None:
        self._process.demonitor(target)

    def link_node(self, name: str) -> None:
        """Link to the connected node ``name``: losing it is an exit signal (``MessageExitNode``)."""
        self._process.link_node(name)

    def unlink_node(self, name: str) -> None:
        self._process.unlink_node(name)

    def monitor_node(self, name: str) -> None:
        """Monitor the connected node ``name``: losing it arrives as ``gen.MessageDownNode``."""
        self._process.monitor_node(name)

    def demonitor_node(self, name: str) -> None:
        self._process.demonitor_node(name)

    def register_event(self, name: str, options: EventOptions | None = None) -> Ref:
        """Register an event this process produces; returns the token for ``send_event``."""
        return self._process.register_event(name, options)

    def unregister_event(self, name: str) -> None:
        self._process.unregister_event(name)

    def send_event(self, name: str, token: Ref, message: Any) -> None:
        """Publish ``message`` to every subscriber of the event ``name``."""
        self._process.send_event(name, token, message)

    def link_event(self, event: Event) -> list[gen.MessageEvent]:
        """Subscribe (linked); returns the buffered recent events."""
        return self._process.link_event(event)

    def unlink_event(self, event: Event) -> None:
        self._process.unlink_event(event)

    def monitor_event(self, event: Event) -> list[gen.MessageEvent]:
        """Subscribe (monitored); returns the buffered recent events."""
        return self._process.monitor_event(event)

    def demonitor_event(self, event: Event) -> None:
        self._process.demonitor_event(event)
