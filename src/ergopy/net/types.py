"""Ergo's framework types and errors under their Go names, as the network layer needs them.

Go registers about 120 framework types at init (``net/edf/init.go``); here are the ones
a node exchanges with its peers: ``gen.Version``, ``gen.Route``, ``gen.NetworkFlags``,
``gen.MessageEvent`` (ergopy's :class:`gen.MessageEvent`), the spawn options
(``gen.ProcessOptionsExtra`` and what it holds) and the named basic types they use.
Field lists follow Go 3.1.0 (``gen/types.go``, ``gen/process.go``, ``gen/node.go``,
``gen/network.go``) in Go's order.

Errors: Go's 15 framework errors (its error cache, in Go's order) and its other
sentinel errors map onto ergopy's exception classes by their exact Go text, so
``"unknown process"`` decodes to a :class:`gen.ProcessUnknownError` and any
``gen.ProcessUnknownError`` encodes as ``"unknown process"`` (its own message is not
sent). The terminate reasons ``"normal"``, ``"shutdown"``, ``"kill"``, ``"panic"`` decode
to the singletons ``gen.TERMINATE_REASON_*``. A Go error with no ergopy class decodes to
:class:`ergopy.net.edf.RemoteError` with its text.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Annotated, Any

from .. import gen
from .edf import Int, Int64, Uint16, register, register_error

__all__ = [
    "FRAMEWORK_ERRORS",
    "Compression",
    "CompressionLevel",
    "CompressionType",
    "Env",
    "NetworkFlags",
    "ProcessOptions",
    "ProcessOptionsExtra",
    "Route",
    "Version",
]

_GEN = "#ergo.services/ergo/gen/"


@register(_GEN + "Env")
class Env(str):
    """Go ``gen.Env``: the name of a process environment variable (a ``str``)."""

    __slots__ = ()


register(_GEN + "LogLevel", gen.LogLevel, kind=Int)
register(_GEN + "MessagePriority", gen.MessagePriority, kind=Int)


@register(_GEN + "CompressionType")
class CompressionType(str):
    """Go ``gen.CompressionType``: ``"gzip"``, ``"zlib"`` or ``"lzw"``."""

    __slots__ = ()


@register(_GEN + "CompressionLevel")
class CompressionLevel(Int):
    """Go ``gen.CompressionLevel`` (a Go ``int``)."""

    __slots__ = ()


@register(_GEN + "Version")
@dataclasses.dataclass(frozen=True, slots=True)
class Version:
    """Go ``gen.Version``: a protocol's or an application's identity (``EHS``/``R1``/``MIT``)."""

    name: str = ""
    release: str = ""
    commit: str = ""
    license: str = ""


@register(_GEN + "Route")
@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """Go ``gen.Route``: how to reach a node (what the registrar stores and returns)."""

    host: str = ""
    port: Uint16 = Uint16(0)  # noqa: RUF009 - immutable
    tls: bool = False
    handshake_version: Version = Version()
    proto_version: Version = Version()


_FLAGS = struct.Struct(">Q")


@register(_GEN + "NetworkFlags")
@dataclasses.dataclass(frozen=True, slots=True)
class NetworkFlags:
    """Go ``gen.NetworkFlags``: what a node offers its peers (custom encoding: one uint64 bit set).

    With ``enable`` false every other flag is ignored, as in Go. :meth:`default` is
    Go's ``gen.DefaultNetworkFlags`` (0x67).
    """

    enable: bool = False
    remote_spawn: bool = False
    remote_application_start: bool = False
    fragmentation: bool = False
    proxy_transit: bool = False
    proxy_accept: bool = False
    important_delivery: bool = False

    @classmethod
    def default(cls) -> NetworkFlags:
        """Go's ``gen.DefaultNetworkFlags``: enable, remote spawn, remote application start,
        proxy accept and important delivery."""
        return cls(True, True, True, False, False, True, True)

    def edf_marshal(self) -> bytes:
        """The 8-byte big-endian bit set (all zero when not enabled)."""
        if not self.enable:
            return bytes(8)
        bits = 1
        for i, on in enumerate(
            (
                self.remote_spawn,
                self.remote_application_start,
                self.fragmentation,
                self.proxy_transit,
                self.proxy_accept,
                self.important_delivery,
            )
        ):
            if on:
                bits |= 2 << i
        return _FLAGS.pack(bits)

    @classmethod
    def edf_unmarshal(cls, data: bytes) -> NetworkFlags:
        """Flags from Go's bit set. Raises ValueError on fewer than 8 bytes."""
        if len(data) < 8:
            raise ValueError("unable to unmarshal NetworkFlags")
        (bits,) = _FLAGS.unpack_from(data)
        if not bits & 1:
            return cls()
        return cls(True, *(bool(bits & (2 << i)) for i in range(6)))


register(_GEN + "ProcessFallback", gen.ProcessFallback, fields=[("enable", bool), ("name", gen.Atom), ("tag", str)])


@register(_GEN + "Compression")
@dataclasses.dataclass(slots=True)
class Compression:
    """Go ``gen.Compression``: a process's compression of outgoing network messages."""

    enable: bool = False
    type: CompressionType = CompressionType("")  # noqa: RUF009 - immutable
    level: CompressionLevel = CompressionLevel(0)  # noqa: RUF009 - immutable
    threshold: int = 0


@register(_GEN + "ProcessOptions")
@dataclasses.dataclass(slots=True)
class ProcessOptions:
    """The wire form of Go's ``gen.ProcessOptions`` (remote spawn); ``leader`` None is Go's zero PID."""

    mailbox_size: Annotated[int, Int64] = 0
    leader: gen.PID | None = None
    env: dict[Env, Any] | None = None
    compression: Compression = dataclasses.field(default_factory=Compression)
    send_priority: gen.MessagePriority = gen.MessagePriority.NORMAL
    important_delivery: bool = False
    fallback: gen.ProcessFallback = dataclasses.field(default_factory=gen.ProcessFallback)
    link_parent: bool = False
    link_child: bool = False
    log_level: gen.LogLevel = gen.LogLevel.DEFAULT


@register(_GEN + "ProcessOptionsExtra")
@dataclasses.dataclass(slots=True)
class ProcessOptionsExtra:
    """Go ``gen.ProcessOptionsExtra``: what a remote spawn request carries (``MessageSpawn.Options``)."""

    process_options: ProcessOptions = dataclasses.field(default_factory=ProcessOptions)
    parent_pid: gen.PID | None = None
    parent_leader: gen.PID | None = None
    parent_env: dict[Env, Any] | None = None
    parent_log_level: gen.LogLevel = gen.LogLevel.DEFAULT
    register: gen.Atom = gen.Atom("")  # noqa: RUF009 - immutable
    application: gen.Atom = gen.Atom("")  # noqa: RUF009 - immutable
    args: list[Any] | None = None


register(_GEN + "MessageEvent", gen.MessageEvent, fields=[("event", gen.Event), ("timestamp", Int64), ("message", Any)])

# Go's error cache, in Go's order (net/edf/init.go), then its other sentinel errors.
# A name in the third column is a gen class ergopy may not have (yet): without it the
# text decodes to a RemoteError.
_ERRORS: list[tuple[str, Any]] = [
    ("incorrect value or argument", gen.IncorrectError),
    ("timed out", gen.TimeoutError),
    ("not supported", gen.UnsupportedError),
    ("unknown", "UnknownError"),
    ("unknown name", gen.NameUnknownError),
    ("not allowed", gen.NotAllowedError),
    ("unknown process", gen.ProcessUnknownError),
    ("process terminated", gen.ProcessTerminatedError),
    ("unknown meta process", gen.MetaUnknownError),
    ("unknown application", "ApplicationUnknownError"),
    ("resource is taken", gen.TakenError),
    ("normal", gen.TERMINATE_REASON_NORMAL),
    ("shutdown", gen.TERMINATE_REASON_SHUTDOWN),
    ("kill", gen.TERMINATE_REASON_KILL),
    ("panic", gen.TERMINATE_REASON_PANIC),
    # not in Go's cache: sent as text, mapped by text
    ("no connection", gen.NoConnectionError),
    ("node terminated", gen.NodeTerminatedError),
    ("process mailbox is full", gen.MailboxFullError),
    ("meta process mailbox is full", gen.MetaMailboxFullError),
    ("unknown target", gen.TargetUnknownError),
    ("target is already exist", gen.TargetExistError),
    ("unknown alias", gen.AliasUnknownError),
    ("unknown event", gen.EventUnknownError),
    ("response ignored", gen.ResponseIgnoredError),
    ("unregistered", gen.UnregisteredError),
    ("process ID belongs to the previous incarnation", "ProcessIncarnationError"),
    ("too large", "TooLargeError"),
    ("no route", "NoRouteError"),
    ("malformed value", "MalformedError"),
    ("network stack is stopped", "NetworkStoppedError"),
    ("internal error", "InternalError"),
]

FRAMEWORK_ERRORS: tuple[str, ...] = tuple(t for t, _ in _ERRORS[:15])
"""The texts of Go's 15 framework errors, in the order of Go's error cache."""

for _text, _target in _ERRORS:
    if isinstance(_target, str):
        _target = getattr(gen, _target, None) or _text
    register_error(_target, _text)
del _text, _target
