"""Corrections to aiohttp's WebSocket reader, kept in one place.

aiohttp's parser reads our frames; where its verdict disagrees with RFC 6455 or
with our documented limits, the transport applies these instead (each one has a
regression test on a real socket in ``tests/test_ws_conformance_regressions.py``):

* **Size limit, off by one.** aiohttp refuses a message of exactly
  ``max_msg_size`` bytes (it tests ``>=``), while ``max_message_size`` means
  "larger closes with 1009". We give aiohttp one byte more (:func:`reader_limit`)
  and the transport checks the exact limit itself. (Autobahn 9.1.6 and 9.2.6: a
  16 MiB message against a 16 MiB limit.)
* **Close codes.** aiohttp accepts 1006 and codes of 5000 and more in a received
  close frame. RFC 6455 §7.4.1 forbids 1005, 1006 and 1015 on the wire and
  defines nothing above 4999; :func:`valid_close_code` is gorilla's rule, so a bad
  code fails the connection with 1002. (Autobahn 7.9.5.)
* **Client response lifetime.** aiohttp closes a client socket when its
  ``ClientResponse`` is garbage-collected, and logs "Unclosed connection" for one
  never closed; a client transport keeps it while open and closes it when it
  finishes (``AiohttpTransport(owner=...)``).
* **Unmasked client frames.** aiohttp's server accepts them; RFC 6455 §5.1 says
  the server must fail the connection (gorilla: 1002 "bad MASK").
  The handler puts :class:`ClientFrameMaskCheck` in front of the parser when it
  upgrades (``websocket.upgrade``): it reads only frame headers and skips payloads.
"""

from __future__ import annotations

from typing import Any

from aiohttp._websocket.models import WebSocketError

__all__ = ["ClientFrameMaskCheck", "reader_limit", "valid_close_code"]

# RFC 6455 §7.4.1 and the IANA registry: the codes a peer may put in a close frame.
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def reader_limit(max_message_size: int) -> int:
    """The ``max_msg_size`` to give aiohttp so that a message of exactly ``max_message_size`` passes."""
    return max_message_size + 1 if max_message_size > 0 else 0


def valid_close_code(code: int) -> bool:
    """True if a peer may send ``code`` in a close frame (gorilla's isValidReceivedCloseCode)."""
    return code in _VALID_CLOSE_CODES or 3000 <= code <= 4999


class ClientFrameMaskCheck:
    """Sits in front of aiohttp's server-side ``WebSocketReader``: a frame without the mask
    bit fails the connection with 1002. Everything before that frame is delivered."""

    __slots__ = ("_failed", "_head", "_inner", "_queue", "_skip")

    def __init__(self, inner: Any, queue: Any) -> None:
        self._inner = inner  # aiohttp's WebSocketReader
        self._queue = queue  # its WebSocketDataQueue: the transport reads the error from it
        self._skip = 0  # payload bytes of the current frame not yet seen
        self._head = b""  # the start of a frame header split across reads
        self._failed = False

    def feed_data(self, data: Any) -> tuple[bool, bytes]:
        if self._failed:
            return False, b""
        skip = self._skip
        if skip >= len(data) and not self._head:  # inside a payload: the common case for big messages
            self._skip = skip - len(data)
            return self._inner.feed_data(data)  # type: ignore[no-any-return]
        head = self._head
        view = head + data if head else data
        end = len(view)
        pos = skip
        while pos + 2 <= end:
            second = view[pos + 1]
            if not second & 0x80:
                before = pos - len(head)  # the bytes of ``data`` ahead of this frame
                if before > 0:
                    self._inner.feed_data(data[:before])
                self._failed = True
                self._queue.set_exception(WebSocketError(1002, "a client frame must be masked"))
                return False, b""
            n = second & 0x7F
            size = 6 if n < 126 else 8 if n == 126 else 14
            if pos + size > end:
                break
            if n == 126:
                n = int.from_bytes(view[pos + 2 : pos + 4], "big")
            elif n == 127:
                n = int.from_bytes(view[pos + 2 : pos + 10], "big")
            pos += size + n
        if pos >= end:
            self._skip, self._head = pos - end, b""
        else:
            self._skip, self._head = 0, bytes(view[pos:])
        return self._inner.feed_data(data)  # type: ignore[no-any-return]

    def feed_eof(self) -> None:
        self._inner.feed_eof()

