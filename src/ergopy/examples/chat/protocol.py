"""The chat's wire protocol: JSON text frames between the page and a chat worker.

Client to server::

    {"type": "join", "nick": "alice", "room": "lobby"}
    {"type": "say", "text": "hello"}
    {"type": "leave"}

Server to client::

    {"type": "joined", "nick": "alice", "room": "lobby", "count": 3}
    {"type": "message", "nick": "alice", "text": "hello", "room": "lobby", "ts": 1700000000000}
    {"type": "presence", "event": "join" | "leave", "nick": "alice", "room": "lobby", "count": 3}
    {"type": "presence", "event": "count", "nick": "", "room": "lobby", "count": 5000}  (big rooms)
    {"type": "left", "room": "lobby"}            (after a leave, and before "joined" when a join moves rooms)
    {"type": "moved", "room": "lobby"}           (the room's node is gone or the room moved to another
                                                  node: the server joins you again there, then sends
                                                  "joined" with "moved": true; lines meanwhile are lost)
    {"type": "error", "error": "what was wrong"}

``parse`` turns a frame into a :class:`Join`, :class:`Say` or :class:`Leave`, or
raises :class:`ProtocolError` with a message meant for the client. The encoders
return the frame's bytes, built once and shared by every recipient.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_FRAME",
    "MAX_NICK",
    "MAX_ROOM",
    "MAX_TEXT",
    "Join",
    "Leave",
    "ProtocolError",
    "Say",
    "encode",
    "error",
    "message",
    "moved",
    "parse",
    "presence",
]

MAX_NICK = 32  # characters; fits one line of the page's member display
MAX_ROOM = 32  # characters; a room name becomes a process and event name ("room:<name>")
MAX_TEXT = 2000  # characters; a chat line, not a file transfer
MAX_FRAME = 16 * 1024  # bytes; the largest valid frame is ~8 KiB (2000 4-byte characters): larger closes with 1009

_ROOM = re.compile(r"[A-Za-z0-9_.-]+")  # safe inside a registered name and a URL


class ProtocolError(ValueError):
    """A frame the server refuses; ``str(e)`` is sent back to the client as an error message."""


@dataclass(frozen=True, slots=True)
class Join:
    nick: str
    room: str


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class Leave:
    pass


def parse(body: bytes) -> Join | Say | Leave:
    """Decode and validate one client frame. Raises :class:`ProtocolError`."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message is a JSON object with a 'type'")
    kind = data.get("type")
    if kind == "join":
        return Join(_nick(data.get("nick")), _room(data.get("room")))
    if kind == "say":
        return Say(_text(data.get("text")))
    if kind == "leave":
        return Leave()
    raise ProtocolError(f"unknown message type {kind!r}: use join, say or leave")


def _nick(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("'nick' must be a non-empty string")
    nick = value.strip()
    if len(nick) > MAX_NICK:
        raise ProtocolError(f"'nick' is longer than {MAX_NICK} characters")
    if not nick.isprintable():
        raise ProtocolError("'nick' contains control characters")
    return nick


def _room(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError("'room' must be a non-empty string")
    if len(value) > MAX_ROOM:
        raise ProtocolError(f"'room' is longer than {MAX_ROOM} characters")
    if not _ROOM.fullmatch(value):
        raise ProtocolError("'room' may contain only letters, digits, '_', '.' and '-'")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("'text' must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ProtocolError(f"'text' is longer than {MAX_TEXT} characters")
    return value


def encode(payload: dict[str, Any]) -> bytes:
    """One server frame as compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def error(text: str) -> bytes:
    return encode({"type": "error", "error": text})


def message(room: str, nick: str, text: str) -> bytes:
    """A chat line; ``ts`` is the server's time in milliseconds since the epoch (a JS ``Date``)."""
    return encode({"type": "message", "nick": nick, "text": text, "room": room, "ts": time.time_ns() // 1_000_000})


def moved(room: str) -> bytes:
    """The room is moving to another node; the member is joined again there."""
    return encode({"type": "moved", "room": room})


def presence(room: str, event: str, nick: str, count: int) -> bytes:
    return encode({"type": "presence", "event": event, "nick": nick, "room": room, "count": count})
