"""System messages the node delivers to processes.

Links deliver ``MessageExit*`` (urgent queue; a process that does not trap exits
terminates instead of receiving it); monitors deliver ``MessageDown*`` (system
queue). All are frozen dataclasses so they compare, hash and print plainly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .identifiers import PID, Alias, Atom, Event, ProcessID

__all__ = [
    "MessageDownAlias",
    "MessageDownEvent",
    "MessageDownNode",
    "MessageDownPID",
    "MessageDownProcessID",
    "MessageEvent",
    "MessageEventStart",
    "MessageEventStop",
    "MessageExitAlias",
    "MessageExitEvent",
    "MessageExitNode",
    "MessageExitPID",
    "MessageExitProcessID",
    "MessageFallback",
]


@dataclass(frozen=True, slots=True)
class MessageDownPID:
    """A monitored process terminated."""

    pid: PID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownProcessID:
    """A monitored name was released (its process terminated, or it was unregistered)."""

    process_id: ProcessID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownAlias:
    """A monitored alias is gone (its meta-process terminated, or it was deleted)."""

    alias: Alias
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownEvent:
    """A monitored event was unregistered or its producer terminated."""

    event: Event
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownNode:
    """A monitored node went away."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageExitPID:
    """A linked process terminated (delivered only to processes that trap exits)."""

    pid: PID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitProcessID:
    """A linked name was released."""

    process_id: ProcessID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitAlias:
    """A linked alias is gone."""

    alias: Alias
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitEvent:
    """A linked event was unregistered or its producer terminated."""

    event: Event
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitNode:
    """A linked node went away."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """An event published with ``send_event``; goes to ``handle_event``."""

    event: Event
    timestamp: int  # unix nanoseconds, as Ergo
    message: Any


@dataclass(frozen=True, slots=True)
class MessageEventStart:
    """To a producer with ``notify``: the first subscriber arrived."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageEventStop:
    """To a producer with ``notify``: the last subscriber left."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageFallback:
    """A message that did not fit the target's mailbox, redirected to the fallback process."""

    pid: PID
    tag: str
    message: Any = field(repr=False)
