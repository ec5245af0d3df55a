"""The opening handshake (RFC 6455 §4, RFC 7692 §5), both sides, on public APIs only.

Server: :func:`parse_head` reads a request head the web server's front protocol
saw first on a connection; :func:`handshake` checks an upgrade request and builds
the 101. Client: :func:`client_request` and :func:`check_response`. The socket is
then given to :class:`~.engine.WSProtocol` with ``transport.set_protocol`` (asyncio's
public API): an idle connection costs its socket, that protocol and its meta-process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "HandshakeError",
    "RequestHead",
    "accept_key",
    "check_response",
    "choose_subprotocol",
    "client_request",
    "handshake",
    "negotiate_deflate",
    "parse_head",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class HandshakeError(Exception):
    """The request can not be upgraded: answer ``status`` with ``text``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class RequestHead(NamedTuple):
    """A parsed HTTP/1.1 request head: method, target (path and query as sent) and headers."""

    method: str
    target: str
    version: str
    headers: CIMultiDictProxy[str]


def parse_head(head: bytes, max_line: int, max_field: int) -> RequestHead | None:
    """The request head ``head`` (without the blank line), or None if it is not one this
    server takes apart itself (malformed, a line over a limit, obsolete folding): then the
    general HTTP server gets the bytes and answers as it does. Raises nothing."""
    lines = head.split(b"\r\n")
    line = lines[0]
    if len(line) > max_line:
        return None
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    try:
        method, target, version = (p.decode("ascii") for p in parts)
    except UnicodeDecodeError:
        return None
    if not target.startswith("/") or not version.startswith("HTTP/1."):
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for raw in lines[1:]:
        if len(raw) > max_field or not raw or raw[0] in b" \t":
            return None
        name, sep, value = raw.partition(b":")
        if not sep or not name:
            return None
        n = name.decode("latin-1")
        if not set(n) <= _TOKEN:
            return None
        headers.add(n, value.strip(b" \t").decode("latin-1"))
    return RequestHead(method, target, version, CIMultiDictProxy(headers))


def _tokens(values: Sequence[str]) -> list[str]:
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def is_upgrade(headers: Mapping[str, str]) -> bool:
    """True if the request asks for a WebSocket (``Upgrade: websocket``)."""
    return headers.get("Upgrade", "").strip().lower() == "websocket"


def choose_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first of the server's ``supported`` subprotocols the client offered (gorilla's rule:
    the server's preference order decides), or None. ``offered``: the header values."""
    tokens = set(_tokens(offered))
    return next((p for p in supported if p in tokens), None)


def accept_key(key: str) -> bytes:
    """``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())


def _params(offer: str) -> tuple[str, dict[str, str | None]] | None:
    parts = [p.strip() for p in offer.split(";")]
    params: dict[str, str | None] = {}
    for p in parts[1:]:
        if not p:
            continue
        name, sep, value = p.partition("=")
        name = name.strip().lower()
        if name in params:
            return None  # a parameter twice: RFC 7692 §7 says decline the offer
        params[name] = value.strip().strip('"') if sep else None
    return parts[0].lower(), params


def negotiate_deflate(header: str | None) -> tuple[int, bool, str]:
    """The server's choice among the client's permessage-deflate offers (RFC 7692): the window
    bits we compress with (0: no compression), whether we reset after each message, and the
    response header value. The first acceptable offer wins; zlib has no 8-bit raw window,
    so an offer that requires one is skipped."""
    if not header:
        return 0, False, ""
    for offer in header.split(","):
        parsed = _params(offer)
        if parsed is None or parsed[0] != "permessage-deflate":
            continue
        params = parsed[1]
        wbits, no_takeover, ok = 15, False, True
        reply = ["permessage-deflate"]
        for name, value in params.items():
            if name == "server_no_context_takeover" and value is None:
                no_takeover = True
                reply.append("server_no_context_takeover")
            elif name == "client_no_context_takeover" and value is None:
                reply.append("client_no_context_takeover")
            elif name == "server_max_window_bits":
                if value is None or not value.isdigit() or not 8 <= int(value) <= 15:
                    ok = False
                elif int(value) < 9:
                    ok = False  # zlib can not compress with a 256-byte window
                else:
                    wbits = int(value)
                    reply.append(f"server_max_window_bits={wbits}")
            elif name == "client_max_window_bits":
                if value is not None and (not value.isdigit() or not 8 <= int(value) <= 15):
                    ok = False
            else:
                ok = False
        if ok:
            return wbits, no_takeover, "; ".join(reply)
    return 0, False, ""


def handshake(
    headers: Mapping[str, str], subprotocols: Sequence[str], compression: bool
) -> tuple[bytes, str | None, int, bool]:
    """Check an upgrade request (method and version are checked before); return the 101 head,
    the chosen subprotocol, the negotiated deflate window bits (0: none) and no-takeover.
    Raises :class:`HandshakeError` (400) for a request that is not a valid upgrade."""
    if not is_upgrade(headers):
        raise HandshakeError(400, 'Bad Request: can "Upgrade" only to "websocket"')
    getall = getattr(headers, "getall", None)
    connection = getall("Connection", ()) if getall is not None else [headers.get("Connection", "")]
    if "upgrade" not in (t.lower() for t in _tokens(connection)):
        raise HandshakeError(400, "Bad Request: no Connection: upgrade header")
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise HandshakeError(400, "Bad Request: invalid Sec-WebSocket-Key")
    head = [_HEAD, accept_key(key)]
    subprotocol = None
    if subprotocols:
        offered = (
            getall("Sec-WebSocket-Protocol", ()) if getall is not None else [headers.get("Sec-WebSocket-Protocol", "")]
        )
        subprotocol = choose_subprotocol(offered, subprotocols)
        if subprotocol is not None:
            head += [b"\r\nSec-WebSocket-Protocol: ", subprotocol.encode("utf-8", "surrogateescape")]
    compress, no_takeover = 0, False
    if compression:
        offers = ", ".join(getall("Sec-WebSocket-Extensions", ())) if getall is not None else None
        compress, no_takeover, reply = negotiate_deflate(offers or headers.get("Sec-WebSocket-Extensions"))
        if compress:
            head += [b"\r\nSec-WebSocket-Extensions: ", reply.encode()]
    head.append(b"\r\n\r\n")
    return b"".join(head), subprotocol, compress, no_takeover


def client_request(
    host: str, target: str, headers: Mapping[str, str], subprotocols: Sequence[str], compression: bool
) -> tuple[bytes, str]:
    """The client's upgrade request and its ``Sec-WebSocket-Key``."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    if compression:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    taken = {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}
    for name, value in headers.items():
        if name.lower() not in taken:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def check_response(
    head: bytes, key: str, subprotocols: Sequence[str], compression: bool
) -> tuple[CIMultiDictProxy[str], str | None, int, bool]:
    """Check the server's answer to :func:`client_request`: its headers, the subprotocol, the
    window bits we compress with (0: none) and whether we reset after each message.
    Raises :class:`HandshakeError` with the status when it is not a valid 101."""
    lines = head.split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HandshakeError(0, f"not an HTTP response: {status_line[:100]!r}")
    status = int(parts[1])
    headers: CIMultiDict[str] = CIMultiDict()
    for raw in lines[1:]:
        name, sep, value = raw.partition(b":")
        if sep:
            headers.add(name.decode("latin-1").strip(), value.strip().decode("latin-1"))
    if status != 101:
        raise HandshakeError(status, f"the server answered {status_line}")
    if not is_upgrade(headers) or "upgrade" not in (t.lower() for t in _tokens(headers.getall("Connection", ()))):
        raise HandshakeError(status, "the 101 does not upgrade to websocket")
    if headers.get("Sec-WebSocket-Accept", "").strip().encode() != accept_key(key):
        raise HandshakeError(status, "invalid Sec-WebSocket-Accept")
    subprotocol = headers.get("Sec-WebSocket-Protocol")
    if subprotocol is not None and subprotocol not in subprotocols:
        raise HandshakeError(status, f"the server chose subprotocol {subprotocol!r}, not offered")
    compress, no_takeover = 0, False
    ext = headers.get("Sec-WebSocket-Extensions")
    if ext:
        parsed = _params(ext)
        if not compression or parsed is None or parsed[0] != "permessage-deflate" or "," in ext:
            raise HandshakeError(status, f"the server chose an extension not offered: {ext[:100]!r}")
        compress = 15
        for pn, pv in parsed[1].items():
            if pn == "client_no_context_takeover":
                no_takeover = True
            elif pn == "client_max_window_bits" and pv and pv.isdigit() and 9 <= int(pv) <= 15:
                compress = int(pv)
            elif pn in ("server_no_context_takeover", "server_max_window_bits", "client_max_window_bits"):
                pass
            else:
                raise HandshakeError(status, f"unknown permessage-deflate parameter {pn!r}")
    return CIMultiDictProxy(headers), subprotocol or None, compress, no_takeover
