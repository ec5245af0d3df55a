"""ergopy's WebSocket engine: RFC 6455 frames on a plain ``asyncio.Protocol`` (public APIs only).

One object per connection is the socket's protocol and the connection's
:class:`~.transport.Transport`. Reading pushes: ``data_received`` parses every
complete frame in the chunk and hands each data message straight to the
connection's callback (``attach``), so a message costs no task switch and no
future; control frames are answered here. Writing: frames queued in one loop turn
go to the socket in one ``writelines`` call (one ``call_soon`` per loop turn for all
connections), and
``buffered()`` is the real transport buffer, so backpressure policies see what the
kernel does.

The parser checks what RFC 6455 and gorilla check: masking (a client must mask, a
server must not), reserved bits (RSV1 only with permessage-deflate, on a message's
first frame), opcodes, control frames (final, at most 125 bytes), fragmentation
order, close codes and reasons, UTF-8 of text messages, and the message size limit
(1009) before a payload is buffered. Payloads are unmasked by a small C extension
(``_mask.c``, built when a compiler is there) or else with one big-integer XOR
(``py_unmask``); large frames are collected chunk by chunk, never re-joined per read.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import socket
import sys
import weakref
import zlib
from collections.abc import Callable
from typing import Any

from ...node.runner import after_run
from .messages import close_body, cut_close_reason, sendable_close_code
from .transport import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Transport, address

if sys.platform.startswith("linux"):
    import fcntl
    import termios

__all__ = ["WSProtocol", "encode_frame", "py_unmask", "unmask", "valid_close_code"]

# RFC 6455 §7.4.1 and the IANA registry: the codes a peer may put in a close frame.
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_BIG = 1 << 16  # a frame at least this long is collected in pieces instead of re-joined per read
# A server's header of a frame under 126 bytes, by first byte and length, for the first bytes
# of final text and binary frames, compressed or not, and of control frames (about 30 KB);
# the others are built per frame
_SHORT_HEADERS: list[list[bytes] | None] = [None] * 256
for _first in (0x81, 0x82, 0xC1, 0xC2, 0x88, 0x89, 0x8A):
    _SHORT_HEADERS[_first] = [bytes((_first, _n)) for _n in range(126)]
del _first
_CLOSE_GRACE = 2.0  # seconds a closing side waits for the peer's close frame
_PAUSE_RESUME_ERRORS = (AttributeError, NotImplementedError, RuntimeError)
# struct tcp_info's u64 tcpi_bytes_acked ends at byte 128 (Linux >= 4.1); elsewhere progress() falls back
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_TCPI_BYTES_ACKED_END = 128


def valid_close_code(code: int) -> bool:
    """True if a peer may send ``code`` in a close frame (gorilla's isValidReceivedCloseCode)."""
    return code in _VALID_CLOSE_CODES or 3000 <= code <= 4999


# _REPEAT[w]: 1 in each of w 32-bit words, so key * _REPEAT[w] is the key repeated w times (no carries)
_REPEAT_WORDS = 128  # up to 512-byte payloads (the table holds about 32 KB)
_REPEAT = [0] * (_REPEAT_WORDS + 1)
for _w in range(1, _REPEAT_WORDS + 1):
    _REPEAT[_w] = _REPEAT[_w - 1] | 1 << (32 * (_w - 1))


def py_unmask(key: bytes, payload: bytes) -> bytes:
    """``payload`` XOR the 4-byte ``key`` repeated (RFC 6455 §5.3), in Python: ``unmask``
    where the C extension was not built. Raises nothing for bytes arguments."""
    n = len(payload)
    if not n:
        return b""
    w = (n + 3) >> 2
    if w <= _REPEAT_WORDS:
        x = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little") * _REPEAT[w]
        return x.to_bytes(w << 2, "little")[:n] if n & 3 else x.to_bytes(n, "little")
    k = int.from_bytes((key * ((n >> 2) + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ k).to_bytes(n, "little")


try:
    # the C one (eight bytes a step, 5-10x faster on a small frame), built at install when a
    # C compiler was there; "unmask(key, payload) -> bytes", the same result as py_unmask
    from ._mask import unmask
except ImportError:  # pragma: no cover - installed without a C compiler
    unmask = py_unmask


def encode_frame(first: int, payload: bytes, mask: bool) -> list[bytes]:
    """One frame (``first``: FIN, RSV and opcode bits) as one or two byte strings to write in order."""
    n = len(payload)
    if not mask:
        if n < 126:
            return [bytes((first, n)) + payload] if n < 1024 else [bytes((first, n)), payload]
        header = bytes((first, 126)) + n.to_bytes(2, "big") if n < 65536 else bytes((first, 127)) + n.to_bytes(8, "big")
        return [header + payload] if n < 4096 else [header, payload]
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return [header + key, unmask(key, payload)]


class _Flusher:
    """One per event loop: the connections with frames queued this loop turn, written by one
    ``call_soon`` callback for all of them (not one callback per connection), or, for frames
    queued during a node's run of its run queue (a worker's reply), at that run's end.

    It holds its loop weakly: it is the value of ``_FLUSHERS[loop]`` and its ``flush_now`` is
    one of ``after_run``'s hooks for that loop, and a strong reference from either value to
    its key would keep every closed loop, and all it refers to, alive for ever."""

    __slots__ = ("_compressors", "_loop", "_pending", "_run_now", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._pending: list[WSProtocol] = []
        self._scheduled = False
        self._compressors: dict[int, Any] = {}
        self._run_now = after_run(loop, self.flush_now)

    def compressor(self, wbits: int) -> Any:
        """The loop's shared compressor for ``wbits`` (connections without context takeover)."""
        c = self._compressors.get(wbits)
        if c is None:
            c = self._compressors[wbits] = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -wbits)
        return c

    def add(self, proto: WSProtocol) -> None:
        self._pending.append(proto)
        # a node's run in progress writes them at its end (flush_now is its hook): a callback
        # of our own would find nothing to write (one no-op loop callback per run)
        if not self._scheduled and not self._run_now.running:
            loop = self._loop()
            if loop is not None:  # always: frames are queued by code running on the loop
                self._scheduled = True
                loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.flush_now()

    def flush_now(self) -> None:
        """Write what is queued now (the end of a node's run of its run queue: see
        ``node.runner``; a callback scheduled before the run then finds nothing to do)."""
        if self._pending:
            pending, self._pending = self._pending, []
            for p in pending:
                p._flush()


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = weakref.WeakKeyDictionary()


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    f = _FLUSHERS.get(loop)
    if f is None:
        f = _FLUSHERS[loop] = _Flusher(loop)
    return f


class _Fail(Exception):
    """A protocol error found while parsing: fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WSProtocol(asyncio.Protocol, Transport):
    """An upgraded socket: the asyncio protocol that parses its frames and the connection's transport.

    ``client``: this side is the client (it masks what it sends, refuses masked frames).
    ``compress``: negotiated deflate window bits for what we send (0: no permessage-deflate);
    ``no_takeover``: reset our compressor after every message; ``compress_threshold``: shorter
    messages are sent uncompressed (RSV1 clear, as RFC 7692 allows). ``max_message_size``: a
    larger message fails with 1009 (0: no limit). ``on_lost``: called once when the socket is gone.
    """

    push = True
    __slots__ = (
        "_big",
        "_big_len",
        "_big_need",
        "_buf",
        "_client",
        "_closed",
        "_compressor",
        "_draining",
        "_early",
        "_flush_scheduled",
        "_flusher",
        "_frag",
        "_frag_len",
        "_frag_op",
        "_frag_rsv1",
        "_grace",
        "_inflater",
        "_loop",
        "_lost_reason",
        "_mask_bit",
        "_max",
        "_no_takeover",
        "_on_lost",
        "_on_message",
        "_out",
        "_out_bytes",
        "_paused",
        "_threshold",
        "_tp",
        "_utf8",
        "_waiter",
        "_wake",
        "_wbits",
        "activity",
        "close_code",
        "close_reason",
        "close_sent",
        "compression",
        "local_addr",
        "remote_addr",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        client: bool,
        compress: int = 0,
        no_takeover: bool = False,
        compress_threshold: int = 0,
        subprotocol: str | None = None,
        max_message_size: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._flusher = _flusher(self._loop)
        self._client = client
        self._mask_bit = 0 if client else 0x80  # what a received frame's mask bit must be
        self._max = max_message_size
        self._wbits = compress
        self._no_takeover = no_takeover
        self._threshold = compress_threshold
        self._compressor: Any = None
        self._inflater: Any = None
        self._on_lost = on_lost
        self._tp: asyncio.Transport | None = None
        self._buf = b""  # the start of an incomplete frame (short)
        self._big: list[bytes] | None = None  # pieces of an incomplete large frame
        self._big_len = 0
        self._big_need = 0
        self._frag_op = 0  # opcode of the fragmented message being read (0: none)
        self._frag_rsv1 = False
        self._frag: list[bytes] = []
        self._frag_len = 0
        self._utf8: Any = None  # incremental UTF-8 check of a fragmented text message
        self._on_message: Callable[[int, bytes], None] | None = None
        self._early: list[tuple[int, bytes]] | None = None  # messages read before attach()
        self._paused = False  # parsing stopped (flood control, or no callback yet)
        self._waiter: asyncio.Future[bool] | None = None
        self._wake = False  # a pause that start() has not seen yet
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._closed = False
        self._grace: asyncio.TimerHandle | None = None
        self._draining = False  # the socket is gone; frames held back are still to be delivered
        self._lost_reason = ""
        self.subprotocol = subprotocol
        self.compression = compress > 0
        self.remote_addr = ""
        self.local_addr = ""
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_sent = False
        self.activity = 0

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Bind the socket's transport (called by asyncio, or by whoever hands the socket over)."""
        tp: Any = transport
        self._tp = tp
        self.remote_addr = address(tp.get_extra_info("peername"))
        self.local_addr = address(tp.get_extra_info("sockname"))
        if self._paused:
            self._pause_transport()

    def data_received(self, data: bytes) -> None:
        """Parse ``data``: deliver every complete message, keep the rest."""
        if self._closed:
            return
        big = self._big
        if big is not None:
            big.append(data)
            self._big_len += len(data)
            if self._big_len < self._big_need:
                return
            self._big = None
            data = b"".join(big)
        elif self._buf:
            data = self._buf + data
            self._buf = b""
        self._parse(data)

    def eof_received(self) -> bool | None:
        """The peer shut its side: the connection ends (1006 unless a close frame came first)."""
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket is gone: the connection ends with 1006 unless it had ended already. Frames
        read but held back (reading paused) are still delivered first, on ``resume()``."""
        self._lost_reason = str(exc) if exc else "connection closed without a close frame"
        if self._paused and (self._buf or self._early) and not self._closed:
            self._draining = True
        else:
            self._ended(1006, self._lost_reason)
            self._finish()
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    # ---- parsing -------------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        try:
            self._parse_frames(data)
        except _Fail as e:
            self._fail(e.code, e.reason)

    def _parse_frames(self, data: bytes) -> None:
        pos = 0
        end = len(data)
        mask_bit = self._mask_bit
        while pos < end:
            if self._paused or self._closed:
                break
            if end - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            if b1 & 0x80 != mask_bit:
                raise _Fail(1002, "a client frame must be masked" if mask_bit else "a server frame must not be masked")
            n = b1 & 0x7F
            h = pos + 2
            if n == 126:
                if end - h < 2:
                    break
                n = int.from_bytes(data[h : h + 2], "big")
                h += 2
            elif n == 127:
                if end - h < 8:
                    break
                n = int.from_bytes(data[h : h + 8], "big")
                if n >> 63:
                    raise _Fail(1002, "frame length with the most significant bit set")
                h += 8
            op = b0 & 0x0F
            if op & 0x8:
                if n > 125:
                    raise _Fail(1002, "control frame longer than 125 bytes")
                if not b0 & 0x80:
                    raise _Fail(1002, "fragmented control frame")
            elif self._max and self._frag_len + n > self._max:
                if not (b0 & 0x40 or self._frag_rsv1):
                    raise _Fail(1009, f"message of more than {self._max} bytes exceeds the limit")
                if self._frag_len + n > 2 * self._max + 1024:
                    # compressed: the inflated size is checked at the end; this bounds what is held till then
                    raise _Fail(1009, f"compressed message of more than {2 * self._max + 1024} bytes")
            start = h + 4 if mask_bit else h
            stop = start + n
            if stop > end:
                if n >= _BIG:
                    self._big = [data[pos:]]
                    self._big_len = end - pos
                    self._big_need = stop - pos
                else:
                    self._buf = data[pos:]
                return
            payload = data[start:stop]
            if mask_bit and n:
                payload = unmask(data[h:start], payload)
            pos = stop
            cb = self._on_message
            if (b0 == 0x82 or b0 == 0x81) and cb is not None and not self._frag_op:
                # the common case: a whole text or binary message in one uncompressed frame
                self.activity += 1
                if self._max and n > self._max:
                    raise _Fail(1009, f"message of {n} bytes exceeds the limit of {self._max}")
                if b0 == 0x81 and not payload.isascii():
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise _Fail(1007, "invalid UTF-8 in a text message") from None
                cb(op, payload)
                continue
            self._frame(b0, op, payload)
        if pos < end and not self._closed:
            self._buf = data[pos:]

    def _frame(self, b0: int, op: int, payload: bytes) -> None:
        self.activity += 1
        rsv = b0 & 0x70
        if op & 0x8:
            if rsv:
                raise _Fail(1002, "reserved bits set on a control frame")
            if op == OP_PING:
                if not self.close_sent:
                    self.send(OP_PONG, payload)
            elif op == OP_PONG:
                pass
            elif op == OP_CLOSE:
                self._close_received(payload)
            else:
                raise _Fail(1002, f"reserved opcode {op}")
            return
        rsv1 = bool(rsv & 0x40)
        if rsv & 0x30 or (rsv1 and not self.compression_in()):
            raise _Fail(1002, "reserved bits set")
        fin = b0 & 0x80
        if op == 0:
            if not self._frag_op:
                raise _Fail(1002, "continuation frame without a message to continue")
            if rsv1:
                raise _Fail(1002, "RSV1 set on a continuation frame")
            self._frag.append(payload)
            self._frag_len += len(payload)
            utf8 = self._utf8
            if utf8 is not None:
                self._check_utf8(utf8, payload, bool(fin))
            if not fin:
                return
            op, rsv1 = self._frag_op, self._frag_rsv1
            payload = b"".join(self._frag)
            self._frag = []
            self._frag_len = 0
            self._frag_op = 0
            if utf8 is not None:
                self._utf8 = None
                return self._deliver(op, payload)  # checked fragment by fragment already
            self._frag_rsv1 = False
        elif op in (OP_TEXT, OP_BINARY):
            if self._frag_op:
                raise _Fail(1002, "a new message before the fragmented one ended")
            if not fin:
                self._frag_op, self._frag_rsv1 = op, rsv1
                self._frag = [payload]
                self._frag_len = len(payload)
                if op == OP_TEXT and not rsv1:
                    # fail fast: invalid UTF-8 closes at the fragment that has it
                    self._utf8 = codecs.getincrementaldecoder("utf-8")()
                    self._check_utf8(self._utf8, payload, False)
                return
        else:
            raise _Fail(1002, f"reserved opcode {op}")
        if rsv1:
            payload = self._inflate(payload)
        elif self._max and len(payload) > self._max:
            raise _Fail(1009, f"message of {len(payload)} bytes exceeds the limit of {self._max}")
        if op == OP_TEXT and not payload.isascii():  # ASCII is valid UTF-8; checking it allocates nothing
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(1007, "invalid UTF-8 in a text message") from None
        self._deliver(op, payload)

    @staticmethod
    def _check_utf8(decoder: Any, payload: bytes, final: bool) -> None:
        try:
            decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise _Fail(1007, "invalid UTF-8 in a text message") from None

    def _deliver(self, op: int, payload: bytes) -> None:
        if self._max and len(payload) > self._max:
            raise _Fail(1009, f"message of {len(payload)} bytes exceeds the limit of {self._max}")
        cb = self._on_message
        if cb is None:
            if self._early is None:
                self._early = []
            self._early.append((op, payload))
            self._pause()  # nobody to take more yet
            return
        cb(op, payload)

    def compression_in(self) -> bool:
        """True if the peer may send compressed messages (permessage-deflate negotiated)."""
        return self._wbits > 0

    def _inflate(self, payload: bytes) -> bytes:
        d = self._inflater
        if d is None:
            d = self._inflater = zlib.decompressobj(-15)  # any window the peer uses fits in 15 bits
        limit = self._max
        try:
            out: bytes = d.decompress(payload + _DEFLATE_TAIL, limit + 1 if limit else 0)
        except zlib.error as e:
            raise _Fail(1007, f"invalid compressed data: {e}") from None
        if limit and (len(out) > limit or d.unconsumed_tail):
            raise _Fail(1009, f"message of more than {limit} bytes (inflated) exceeds the limit")
        return out

    def _close_received(self, payload: bytes) -> None:
        code = 0
        reason = ""
        if payload:
            if len(payload) == 1:
                raise _Fail(1002, "close frame with a 1-byte body")
            code = int.from_bytes(payload[:2], "big")
            if not valid_close_code(code):
                raise _Fail(1002, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(1007, "invalid UTF-8 in a close reason") from None
        self._ended(code if code else 1005, reason)
        if not self.close_sent:
            # echo the peer's code, as gorilla and RFC 6455 §5.5.1 do
            self._send_close(code if code else None, "")
        self._finish()

    # ---- delivery and flood control ------------------------------------------------------------

    def attach(self, on_message: Callable[[int, bytes], None]) -> None:
        """Deliver every data message to ``on_message(opcode, payload)`` from now on (those read
        before first). Reading resumes unless the connection asked to pause meanwhile."""
        self._on_message = on_message
        early, self._early = self._early, None
        if early:
            for op, payload in early:
                if self._closed:
                    return
                on_message(op, payload)
        if not self._wake:
            self.resume()

    def pause(self) -> None:
        """Stop reading (flood control): frames already read stay unparsed until ``resume()``;
        ``wait()`` returns True."""
        self._wake = True
        self._pause()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(True)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._pause_transport()

    def _pause_transport(self) -> None:
        if self._tp is not None and not self._closed:
            with contextlib.suppress(*_PAUSE_RESUME_ERRORS):
                self._tp.pause_reading()

    def resume(self) -> None:
        """Read again: parse what was held back, then resume the socket."""
        self._wake = False
        if not self._paused or self._closed:
            return
        self._paused = False
        if self._tp is not None and not self._draining:
            with contextlib.suppress(*_PAUSE_RESUME_ERRORS):
                self._tp.resume_reading()
        if self._buf and self._big is None:
            data, self._buf = self._buf, b""
            self._parse(data)
        if self._draining and not self._paused:
            self._ended(1006, self._lost_reason)
            self._finish()

    async def wait(self) -> bool:
        """Until the connection ends (False) or ``pause()`` was called (True)."""
        if self._closed:
            return False
        if self._wake:
            self._wake = False
            return True
        w = self._waiter = self._loop.create_future()
        try:
            result: bool = await w
        finally:
            self._waiter = None
        if result:
            self._wake = False
        return result

    # ---- Transport -----------------------------------------------------------------------------

    async def read(self) -> tuple[int, bytes] | None:
        """Not used: this engine pushes messages (``attach``). Raises ``NotImplementedError``."""
        raise NotImplementedError("WSProtocol delivers by attach(); it has no read()")

    def send(self, opcode: int, payload: bytes) -> None:
        """Queue a frame; it is written with the others of this loop turn. Never waits, raises nothing."""
        if self._closed or self.close_sent:
            return
        first = 0x80 | opcode
        if self._wbits and not opcode & 0x8 and len(payload) >= self._threshold:
            payload = self._deflate(payload)
            first |= 0x40  # RSV1: compressed
        n = len(payload)
        if n < 126 and not self._client:
            headers = _SHORT_HEADERS[first]
            self._out.append((headers[n] if headers is not None else bytes((first, n))) + payload)
        else:
            self._out.extend(encode_frame(first, payload, self._client))
        self._out_bytes += n
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)

    def _deflate(self, payload: bytes) -> bytes:
        if self._no_takeover:
            # no context kept between messages: one compressor per loop and window size serves
            # every such connection; Z_FULL_FLUSH ends each message with the state reset, so
            # no message refers to another's bytes (and none is allocated per message)
            c = self._flusher.compressor(self._wbits)
            data = c.compress(payload) + c.flush(zlib.Z_FULL_FLUSH)
        else:
            c = self._compressor
            if c is None:
                c = self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._wbits)
            data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(_DEFLATE_TAIL):
            data = data[:-4]
        return data or b"\x00"

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        self._out = []
        self._out_bytes = 0
        tp = self._tp
        if not self._closed and tp is not None and not tp.is_closing():
            if len(out) == 1:
                tp.write(out[0])
            else:
                tp.writelines(out)

    def buffered(self) -> int:
        """Bytes queued or in the transport's buffer, not yet taken by the socket."""
        if self._closed or self._tp is None:
            return 0
        return self._tp.get_write_buffer_size() + self._out_bytes

    def progress(self) -> tuple[int, int]:
        """On Linux, from the kernel: bytes the peer's TCP acknowledged, and ours plus the
        kernel's unacknowledged bytes (its send buffer can hold megabytes, so what leaves
        our own buffer says nothing about the peer)."""
        b = self.buffered()
        sock = self._tp.get_extra_info("socket") if self._tp is not None else None
        if sock is not None and _TCP_INFO is not None:
            try:
                info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCPI_BYTES_ACKED_END)
                outq = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # == SIOCOUTQ
            except (OSError, ValueError):
                info = b""
            if len(info) >= _TCPI_BYTES_ACKED_END:
                acked = int.from_bytes(info[_TCPI_BYTES_ACKED_END - 8 : _TCPI_BYTES_ACKED_END], sys.byteorder)
                return acked, b + int.from_bytes(outq, sys.byteorder)
        return -b, b

    def _fail(self, code: int, reason: str) -> None:
        """A protocol error: send a close frame with ``code`` (if it may go on the wire) and drop the connection."""
        self._ended(code, reason)
        if not self.close_sent and sendable_close_code(code):
            self._send_close(code, cut_close_reason(reason))
        self._finish()

    def _send_close(self, code: int | None, reason: str) -> None:
        payload = close_body(code, reason) if code is not None else b""
        self._out.extend(encode_frame(0x80 | OP_CLOSE, payload, self._client))
        self._flush()
        self.close_sent = True

    def close(self, code: int, reason: str = "", wait_reply: bool = True) -> None:
        """Send a close frame (once); with ``wait_reply`` keep reading until the peer answers
        (at most 2 s), else close the socket after the frame. Raises nothing."""
        if self._closed or self.close_sent:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._send_close(code, reason)
        if wait_reply:
            self._grace = self._loop.call_later(_CLOSE_GRACE, self._finish)
            if self._paused and not self._wake:
                self.resume()  # the answer must be read
        else:
            self._finish()

    def abort(self, code: int | None = None, reason: str = "") -> None:
        """Drop the connection now (nothing more is written). Raises nothing."""
        if code is not None:
            self._ended(code, reason)
        self._finish(abort=True)

    def _finish(self, abort: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._out = []
        self._out_bytes = 0
        self._buf = b""
        self._big = None
        self._frag = []
        if self._grace is not None:
            self._grace.cancel()
        tp = self._tp
        if tp is not None:
            if abort or tp.get_write_buffer_size() > 0:
                tp.abort()
            else:
                tp.close()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(False)
