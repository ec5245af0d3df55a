"""Options and enumerations: node, process, meta-process, event, log level."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(slots=True)
class ProcessOptions:
    """Options for ``spawn``.

    ``mailbox_size`` bounds each mailbox queue (0: unbounded, Ergo's default);
    ``link_parent`` links the child to its parent, ``link_child`` the parent to
    the child; ``env`` is inherited from the parent and overridden by this.
    """

    mailbox_size: int = 0
    fallback: ProcessFallback = field(default_factory=ProcessFallback)
    link_parent: bool = False
    link_child: bool = False
    send_priority: MessagePriority = MessagePriority.NORMAL
    log_level: LogLevel = LogLevel.DEFAULT
    env: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MetaOptions:
    """Options for ``spawn_meta``: mailbox bound (0: unbounded), send priority, log level."""

    mailbox_size: int = 0
    send_priority: MessagePriority = MessagePriority.NORMAL
    log_level: LogLevel = LogLevel.DEFAULT


@dataclass(slots=True)
class EventOptions:
    """Options for ``register_event``.

    ``notify``: the producer gets ``MessageEventStart``/``MessageEventStop`` as its
    first subscriber arrives and its last leaves; ``buffer``: how many recent
    events ``link_event``/``monitor_event`` return to a new subscriber.
    """

    notify: bool = False
    buffer: int = 0


@dataclass(slots=True)
class NodeOptions:
    """Options for ``start_node``.

    ``stop_timeout`` bounds each phase of ``node.stop()`` (closing meta-processes,
    letting workers handle their last messages, waiting for processes): a process
    still alive after it is killed.
    """

    env: dict[str, Any] = field(default_factory=dict)
    log_level: LogLevel = LogLevel.INFO
    stop_timeout: float = 5.0
    handle_signals: bool = False  # set by ergopy.run(): SIGINT/SIGTERM stop the node
