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
* **Client response lifetime.** aiohttp's client connection is closed when its
  ``ClientWebSocketResponse`` is garbage-collected; a client transport keeps it
  (``AiohttpTransport(owner=...)``).
"""

from __future__ import annotations

__all__ = ["reader_limit", "valid_close_code"]

# RFC 6455 §7.4.1 and the IANA registry: the codes a peer may put in a close frame.
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def reader_limit(max_message_size: int) -> int:
    """The ``max_msg_size`` to give aiohttp so that a message of exactly ``max_message_size`` passes."""
    return max_message_size + 1 if max_message_size > 0 else 0


def valid_close_code(code: int) -> bool:
    """True if a peer may send ``code`` in a close frame (gorilla's isValidReceivedCloseCode)."""
    return code in _VALID_CLOSE_CODES or 3000 <= code <= 4999
