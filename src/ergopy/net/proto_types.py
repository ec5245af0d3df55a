"""The requests and results of ENP type 199 (``MessageAny``), as Go registers them
(``net/proto/types.go``, ``#ergo.services/ergo/net/proto/<Name>``).

Link/unlink and monitor/demonitor of a remote target travel as one of the sixteen
``Message{Link,Unlink,Monitor,Demonitor}{PID,ProcessID,Alias,Event}`` structs
(``source``, ``target``, ``ref``); remote spawn as :class:`MessageSpawn`; the
target node answers every one of them with :class:`MessageResult` carrying the
same ``ref``. :func:`request_order` and :func:`result_order` give the order byte
Go writes for them.

Not declared: ``MessageApplicationStart`` (remote application start is not
supported yet; a Go node's request fails to decode and is dropped, the requester
times out as it would against a Go node without the feature enabled).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Final, TypeAlias

from ergopy import gen
from ergopy.net import edf
from ergopy.net.types import ProcessOptionsExtra

_P = "#ergo.services/ergo/net/proto/"


def _pid() -> gen.PID:
    return gen.PID("", 0, 0)


def _ref() -> gen.Ref:
    return gen.Ref("", 0, (0, 0, 0))


_NO_NAME: Final = gen.Atom("")


@edf.register(_P + "MessageLinkPID")
@dataclasses.dataclass
class MessageLinkPID:
    """Ask the target's node to link ``target`` (a PID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.PID = dataclasses.field(default_factory=_pid)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageLinkProcessID")
@dataclasses.dataclass
class MessageLinkProcessID:
    """Ask the target's node to link ``target`` (a ProcessID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.ProcessID = dataclasses.field(default_factory=lambda: gen.ProcessID("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageLinkAlias")
@dataclasses.dataclass
class MessageLinkAlias:
    """Ask the target's node to link ``target`` (an Alias) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Alias = dataclasses.field(default_factory=lambda: gen.Alias("", 0, (0, 0, 0)))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageLinkEvent")
@dataclasses.dataclass
class MessageLinkEvent:
    """Ask the target's node to link ``target`` (an Event) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Event = dataclasses.field(default_factory=lambda: gen.Event("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageUnlinkPID")
@dataclasses.dataclass
class MessageUnlinkPID:
    """Ask the target's node to unlink ``target`` (a PID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.PID = dataclasses.field(default_factory=_pid)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageUnlinkProcessID")
@dataclasses.dataclass
class MessageUnlinkProcessID:
    """Ask the target's node to unlink ``target`` (a ProcessID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.ProcessID = dataclasses.field(default_factory=lambda: gen.ProcessID("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageUnlinkAlias")
@dataclasses.dataclass
class MessageUnlinkAlias:
    """Ask the target's node to unlink ``target`` (an Alias) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Alias = dataclasses.field(default_factory=lambda: gen.Alias("", 0, (0, 0, 0)))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageUnlinkEvent")
@dataclasses.dataclass
class MessageUnlinkEvent:
    """Ask the target's node to unlink ``target`` (an Event) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Event = dataclasses.field(default_factory=lambda: gen.Event("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageMonitorPID")
@dataclasses.dataclass
class MessageMonitorPID:
    """Ask the target's node to monitor ``target`` (a PID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.PID = dataclasses.field(default_factory=_pid)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageMonitorProcessID")
@dataclasses.dataclass
class MessageMonitorProcessID:
    """Ask the target's node to monitor ``target`` (a ProcessID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.ProcessID = dataclasses.field(default_factory=lambda: gen.ProcessID("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageMonitorAlias")
@dataclasses.dataclass
class MessageMonitorAlias:
    """Ask the target's node to monitor ``target`` (an Alias) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Alias = dataclasses.field(default_factory=lambda: gen.Alias("", 0, (0, 0, 0)))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageMonitorEvent")
@dataclasses.dataclass
class MessageMonitorEvent:
    """Ask the target's node to monitor ``target`` (an Event) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Event = dataclasses.field(default_factory=lambda: gen.Event("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageDemonitorPID")
@dataclasses.dataclass
class MessageDemonitorPID:
    """Ask the target's node to demonitor ``target`` (a PID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.PID = dataclasses.field(default_factory=_pid)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageDemonitorProcessID")
@dataclasses.dataclass
class MessageDemonitorProcessID:
    """Ask the target's node to demonitor ``target`` (a ProcessID) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.ProcessID = dataclasses.field(default_factory=lambda: gen.ProcessID("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageDemonitorAlias")
@dataclasses.dataclass
class MessageDemonitorAlias:
    """Ask the target's node to demonitor ``target`` (an Alias) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Alias = dataclasses.field(default_factory=lambda: gen.Alias("", 0, (0, 0, 0)))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageDemonitorEvent")
@dataclasses.dataclass
class MessageDemonitorEvent:
    """Ask the target's node to demonitor ``target`` (an Event) for ``source``."""

    source: gen.PID = dataclasses.field(default_factory=_pid)
    target: gen.Event = dataclasses.field(default_factory=lambda: gen.Event("", ""))
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageSpawn")
@dataclasses.dataclass
class MessageSpawn:
    """Ask the node to spawn the process factory enabled under ``name``."""

    name: gen.Atom = _NO_NAME
    options: ProcessOptionsExtra = dataclasses.field(default_factory=ProcessOptionsExtra)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageUpdateCache")
@dataclasses.dataclass
class MessageUpdateCache:
    """Declared by Go, never sent (a TODO there); registered so that the type ids line up."""

    atom_cache: dict[Annotated[int, edf.Uint16], gen.Atom] = dataclasses.field(default_factory=dict)
    atom_mapping: dict[gen.Atom, gen.Atom] = dataclasses.field(default_factory=dict)
    reg_cache: dict[Annotated[int, edf.Uint16], str] = dataclasses.field(default_factory=dict)
    err_cache: dict[Annotated[int, edf.Uint16], BaseException] = dataclasses.field(default_factory=dict)
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


@edf.register(_P + "MessageResult")
@dataclasses.dataclass
class MessageResult:
    """The answer to every 199 request: ``error`` (None on success), ``result``
    (the new PID for a spawn, the buffered ``MessageEvent`` history for an event
    link/monitor, else None) and the request's ``ref``."""

    error: BaseException | None = None
    result: Any = None
    ref: gen.Ref = dataclasses.field(default_factory=_ref)


Request: TypeAlias = (
    MessageLinkPID
    | MessageLinkProcessID
    | MessageLinkAlias
    | MessageLinkEvent
    | MessageUnlinkPID
    | MessageUnlinkProcessID
    | MessageUnlinkAlias
    | MessageUnlinkEvent
    | MessageMonitorPID
    | MessageMonitorProcessID
    | MessageMonitorAlias
    | MessageMonitorEvent
    | MessageDemonitorPID
    | MessageDemonitorProcessID
    | MessageDemonitorAlias
    | MessageDemonitorEvent
    | MessageSpawn
)
"""Everything a node sends in a 199 frame and expects a ``MessageResult`` for."""

REQUESTS: tuple[type[Any], ...] = Request.__args__


def request_order(request: Request) -> int:
    """The order byte Go writes for a 199 request: the target PID's ID for
    Link/UnlinkPID, alias ID[1] for LinkAlias and MonitorAlias, else 0."""
    if isinstance(request, (MessageLinkPID, MessageUnlinkPID)):
        return request.target.id % 255
    if isinstance(request, (MessageLinkAlias, MessageMonitorAlias)):
        return request.target.id[1] % 255
    return 0


def result_order(request: Request) -> int:
    """The order byte Go writes for the ``MessageResult`` answering ``request``:
    the requesting PID's ID (the spawn's parent PID for a spawn)."""
    if isinstance(request, MessageSpawn):
        parent = request.options.parent_pid
        return parent.id % 255 if parent is not None else 0
    return request.source.id % 255
