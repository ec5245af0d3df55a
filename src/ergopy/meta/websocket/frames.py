"""Sans-I/O encoding of outgoing WebSocket frames (RFC 6455, RFC 7692).

Reading is aiohttp's C-accelerated parser; writing is ours, so frames are built
without awaiting anything and many can be written to the socket in one call.
A client masks its frames; a connection that negotiated permessage-deflate
compresses data frames (never control frames).
"""

from __future__ import annotations

import os
import struct
import zlib

from aiohttp._websocket.helpers import websocket_mask

__all__ = ["FrameEncoder"]

_H1 = struct.Struct("!BB")
_H2 = struct.Struct("!BBH")
_H8 = struct.Struct("!BBQ")
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_CONTROL = 0x8


class FrameEncoder:
    """Builds complete frames; one per connection (it holds the compressor's context).

    ``compress``: the negotiated window bits (0: no compression); ``no_takeover``:
    reset the compressor after every message.
    """

    __slots__ = ("_compressor", "_mask", "_no_takeover", "_wbits")

    def __init__(self, *, mask: bool, compress: int = 0, no_takeover: bool = False) -> None:
        self._mask = mask
        self._wbits = compress
        self._no_takeover = no_takeover
        self._compressor: zlib._Compress | None = None

    def encode(self, opcode: int, payload: bytes) -> list[bytes]:
        """The frame for ``payload`` as one or two byte strings (header, payload) to write in order."""
        first = 0x80 | opcode
        if self._wbits and not opcode & _CONTROL:
            payload = self._deflate(payload)
            first |= 0x40  # RSV1: compressed
        n = len(payload)
        if not self._mask:
            if n < 126:
                return [_H1.pack(first, n) + payload] if n < 1024 else [_H1.pack(first, n), payload]
            header = _H2.pack(first, 126, n) if n < 65536 else _H8.pack(first, 127, n)
            return [header + payload] if n < 4096 else [header, payload]
        if n < 126:
            header = _H1.pack(first, 0x80 | n)
        elif n < 65536:
            header = _H2.pack(first, 0x80 | 126, n)
        else:
            header = _H8.pack(first, 0x80 | 127, n)
        key = os.urandom(4)
        data = bytearray(payload)
        websocket_mask(key, data)
        return [header + key, bytes(data)]

    def _deflate(self, payload: bytes) -> bytes:
        c = self._compressor
        if c is None:
            c = self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._wbits)
        data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
        if self._no_takeover:
            self._compressor = None
        if data.endswith(_DEFLATE_TAIL):
            data = data[:-4]
        return data or b"\x00"
