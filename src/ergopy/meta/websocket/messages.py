"""The messages a WebSocket connection exchanges with its process, and the upgrade request."""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...gen import Alias

__all__ = [
    "Message",
    "MessageConnect",
    "MessageDisconnect",
    "MessageType",
    "Request",
    "close_body",
    "cut_close_reason",
    "parse_close_body",
    "sendable_close_code",
]


class MessageType(enum.IntEnum):
    """WebSocket message types, with the RFC 6455 opcodes (gorilla's values)."""

    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


@dataclass(frozen=True, slots=True)
class Request:
    """The HTTP upgrade request, the same on every serving path (native or ASGI).

    ``headers`` is case-insensitive; ``query`` is the raw query string (no ``?``);
    ``remote_addr`` is ``"host:port"``, an IPv6 host bracketed (``"[::1]:52000"``), as in
    ``MessageConnect``.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    remote_addr: str
    scheme: str = "http"

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def origin(self) -> str | None:
        return self.headers.get("Origin")


@dataclass(frozen=True, slots=True)
class MessageConnect:
    """To the connection's process when the connection starts; ``id`` is its alias.

    ``remote_addr``/``local_addr`` are ``"host:port"``, an IPv6 host bracketed
    (``"[::1]:8080"``), on every serving path.
    """

    id: Alias
    remote_addr: str
    local_addr: str
    path: str = "/"
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    subprotocol: str | None = None


@dataclass(frozen=True, slots=True)
class MessageDisconnect:
    """To the connection's process when the connection has ended (its last message).

    ``code`` is the close code (``None`` if the peer vanished without one, e.g.
    1006 situations report ``1006``); ``reason`` the close reason text.
    """

    id: Alias
    code: int | None = None
    reason: str = ""


_NO_ALIAS = Alias("", 0, (0, 0, 0))  # the id of a message built to send (never delivered to)


@dataclass(slots=True)
class Message:
    """A WebSocket message: received from the peer, or to send (to the connection's alias).

    ``type`` 0/``None`` means TEXT when sending; ``id`` is ignored when sending. A received
    message's ``id`` is always its connection's alias (a message built to send gets an
    empty alias, like Go's zero ``gen.Alias``), so ``send_alias(message.id, ...)`` type-checks.
    Sending CLOSE closes the connection: build it with :meth:`Message.close`, which
    checks the code now. A CLOSE built by hand (body: :func:`close_body`, empty
    meaning 1000) is checked when the connection gets it: a code an endpoint may not
    send (999, 1005, 5000...) or a body of one byte closes with 1011 instead, with a
    warning logged; a reason over 123 bytes is cut. PING and PONG send control frames
    (body at most 125 bytes).
    """

    id: Alias = _NO_ALIAS
    type: MessageType | int | None = MessageType.TEXT
    body: bytes = b""

    @classmethod
    def close(cls, code: int = 1000, reason: str = "") -> Message:
        """A CLOSE message to send to a connection's alias, checked now.

        ``code`` must be one an endpoint may send (RFC 6455 §7.4): 1000-1003,
        1007-1014 or 3000-4999 (never 1004-1006, 1015, below 1000 or from 5000 on);
        ``reason`` is cut to 123 UTF-8 bytes at a character boundary (a close frame's
        payload is at most 125 bytes). Raises ``ValueError`` for any other code and
        ``TypeError`` if ``code`` is not an int or ``reason`` not a str.
        """
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"a close code is an int, got {code!r}")
        if not isinstance(reason, str):
            raise TypeError(f"a close reason is a str, got {reason!r}")
        if not sendable_close_code(code):
            raise ValueError(
                f"close code {code} can not be sent: use 1000-1003, 1007-1014 or 3000-4999 (RFC 6455 §7.4)"
            )
        return cls(type=MessageType.CLOSE, body=close_body(code, cut_close_reason(reason)))


_CLOSE_CODE = struct.Struct("!H")


MAX_CLOSE_REASON = 123  # bytes: a control frame's payload is at most 125, 2 of them the code
# RFC 6455 §7.4.1 and the IANA registry (1012-1014 as browsers and servers accept them)
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def sendable_close_code(code: int) -> bool:
    """True if an endpoint may put ``code`` in a close frame: 1000-1003, 1007-1014, 3000-4999.

    1004 is reserved; 1005, 1006 and 1015 only report a condition and never go on the
    wire; codes below 1000 are unused and from 5000 on undefined. Raises nothing.
    """
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999


def cut_close_reason(reason: str) -> str:
    """``reason`` cut to at most 123 UTF-8 bytes at a character boundary. Raises nothing."""
    data = reason.encode("utf-8", "replace")
    if len(data) <= MAX_CLOSE_REASON:
        return reason
    return data[:MAX_CLOSE_REASON].decode("utf-8", "ignore")  # "ignore" drops a cut character


def close_body(code: int = 1000, reason: str = "") -> bytes:
    """A CLOSE message body: the 2-byte code then the UTF-8 reason (gorilla's FormatCloseMessage).

    It checks nothing (a test may need an invalid frame): use :meth:`Message.close` to
    build a close a browser will accept. Raises ``struct.error`` if ``code`` is not in 0..65535.
    """
    return _CLOSE_CODE.pack(code) + reason.encode()


def parse_close_body(body: bytes) -> tuple[int, str]:
    """The (code, reason) of a CLOSE body; empty means 1000."""
    if len(body) < 2:
        return 1000, ""
    return _CLOSE_CODE.unpack_from(body)[0], body[2:].decode("utf-8", "replace")
