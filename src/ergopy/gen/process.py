"""Behaviour bases and the protocols the node implements.

A *behaviour* is the user's object (an ``act.Actor``, a ``gen.MetaBehavior``);
the node wraps it in a process and calls its callbacks. The node sees a process
behaviour only through :class:`ProcessBehavior`, and a behaviour sees the node
only through the :class:`Process`, :class:`MetaProcess`, :class:`Node` and
:class:`Log` protocols, so ``act`` and ``meta`` never import ``node``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import UnsupportedError
from .identifiers import PID, Alias, Atom, Event, ProcessID, Ref
from .options import (
    EventOptions,
    LogLevel,
    MessagePriority,
    MetaOptions,
    ProcessOptions,
    ProcessState,
)

if TYPE_CHECKING:
    from .messages import MessageEvent

__all__ = [
    "CallTarget",
    "Factory",
    "Log",
    "MetaBehavior",
    "MetaProcess",
    "Node",
    "Process",
    "ProcessBehavior",
    "ReplyAndStop",
    "SendTarget",
]

SendTarget = PID | ProcessID | Alias | str
"""What ``send`` accepts: a PID, a ProcessID, an Alias, or a name (``str``/``Atom``)."""

CallTarget = SendTarget

Factory = Callable[[], "ProcessBehavior"]
"""What ``spawn`` accepts: a behaviour class, or any callable returning a new behaviour."""


class ReplyAndStop:
    """Return this from ``handle_call`` to reply with ``value`` and then terminate.

    Ergo's ``return result, gen.TerminateReasonNormal``.
    """

    __slots__ = ("reason", "value")

    def __init__(self, value: Any, reason: BaseException | None = None) -> None:
        from .errors import TERMINATE_REASON_NORMAL

        self.value = value
        self.reason = reason if reason is not None else TERMINATE_REASON_NORMAL


@runtime_checkable
class Log(Protocol):
    """A logger bound to a source (node, process or meta-process); Ergo's ``gen.Log``.

    Messages use ``%``-formatting, applied only when the level is enabled.
    """

    def level(self) -> LogLevel: ...
    def set_level(self, level: LogLevel) -> None: ...
    def trace(self, msg: str, *args: Any) -> None: ...
    def debug(self, msg: str, *args: Any) -> None: ...
    def info(self, msg: str, *args: Any) -> None: ...
    def warning(self, msg: str, *args: Any) -> None: ...
    def error(self, msg: str, *args: Any) -> None: ...
    def panic(self, msg: str, *args: Any) -> None: ...


class Node(Protocol):
    """What a behaviour can see of its node (``self.node``)."""

    @property
    def name(self) -> Atom: ...
    @property
    def creation(self) -> int: ...
    @property
    def pid(self) -> PID: ...
    @property
    def log(self) -> Log: ...
    def is_alive(self) -> bool: ...
    def send(self, to: SendTarget, message: Any) -> None: ...
    def send_exit(self, to: PID, reason: BaseException) -> None: ...
    def kill(self, pid: PID) -> None: ...
    async def spawn(self, factory: Factory, options: ProcessOptions | None = None, *args: Any) -> PID: ...
    async def spawn_register(
        self, name: str, factory: Factory, options: ProcessOptions | None = None, *args: Any
    ) -> PID: ...
    async def call(self, to: CallTarget, request: Any, timeout: float | None = None) -> Any: ...
    def process_info(self, pid: PID) -> dict[str, Any]: ...
    def make_ref(self) -> Ref: ...
    def env(self, name: str, default: Any = None) -> Any: ...


class Process(Protocol):
    """The process a behaviour runs in: Ergo's ``gen.Process``.

    Methods raise ``gen.NotAllowedError`` when the process's state forbids them.
    ``send``/``send_pid``/``send_alias`` to a PID or alias that no longer exists is not
    an error (Erlang's rule, the only one that holds across nodes): the message is
    dropped and counted as a dead letter in ``node.stats()``. They raise
    ``ProcessUnknownError`` for a name that is not registered, ``MailboxFullError``
    when the target's mailbox is full, ``NoConnectionError`` for a target on a node
    this one is not connected to (a send never dials; ``call`` connects on demand);
    ``call`` raises ``ProcessUnknownError`` for anything that is gone, on any node.
    A remote ``link``/``monitor`` is confirmed by the target's node later: a refusal
    arrives as the ``MessageExit*``/``MessageDown*`` with the refusal as reason, and
    a remote ``link_event``/``monitor_event`` returns ``[]`` and delivers the buffered
    history to ``handle_event`` once the target's node answers.
    """

    @property
    def pid(self) -> PID: ...
    @property
    def name(self) -> Atom | None: ...
    @property
    def parent(self) -> PID: ...
    @property
    def leader(self) -> PID: ...
    @property
    def node(self) -> Node: ...
    @property
    def log(self) -> Log: ...
    @property
    def state(self) -> ProcessState: ...
    def env(self, name: str, default: Any = None) -> Any: ...
    def set_env(self, name: str, value: Any) -> None: ...
    def set_trap_exit(self, trap: bool) -> None: ...
    def trap_exit(self) -> bool: ...
    def set_send_priority(self, priority: MessagePriority) -> None: ...

    def send(self, to: SendTarget, message: Any) -> None: ...
    def send_alias(self, to: Alias, message: Any) -> None: ...
    def send_pid(self, to: PID, message: Any) -> None: ...
    def send_with_priority(self, to: SendTarget, message: Any, priority: MessagePriority) -> None: ...
    def send_after(self, to: SendTarget, message: Any, after: float) -> Callable[[], bool]: ...
    def send_exit(self, to: PID, reason: BaseException) -> None: ...
    def send_exit_meta(self, alias: Alias, reason: BaseException) -> None: ...
    def send_response(self, to: PID, ref: Ref, value: Any) -> None: ...
    def send_response_error(self, to: PID, ref: Ref, error: BaseException) -> None: ...
    def forward(self, to: SendTarget, from_: PID, message: Any) -> None:
        """Queue ``message`` for ``to`` as if ``from_`` had sent it (what ``act.Pool`` does)."""

    def forward_call(self, to: CallTarget, from_: PID, ref: Ref, request: Any) -> None:
        """Pass the call ``ref`` from ``from_`` on to ``to``, whose reply goes straight to the caller."""

    async def spawn(self, factory: Factory, options: ProcessOptions | None = None, *args: Any) -> PID: ...
    async def spawn_register(
        self, name: str, factory: Factory, options: ProcessOptions | None = None, *args: Any
    ) -> PID: ...
    def spawn_meta(self, behavior: MetaBehavior, options: MetaOptions | None = None) -> Alias: ...
    async def call(self, to: CallTarget, request: Any, timeout: float | None = None) -> Any: ...
    async def inspect(self, pid: PID, *items: str) -> dict[str, str]: ...
    async def inspect_meta(self, alias: Alias, *items: str) -> dict[str, str]: ...

    def register_name(self, name: str) -> None: ...
    def unregister_name(self) -> None: ...
    def create_alias(self) -> Alias: ...
    def delete_alias(self, alias: Alias) -> None: ...
    def aliases(self) -> list[Alias]: ...

    def link(self, target: SendTarget) -> None: ...
    def unlink(self, target: SendTarget) -> None: ...
    def monitor(self, target: SendTarget) -> None: ...
    def demonitor(self, target: SendTarget) -> None: ...
    def link_node(self, name: str) -> None:
        """Link to the connected node ``name``: losing it is an exit signal (``MessageExitNode``).

        Raises ``NoConnectionError`` if it is not connected, ``TargetExistError`` if linked already.
        """

    def unlink_node(self, name: str) -> None:
        """Remove the link to node ``name``; ``TargetUnknownError`` if there is none."""

    def monitor_node(self, name: str) -> None:
        """Monitor the connected node ``name``: losing it arrives as ``MessageDownNode``.

        Raises ``NoConnectionError`` if it is not connected, ``TargetExistError`` if monitored already.
        """

    def demonitor_node(self, name: str) -> None:
        """Remove the monitor of node ``name``; ``TargetUnknownError`` if there is none."""

    def register_event(self, name: str, options: EventOptions | None = None) -> Ref: ...
    def unregister_event(self, name: str) -> None: ...
    def send_event(self, name: str, token: Ref, message: Any) -> None: ...
    def link_event(self, event: Event) -> list[MessageEvent]: ...
    def unlink_event(self, event: Event) -> None: ...
    def monitor_event(self, event: Event) -> list[MessageEvent]: ...
    def demonitor_event(self, event: Event) -> None: ...


class MetaProcess(Protocol):
    """The meta-process a :class:`MetaBehavior` runs in: Ergo's ``gen.MetaProcess``.

    A meta-process has no PID: it sends with its parent's PID as ``from``.
    """

    @property
    def id(self) -> Alias: ...
    @property
    def parent(self) -> PID: ...
    @property
    def log(self) -> Log: ...
    @property
    def node(self) -> Node: ...
    def env(self, name: str, default: Any = None) -> Any: ...
    def send(self, to: SendTarget, message: Any) -> None: ...
    def send_with_priority(self, to: SendTarget, message: Any, priority: MessagePriority) -> None: ...
    def send_response(self, to: PID, ref: Ref, value: Any) -> None: ...
    def spawn(self, behavior: MetaBehavior, options: MetaOptions | None = None) -> Alias: ...
    def backlog(self, to: SendTarget) -> int:
        """Messages waiting in the main queue of local process ``to`` (0 if unknown)."""
        ...

    async def wait_backlog(self, to: SendTarget, high: int, low: int) -> None:
        """Flow control: if more than ``high`` messages wait at ``to``, wait until at most ``low`` do."""
        ...


class ProcessBehavior:
    """What the node runs as a process. Users subclass ``act.Actor``, not this.

    The node calls ``_ergo_*`` hooks for the lifecycle and, per message,
    ``handle_message`` / ``handle_call`` / ``handle_event`` / ``handle_inspect``
    directly (each may be ``def`` or ``async def``; the node checks once per class).
    Messages from the urgent and system queues (exits, downs) go through
    ``_ergo_system``, so a behaviour such as a supervisor can see them first.
    """

    _process: Process
    _ergo_parent_exit = False
    """True: an exit signal from the parent reaches ``_ergo_system`` (when trapping exits)
    instead of ending the process at once; a behaviour that stops its children first (a
    supervisor) sets it, and ``node.stop()`` then leaves the stopping of its children to it."""

    def _ergo_bind(self, process: Process) -> None:
        self._process = process

    def _ergo_init(self, args: tuple[Any, ...]) -> Awaitable[None] | None:
        return None

    def _ergo_system(self, from_: PID, message: Any) -> Any:
        return self.handle_message(from_, message)

    def _ergo_terminate(self, reason: BaseException) -> Awaitable[None] | None:
        return None

    def handle_message(self, from_: PID, message: Any) -> Any:
        return None

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        return None

    def handle_event(self, message: MessageEvent) -> Any:
        return None

    def handle_inspect(self, from_: PID, *items: str) -> Any:
        return {}


class MetaBehavior:
    """Base for meta-processes: objects that own I/O (a socket, a listener).

    Override ``init`` (synchronous: keep the ``MetaProcess``), ``start`` (the
    meta-process's own task; when it returns or raises, the meta-process
    terminates), ``terminate`` (runs exactly once, and must make ``start``
    return), and optionally ``handle_message``/``handle_call``/``handle_inspect``,
    which run concurrently with ``start``, one message at a time. A callback may
    be ``def`` or ``async def``; returning an exception instance terminates the
    meta-process with it as reason.
    """

    def init(self, process: MetaProcess) -> None:
        """Keep ``process``; raise to refuse the spawn (``spawn_meta`` re-raises)."""

    async def start(self) -> None:
        """Run until the meta-process ends. The default waits forever (until terminated)."""
        import asyncio

        await asyncio.Event().wait()

    def handle_message(self, from_: PID, message: Any) -> Any:
        """A message sent to the meta-process's alias. The default ignores it."""
        return None

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """A call to the alias; the default answers with ``UnsupportedError`` as the value."""
        return UnsupportedError(f"{type(self).__name__} does not handle calls")

    def handle_inspect(self, from_: PID, *items: str) -> Any:
        """Inspect data about this meta-process."""
        return {}

    def terminate(self, reason: BaseException) -> Any:
        """Release resources; called once. Must make ``start`` return."""
        return None
