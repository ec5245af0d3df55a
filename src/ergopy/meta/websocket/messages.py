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
    "parse_close_body",
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
    ``remote_addr`` is ``"host:port"``.
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
    """To the connection's process when the connection starts; ``id`` is its alias."""

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
    Sending CLOSE closes the connection; its body is a close payload (see
    :func:`close_body`), empty meaning 1000. PING and PONG send control frames
    (body at most 125 bytes).
    """

    id: Alias = _NO_ALIAS
    type: MessageType | int | None = MessageType.TEXT
    body: bytes = b""


_CLOSE_CODE = struct.Struct("!H")


def close_body(code: int = 1000, reason: str = "") -> bytes:
    """A CLOSE message body: the 2-byte code then the UTF-8 reason (gorilla's FormatCloseMessage)."""
    return _CLOSE_CODE.pack(code) + reason.encode()


def parse_close_body(body: bytes) -> tuple[int, str]:
    """The (code, reason) of a CLOSE body; empty means 1000."""
    if len(body) < 2:
        return 1000, ""
    return _CLOSE_CODE.unpack_from(body)[0], body[2:].decode("utf-8", "replace")
