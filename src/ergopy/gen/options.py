"""Options and enumerations: node, process, meta-process, event, log level.

Every options class checks its fields when it is built: a wrong type raises
``TypeError``, a value out of range ``ValueError``, each naming the field and the
value (``ProcessOptions.mailbox_size must be an int >= 0, got -1``), so a mistake
shows where it is made, not later in the process or connection that uses it.
The ``check_*`` functions here are those checks, for the options classes of
``meta`` too.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "EventOptions",
    "LogLevel",
    "MessagePriority",
    "MetaOptions",
    "MetaState",
    "NodeOptions",
    "ProcessFallback",
    "ProcessOptions",
    "ProcessState",
]

_E = TypeVar("_E", bound=enum.Enum)


def _where(owner: object, name: str) -> str:
    return f"{type(owner).__name__}.{name}"


def check_bool(owner: object, name: str, value: object) -> bool:
    """``value`` of field ``name`` of ``owner``, a bool. Raises ``TypeError`` naming the field otherwise."""
    if type(value) is not bool:
        raise TypeError(f"{_where(owner, name)} must be a bool, got {value!r}")
    return value


def check_int(owner: object, name: str, value: object, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` of field ``name``, an int in ``[minimum, maximum]`` (a bool is not an int here).

    Raises ``TypeError`` for another type, ``ValueError`` out of range; both name the field.
    """
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{_where(owner, name)} must be an int, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{_where(owner, name)} must be an int {bound}, got {value!r}")
    return value


def check_seconds(
    owner: object, name: str, value: object, optional: bool = True, positive: bool = False
) -> float | None:
    """``value`` of field ``name``, a finite number of seconds >= 0 (> 0 if ``positive``), or ``None``
    if ``optional``. Raises ``TypeError`` for another type (a string included), ``ValueError`` for a
    negative, zero when ``positive``, infinite or NaN number; both name the field."""
    if value is None and optional:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        kind = "a number of seconds or None" if optional else "a number of seconds"
        raise TypeError(f"{_where(owner, name)} must be {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{_where(owner, name)} must be a finite number of seconds {bound}, got {value!r}")
    return value


def check_str(owner: object, name: str, value: object) -> str:
    """``value`` of field ``name``, a str. Raises ``TypeError`` naming the field otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{_where(owner, name)} must be a str, got {value!r}")
    return value


def check_enum(owner: object, name: str, value: object, kind: type[_E]) -> _E:
    """``value`` of field ``name``, a member of ``kind`` (an int for an ``IntEnum``/``IntFlag`` if it is
    one of its values). Raises ``TypeError`` for another type, ``ValueError`` for an int that is not
    a value of ``kind``; both name the field and list the members."""
    if type(value) is kind or isinstance(value, kind):
        return value
    members = ", ".join(f"{kind.__name__}.{m.name}" for m in kind)
    if issubclass(kind, int) and isinstance(value, int) and not isinstance(value, bool):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{_where(owner, name)} must be one of {members}, got {value!r}") from None
    raise TypeError(f"{_where(owner, name)} must be one of {members}, got {value!r}")


def check_names(owner: object, name: str, value: object) -> tuple[str, ...]:
    """``value`` of field ``name``, a sequence (not a single str) of non-empty strs, as a tuple.

    Raises ``TypeError`` for a str (``"w1"`` would be read as names ``'w'`` and ``'1'``) or
    another type, ``ValueError`` for an empty name; both name the field.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        hint = f" (a list of names: [{value!r}])" if isinstance(value, str) else ""
        raise TypeError(f"{_where(owner, name)} must be a list of str{hint}, got {value!r}")
    names = tuple(value)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{_where(owner, name)} must hold only str, got {n!r} in {value!r}")
        if not n:
            raise ValueError(f"{_where(owner, name)} must not hold an empty name, got {value!r}")
    return names


def check_env(owner: object, name: str, value: object) -> dict[str, Any]:
    """``value`` of field ``name``, a mapping of str to anything, as a dict. Raises ``TypeError``
    for another type or a key that is not a str; both name the field."""
    if type(value) is dict:
        if not value:
            return value  # the usual case, checked at once
    elif not isinstance(value, Mapping):
        raise TypeError(f"{_where(owner, name)} must be a dict of str to values, got {value!r}")
    for k in value:
        if not isinstance(k, str):
            raise TypeError(f"{_where(owner, name)} keys must be str, got {k!r} in {value!r}")
    return value if type(value) is dict else dict(value)


def check_instance(owner: object, name: str, value: object, kind: type[Any], optional: bool = False) -> Any:
    """``value`` of field ``name``, an instance of ``kind`` (or ``None`` if ``optional``).
    Raises ``TypeError`` naming the field otherwise."""
    if type(value) is kind or (value is None and optional) or isinstance(value, kind):
        return value
    raise TypeError(f"{_where(owner, name)} must be a {kind.__name__}{' or None' if optional else ''}, got {value!r}")


# Ergo's gen.DefaultRequestTimeout: a call with no timeout waits this long.
DEFAULT_REQUEST_TIMEOUT = 5.0


class MessagePriority(enum.IntEnum):
    """Which mailbox queue a message goes to: NORMAL → main, HIGH → system, MAX → urgent."""

    NORMAL = 0
    HIGH = 1
    MAX = 2


class LogLevel(enum.IntEnum):
    """Ergo's log levels; each maps onto a standard ``logging`` level."""

    SYSTEM = -100
    TRACE = -2
    DEBUG = -1
    DEFAULT = 0  # inherit from the parent (process) or the node
    INFO = 1
    WARNING = 2
    ERROR = 3
    PANIC = 4
    DISABLED = 5


class ProcessState(enum.IntFlag):
    """Process states, with Ergo's bit values."""

    INIT = 1
    SLEEP = 2
    RUNNING = 4
    WAIT_RESPONSE = 8
    TERMINATED = 16
    ZOMBEE = 32


class MetaState(enum.IntFlag):
    """Meta-process states, with Ergo's bit values."""

    SLEEP = 1
    RUNNING = 2
    TERMINATED = 4


@dataclass(slots=True)
class ProcessFallback:
    """Where a message goes when the target's mailbox is full."""

    enable: bool = False
    name: str = ""
    tag: str = ""

    def __post_init__(self) -> None:
        """Raises ``TypeError`` naming a field of the wrong type; ``ValueError`` if enabled with no name."""
        check_bool(self, "enable", self.enable)
        check_str(self, "name", self.name)
        check_str(self, "tag", self.tag)
        if self.enable and not self.name:
            raise ValueError("ProcessFallback.name is required when ProcessFallback.enable is True")


@dataclass(slots=True)
class ProcessOptions:
    """Options for ``spawn``.

    ``mailbox_size`` bounds each mailbox queue (0: unbounded, Ergo's default);
    ``link_parent`` links the child to its parent, ``link_child`` the parent to
    the child; ``env`` is inherited from the parent and overridden by this;
    ``compression`` (a ``gen.Compression``) compresses its large messages to other nodes.
    """

    mailbox_size: int = 0
    fallback: ProcessFallback = field(default_factory=ProcessFallback)
    link_parent: bool = False
    link_child: bool = False
    send_priority: MessagePriority = MessagePriority.NORMAL
    log_level: LogLevel = LogLevel.DEFAULT
    env: dict[str, Any] = field(default_factory=dict)
    compression: Any = None  # a gen.Compression for what it sends to other nodes (None: none)

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        if self.compression is not None:
            from .network import Compression

            check_instance(self, "compression", self.compression, Compression, optional=True)
        check_int(self, "mailbox_size", self.mailbox_size)
        check_instance(self, "fallback", self.fallback, ProcessFallback)
        check_bool(self, "link_parent", self.link_parent)
        check_bool(self, "link_child", self.link_child)
        self.send_priority = check_enum(self, "send_priority", self.send_priority, MessagePriority)
        self.log_level = check_enum(self, "log_level", self.log_level, LogLevel)
        self.env = check_env(self, "env", self.env)


@dataclass(slots=True)
class MetaOptions:
    """Options for ``spawn_meta``: mailbox bound (0: unbounded), send priority, log level."""

    mailbox_size: int = 0
    send_priority: MessagePriority = MessagePriority.NORMAL
    log_level: LogLevel = LogLevel.DEFAULT

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        check_int(self, "mailbox_size", self.mailbox_size)
        self.send_priority = check_enum(self, "send_priority", self.send_priority, MessagePriority)
        self.log_level = check_enum(self, "log_level", self.log_level, LogLevel)


@dataclass(slots=True)
class EventOptions:
    """Options for ``register_event``.

    ``notify``: the producer gets ``MessageEventStart``/``MessageEventStop`` as its
    first subscriber arrives and its last leaves; ``buffer``: how many recent
    events ``link_event``/``monitor_event`` return to a new subscriber.
    """

    notify: bool = False
    buffer: int = 0

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        check_bool(self, "notify", self.notify)
        check_int(self, "buffer", self.buffer)


@dataclass(slots=True)
class NodeOptions:
    """Options for ``start_node``.

    ``stop_timeout`` bounds each phase of ``node.stop()`` (closing meta-processes,
    letting workers handle their last messages, waiting for processes): a process
    still alive after it is killed. ``network`` (a ``gen.NetworkOptions``) makes the
    node reachable from other nodes; None keeps it alone.
    """

    env: dict[str, Any] = field(default_factory=dict)
    log_level: LogLevel = LogLevel.INFO
    stop_timeout: float = 5.0
    handle_signals: bool = False  # set by ergopy.run(): SIGINT/SIGTERM stop the node
    network: Any = None  # a gen.NetworkOptions turns the network on (None: a node alone)

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        self.env = check_env(self, "env", self.env)
        if self.network is not None:
            from .network import NetworkOptions

            check_instance(self, "network", self.network, NetworkOptions, optional=True)
        self.log_level = check_enum(self, "log_level", self.log_level, LogLevel)
        check_seconds(self, "stop_timeout", self.stop_timeout, optional=False, positive=True)
        check_bool(self, "handle_signals", self.handle_signals)
