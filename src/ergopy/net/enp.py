"""ENP R1: the frames two Ergo nodes exchange once the handshake is done.

Sans-I/O: bytes in, :class:`Frame` out, and back. No socket, no EDF decoding of
the payload (the payload stays the raw EDF bytes; the connection decodes it with
the peer's caches), so every rule here can be tested byte for byte against the
frames Go Ergo 3.1.0 wrote (``tests/data/ergo-wire/link-*.hex``).

A frame is ``78, 1, uint32 total length (header included), order, type`` then a
body whose layout depends on the type. The layouts are one table
(:data:`LAYOUTS`), not one function per type. Integers are big-endian. PIDs and
Refs in frame bodies are bare 8-byte IDs: the node and creation are implied by
the connection.

Type 200 (``MessageZ``) wraps a whole compressed frame; :func:`decode_frame`
unwraps it (gzip, zlib and Go's LZW) and :func:`compress_frame` makes one
(gzip or zlib: Go decodes all three, nobody needs to send LZW).
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import struct
import zlib
from collections.abc import Mapping
from typing import Any, Final

from ergopy import gen

MAGIC: Final = 78
VERSION: Final = 1
HEADER_SIZE: Final = 8

IMPORTANT: Final = 0x80
"""Bit 7 of the flags byte: important delivery (the receiver acknowledges with a 130 frame)."""
PRIORITY_MASK: Final = 0x03
"""Bits 0-1 of the flags byte: 0 normal, 1 high, 2 max."""


class FrameError(ValueError):
    """A frame that breaks ENP's rules: bad magic/version/length, unknown type,
    truncated body, unknown atom cache id, bad compressed data.

    Go logs such a frame and drops it (or closes the link for a bad header); the
    connection decides which, this module only says what is wrong.
    """


class FrameType(enum.IntEnum):
    """ENP frame types (``net/proto/types.go``); the *_CACHE variants carry a uint16
    atom cache id instead of a length-prefixed name."""

    PID = 101
    NAME = 102
    NAME_CACHE = 103
    ALIAS = 104
    EVENT = 105
    EVENT_CACHE = 106
    EXIT = 107
    REQUEST_PID = 121
    REQUEST_NAME = 122
    REQUEST_NAME_CACHE = 123
    REQUEST_ALIAS = 124
    RESPONSE = 129
    RESPONSE_ERROR = 130
    TERMINATE_PID = 181
    TERMINATE_NAME = 182
    TERMINATE_NAME_CACHE = 183
    TERMINATE_ALIAS = 184
    TERMINATE_EVENT = 185
    TERMINATE_EVENT_CACHE = 186
    ANY = 199
    Z = 200


class Compression(enum.IntEnum):
    """Byte 8 of a type-200 frame."""

    LZW = 100
    ZLIB = 101
    GZIP = 102


class ResponseCode(enum.IntEnum):
    """Byte 49 of a 130 frame. ``OTHER`` means an EDF error follows at byte 50."""

    OK = 0
    PROCESS_UNKNOWN = 1
    MAILBOX_FULL = 2
    PROCESS_TERMINATED = 3
    OTHER = 255


def response_error(code: int) -> type[gen.Error] | None:
    """The error a 130 frame's ``code`` stands for: None for ``OK`` and ``OTHER``
    (that one's error is in the payload), else ``gen.ProcessUnknownError``,
    ``gen.MailboxFullError`` or ``gen.ProcessTerminatedError``.

    Raises ``FrameError`` for a code Go does not define.
    """
    if code not in _CODE_ERRORS:
        raise FrameError(f"unknown response error code {code}")
    return _CODE_ERRORS[code]


_CODE_ERRORS: Final[dict[int, type[gen.Error] | None]] = {
    ResponseCode.OK: None,
    ResponseCode.PROCESS_UNKNOWN: gen.ProcessUnknownError,
    ResponseCode.MAILBOX_FULL: gen.MailboxFullError,
    ResponseCode.PROCESS_TERMINATED: gen.ProcessTerminatedError,
    ResponseCode.OTHER: None,
}


# Body fields, in wire order. "name" is uint8 length + bytes, "name_cache" a uint16
# atom id; "ref"/"alias" are 3 x uint64; "payload" is the rest (EDF).
_U8, _U64, _I64, _ID3, _NAME, _NAME_CACHE, _PAYLOAD = range(7)

_FIELD_KIND: Final[dict[str, int]] = {
    "from_id": _U64,
    "to_id": _U64,
    "flags": _U8,
    "message_id": _U64,
    "timestamp": _I64,
    "ref_id": _ID3,
    "alias_id": _ID3,
    "name": _NAME,
    "name_cache": _NAME_CACHE,
    "code": _U8,
    "payload": _PAYLOAD,
}

_T = FrameType
LAYOUTS: Final[dict[FrameType, tuple[str, ...]]] = {
    _T.PID: ("from_id", "flags", "message_id", "to_id", "payload"),
    _T.NAME: ("from_id", "flags", "message_id", "name", "payload"),
    _T.NAME_CACHE: ("from_id", "flags", "message_id", "name_cache", "payload"),
    _T.ALIAS: ("from_id", "flags", "message_id", "alias_id", "payload"),
    _T.EVENT: ("from_id", "flags", "timestamp", "name", "payload"),
    _T.EVENT_CACHE: ("from_id", "flags", "timestamp", "name_cache", "payload"),
    _T.EXIT: ("from_id", "flags", "to_id", "payload"),
    _T.REQUEST_PID: ("from_id", "flags", "ref_id", "to_id", "payload"),
    _T.REQUEST_NAME: ("from_id", "flags", "ref_id", "name", "payload"),
    _T.REQUEST_NAME_CACHE: ("from_id", "flags", "ref_id", "name_cache", "payload"),
    _T.REQUEST_ALIAS: ("from_id", "flags", "ref_id", "alias_id", "payload"),
    _T.RESPONSE: ("from_id", "flags", "to_id", "ref_id", "payload"),
    _T.RESPONSE_ERROR: ("from_id", "flags", "to_id", "ref_id", "code", "payload"),
    _T.TERMINATE_PID: ("flags", "to_id", "payload"),
    _T.TERMINATE_NAME: ("flags", "name", "payload"),
    _T.TERMINATE_NAME_CACHE: ("flags", "name_cache", "payload"),
    _T.TERMINATE_ALIAS: ("flags", "alias_id", "payload"),
    _T.TERMINATE_EVENT: ("flags", "name", "payload"),
    _T.TERMINATE_EVENT_CACHE: ("flags", "name_cache", "payload"),
    _T.ANY: ("payload",),
}
"""Body layout of every frame type but 200, as Go writes it (``net/proto/connection.go``)."""

# name variant <-> atom-cache variant
_CACHE_VARIANT: Final = {
    _T.NAME: _T.NAME_CACHE,
    _T.EVENT: _T.EVENT_CACHE,
    _T.REQUEST_NAME: _T.REQUEST_NAME_CACHE,
    _T.TERMINATE_NAME: _T.TERMINATE_NAME_CACHE,
    _T.TERMINATE_EVENT: _T.TERMINATE_EVENT_CACHE,
}
_NAME_VARIANT: Final = {v: k for k, v in _CACHE_VARIANT.items()}
_ZERO3: Final = (0, 0, 0)


@dataclasses.dataclass(slots=True)
class Frame:
    """One ENP frame, decoded header and body, payload left as EDF bytes.

    Only the fields of the type's layout (:data:`LAYOUTS`) are meaningful.
    ``flags`` is byte 16 (byte 8 in terminate frames): priority in bits 0-1,
    important in bit 7. ``name`` is always the text: a *_CACHE frame's atom id is
    resolved on decode and chosen again on encode. ``message_id`` is the slot Go
    leaves stale unless the important bit is set. In a 130 frame ``payload`` is
    empty unless ``code`` is ``ResponseCode.OTHER``.
    """

    type: FrameType
    order: int = 0
    from_id: int = 0
    to_id: int = 0
    flags: int = 0
    message_id: int = 0
    timestamp: int = 0
    ref_id: tuple[int, int, int] = _ZERO3
    alias_id: tuple[int, int, int] = _ZERO3
    name: str = ""
    code: int = 0
    payload: bytes = b""

    @property
    def important(self) -> bool:
        """Whether the important-delivery bit is set."""
        return bool(self.flags & IMPORTANT)

    @property
    def priority(self) -> int:
        """The priority bits (0 normal, 1 high, 2 max)."""
        return self.flags & PRIORITY_MASK


def default_order(frame: Frame) -> int:
    """The order byte Go writes for ``frame`` (digest section 5): the target's ID for
    PID-addressed frames, the sender's for name/event-addressed ones, alias ID[1]
    for alias-addressed ones, 0 for terminate frames. For 199 frames the order
    depends on the request (see ``proto_types``); this returns 0 for them.

    Raises ``FrameError`` for type 200 (its order is the inner frame's).
    """
    t = frame.type
    if t in (_T.PID, _T.EXIT, _T.REQUEST_PID, _T.RESPONSE, _T.RESPONSE_ERROR):
        return frame.to_id % 255
    if t in (_T.NAME, _T.NAME_CACHE, _T.EVENT, _T.EVENT_CACHE, _T.REQUEST_NAME, _T.REQUEST_NAME_CACHE):
        return frame.from_id % 255
    if t in (_T.ALIAS, _T.REQUEST_ALIAS):
        return frame.alias_id[1] % 255
    if t == _T.Z:
        raise FrameError("the order of a compressed frame is its inner frame's")
    return 0


_U16S = struct.Struct(">H")
_U8S = struct.Struct(">B")
_NAMES_CACHED: Final = 1024  # encoded names kept per frame type
_LEN = struct.Struct(">I")
_FORMAT: Final = {_U64: "Q", _U8: "B", _I64: "q", _ID3: "QQQ"}
_SCALARS: Final = ("from_id", "to_id", "flags", "message_id", "timestamp", "code")


class _Codec:
    """One frame type's layout, compiled once from :data:`LAYOUTS`: one struct for the
    fixed fields, then an optional name (or atom id), then the payload."""

    __slots__ = ("base", "fixed", "get", "head", "keep_payload", "name", "names", "parts", "pick", "single", "type")

    def __init__(self, t: FrameType, layout: tuple[str, ...]) -> None:
        self.type = t
        fixed = [f for f in layout if _FIELD_KIND[f] in _FORMAT]
        self.fixed = struct.Struct(">" + "".join(_FORMAT[_FIELD_KIND[f]] for f in fixed))
        self.name = next((_FIELD_KIND[f] for f in layout if _FIELD_KIND[f] in (_NAME, _NAME_CACHE)), None)
        self.parts = tuple((f, _FIELD_KIND[f] == _ID3) for f in fixed)
        # where each Frame field sits in the unpacked tuple; absent ones point past its
        # end, at the zeros decode appends (a scalar 0, then a (0, 0, 0) triple)
        index, where = 0, {}
        for f in fixed:
            where[f] = index
            index += 3 if _FIELD_KIND[f] == _ID3 else 1
        self.pick = tuple(where.get(f, index) for f in _SCALARS) + tuple(
            where.get(f, index + 1) for f in ("ref_id", "alias_id")
        )
        # encoding: the 8-byte header and the fixed fields in one precompiled struct;
        # without a triple the fields are read with one attrgetter call (a tuple)
        self.head = struct.Struct(">BBIBB" + self.fixed.format[1:])
        self.base = HEADER_SIZE + self.fixed.size
        self.get: Any = None  # operator.attrgetter: one value, or a tuple of several
        if fixed and not any(triple for _, triple in self.parts):
            names = [f for f, _ in self.parts]
            self.get = operator.attrgetter(*names)
        self.single = len(fixed) == 1
        self.names: dict[str, bytes] = {}  # a name's length byte and UTF-8, as written (bounded)
        self.keep_payload = t != _T.RESPONSE_ERROR

    def decode(self, data: bytes, order: int, atoms: Mapping[int, str] | None, end: int) -> Frame:
        v = self.fixed.unpack_from(data, HEADER_SIZE) + _PAD
        pos = HEADER_SIZE + self.fixed.size
        name = ""
        if self.name == _NAME:
            n = data[pos]
            pos += 1 + n
            if pos > end:
                raise FrameError(f"{self.type.name}: name runs past the frame end")
            name = data[pos - n : pos].decode()
        elif self.name == _NAME_CACHE:
            (cid,) = _U16S.unpack_from(data, pos)
            pos += 2
            atom = atoms.get(cid) if atoms else None
            if atom is None:
                raise FrameError(f"{self.type.name}: unknown atom cache id {cid}")
            name = str.__str__(atom)
        if pos > end:
            raise struct.error("truncated")
        fr, to, fl, mid, ts, code, ref, alias = self.pick
        return Frame(
            self.type, order, v[fr], v[to], v[fl], v[mid], v[ts], v[ref : ref + 3], v[alias : alias + 3],
            name, v[code], data[pos:end],
        )  # fmt: skip

    def encode(self, frame: Frame, t: int, atom_ids: Mapping[str, int] | None) -> bytes:
        """The whole frame, header included, written as type ``t`` (this codec's)."""
        get = self.get
        args: Any
        if get is not None:
            args = (get(frame),) if self.single else get(frame)
        else:
            flat: list[int] = []
            for attr, triple in self.parts:
                if triple:
                    flat.extend(getattr(frame, attr))
                else:
                    flat.append(getattr(frame, attr))
            args = flat
        payload = frame.payload if self.keep_payload or frame.code == ResponseCode.OTHER else b""
        if self.name is None:
            length = self.base + len(payload)
            if length > 0xFFFFFFFF:
                raise FrameError("frame longer than 4 GiB")
            return self.head.pack(MAGIC, VERSION, length, frame.order & 0xFF, t, *args) + payload
        if self.name == _NAME:
            mid = self.names.get(frame.name)
            if mid is None:
                raw = frame.name.encode()
                if len(raw) > 255:
                    raise FrameError(f"name longer than 255 bytes: {frame.name[:40]!r}...")
                mid = _U8S.pack(len(raw)) + raw
                if len(self.names) >= _NAMES_CACHED:
                    self.names.clear()
                self.names[frame.name] = mid
        else:
            assert atom_ids is not None
            mid = _U16S.pack(atom_ids[frame.name])
        length = self.base + len(mid) + len(payload)
        if length > 0xFFFFFFFF:
            raise FrameError("frame longer than 4 GiB")
        return b"".join((self.head.pack(MAGIC, VERSION, length, frame.order & 0xFF, t, *args), mid, payload))


_PAD: Final = (0, 0, 0, 0)
_CODECS: Final = {int(t): _Codec(t, layout) for t, layout in LAYOUTS.items()}


def encode_frame(frame: Frame, atom_ids: Mapping[str, int] | None = None) -> bytes:
    """Encode ``frame`` to bytes, header included.

    A frame addressed by name is written as its *_CACHE variant when ``atom_ids``
    (the sender's own atom table, text → id, as sent in its Introduce) has the
    name, else as the name variant. The ``order`` byte is written as given.

    Raises ``FrameError`` for type 200 (use :func:`compress_frame`), a name longer
    than 255 bytes, or a field that does not fit its width.
    """
    t = frame.type
    if t == _T.Z:
        raise FrameError("type 200 is made by compress_frame")
    t = _NAME_VARIANT.get(t, t)
    if atom_ids and t in _CACHE_VARIANT and frame.name in atom_ids:
        t = _CACHE_VARIANT[t]
    try:
        return _CODECS[t].encode(frame, t, atom_ids)
    except FrameError:
        raise
    except (struct.error, ValueError, TypeError, KeyError) as e:
        raise FrameError(f"cannot encode {FrameType(t).name} frame: {e}") from e


_MESSAGE_HEAD = struct.Struct(">BBIBBQBQ")  # header, from, flags, message id: bytes 0-24 of 101-104
_U64S = struct.Struct(">Q")
_ID3S = struct.Struct(">QQQ")


def name_field(name: str, atom_ids: Mapping[str, int] | None = None) -> tuple[FrameType, bytes]:
    """The frame type and the bytes a plain send to ``name`` carries after byte 25:
    ``NAME_CACHE`` and the uint16 id when ``atom_ids`` (our own table) has the name,
    else ``NAME`` and its length byte and UTF-8 (as :func:`encode_frame` chooses).

    Raises ``FrameError`` for a name longer than 255 bytes.
    """
    if atom_ids and name in atom_ids:
        return _T.NAME_CACHE, _U16S.pack(atom_ids[name])
    raw = name.encode()
    if len(raw) > 255:
        raise FrameError(f"name longer than 255 bytes: {name[:40]!r}...")
    return _T.NAME, _U8S.pack(len(raw)) + raw


def pid_field(to_id: int) -> bytes:
    """The bytes a plain send to a PID carries after byte 25 (its 8-byte ID).

    Raises ``FrameError`` for an ID that does not fit 64 bits.
    """
    try:
        return _U64S.pack(to_id)
    except struct.error as e:
        raise FrameError(f"cannot encode PID frame: {e}") from None


def alias_field(alias_id: tuple[int, int, int]) -> bytes:
    """The bytes a plain send to an alias carries after byte 25 (its 3 x 8-byte ID).

    Raises ``FrameError`` for an ID that does not fit.
    """
    try:
        return _ID3S.pack(*alias_id)
    except (struct.error, TypeError) as e:
        raise FrameError(f"cannot encode ALIAS frame: {e}") from None


def encode_message(t: int, order: int, from_id: int, flags: int, field: bytes, payload: bytes) -> bytes:
    """A plain send (types 101-104, message id 0) straight to bytes: the send hot
    path, without a :class:`Frame`. ``field`` is what :func:`pid_field`,
    :func:`name_field` or :func:`alias_field` gave for the target. The bytes are
    those :func:`encode_frame` writes for the same frame.

    Raises ``FrameError`` for a field out of its width or a frame over 4 GiB.
    """
    length = 25 + len(field) + len(payload)
    try:
        return _MESSAGE_HEAD.pack(MAGIC, VERSION, length, order & 0xFF, t, from_id, flags, 0) + field + payload
    except struct.error as e:
        raise FrameError(f"cannot encode {FrameType(t).name} frame: {e}") from None


_REQUEST_HEAD = struct.Struct(">BBIBBQBQQQ")  # header, from, flags, ref ID: bytes 0-40 of 121-124
_RESPONSE_HEAD = struct.Struct(">BBIBBQBQQQQ")  # header, from, flags, to, ref ID: bytes 0-48 of 129
REQUEST_OF: Final = {
    _T.PID: _T.REQUEST_PID,
    _T.NAME: _T.REQUEST_NAME,
    _T.NAME_CACHE: _T.REQUEST_NAME_CACHE,
    _T.ALIAS: _T.REQUEST_ALIAS,
}
"""The call request type for a target whose field a plain send of this type carries."""


def encode_request(
    t: int, order: int, from_id: int, flags: int, ref_id: tuple[int, int, int], field: bytes, payload: bytes
) -> bytes:
    """A call request (types 121-124) straight to bytes, as :func:`encode_message` for
    sends: ``field`` is the target's (:func:`pid_field`, :func:`name_field`,
    :func:`alias_field`), ``t`` the request type (:data:`REQUEST_OF`).

    Raises ``FrameError`` for a field out of its width or a frame over 4 GiB.
    """
    length = 41 + len(field) + len(payload)
    try:
        return _REQUEST_HEAD.pack(MAGIC, VERSION, length, order & 0xFF, t, from_id, flags, *ref_id) + field + payload
    except (struct.error, TypeError) as e:
        raise FrameError(f"cannot encode {FrameType(t).name} frame: {e}") from None


def encode_response(
    order: int, from_id: int, flags: int, to_id: int, ref_id: tuple[int, int, int], payload: bytes
) -> bytes:
    """A call's answer (type 129) straight to bytes, as :func:`encode_frame` writes it.

    Raises ``FrameError`` for a field out of its width or a frame over 4 GiB.
    """
    try:
        return (
            _RESPONSE_HEAD.pack(
                MAGIC, VERSION, 49 + len(payload), order & 0xFF, _T.RESPONSE, from_id, flags, to_id, *ref_id
            )
            + payload
        )
    except (struct.error, TypeError) as e:
        raise FrameError(f"cannot encode RESPONSE frame: {e}") from None


def parse_header(data: bytes | bytearray | memoryview, max_size: int = 0) -> int:
    """Check the 8-byte header at the start of ``data`` and return the frame's
    total length (header included).

    ``max_size`` > 0 refuses frames announcing more (Go closes the link then).

    Raises ``FrameError`` on a wrong magic or version, a length below 8, or one
    above ``max_size``; ``ValueError`` if fewer than 6 bytes are given.
    """
    if len(data) < 6:
        raise ValueError("need at least 6 bytes")
    if data[0] != MAGIC:
        raise FrameError(f"not an ENP frame (magic {data[0]}, expected {MAGIC})")
    if data[1] != VERSION:
        raise FrameError(f"unsupported ENP version {data[1]}")
    (length,) = _LEN.unpack_from(data, 2)
    if length < HEADER_SIZE:
        raise FrameError(f"frame length {length} is shorter than the header")
    if max_size > 0 and length > max_size:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_size}")
    return int(length)


def decode_frame(
    data: bytes | bytearray | memoryview,
    atoms: Mapping[int, str] | None = None,
    max_size: int = 0,
) -> Frame:
    """Decode one whole frame (``data`` is exactly the frame, header included).

    ``atoms`` is the peer's atom table (id → text, from its Introduce), used to
    resolve *_CACHE frames. A type-200 frame is inflated (the inflated frame must
    have exactly the announced length and not exceed ``max_size`` when > 0) and
    the inner frame is returned.

    Raises ``FrameError`` on any malformed frame.
    """
    if type(data) is not bytes:
        data = bytes(data)
    length = len(data)
    if (  # the common case in one test; anything else goes through parse_header's reasons
        length < HEADER_SIZE
        or data[0] != MAGIC
        or data[1] != VERSION
        or _LEN.unpack_from(data, 2)[0] != length
        or (max_size > 0 and length > max_size)
    ):
        length = parse_header(data, max_size)
        if length != len(data):
            raise FrameError(f"frame announces {length} bytes, got {len(data)}")
    codec = _CODECS.get(data[7])
    if codec is None:
        if data[7] == _T.Z:
            return _decode_z(data, atoms, max_size)
        raise FrameError(f"unknown ENP frame type {data[7]}")
    try:
        frame = codec.decode(data, data[6], atoms, length)
    except (struct.error, IndexError):
        raise FrameError(f"{codec.type.name} frame truncated ({length} bytes)") from None
    except UnicodeDecodeError:
        raise FrameError(f"{codec.type.name}: name is not UTF-8") from None
    t = codec.type
    if t is _RESPONSE_ERROR:
        if frame.code not in _CODES:
            raise FrameError(f"unknown response error code {frame.code}")
        if frame.code != ResponseCode.OTHER and frame.payload:
            raise FrameError(f"response error code {frame.code} carries a payload")
    elif not frame.payload and t in _NEEDS_PAYLOAD:
        raise FrameError(f"{t.name} frame carries no EDF value")
    return frame


_CODES: Final = frozenset(int(c) for c in ResponseCode)
_RESPONSE_ERROR: Final = _T.RESPONSE_ERROR


_TERMINATES: Final = (
    _T.TERMINATE_PID,
    _T.TERMINATE_NAME,
    _T.TERMINATE_NAME_CACHE,
    _T.TERMINATE_ALIAS,
    _T.TERMINATE_EVENT,
    _T.TERMINATE_EVENT_CACHE,
)
UNCOMPRESSED: Final = frozenset((_T.EXIT, _T.ANY, *_TERMINATES))
"""Types Go never compresses (exit, terminate, 199)."""
_NEEDS_PAYLOAD: Final = UNCOMPRESSED


def _decode_z(view: bytes | bytearray | memoryview, atoms: Mapping[int, str] | None, max_size: int) -> Frame:
    if len(view) < 13:
        raise FrameError("compressed frame truncated")
    method = view[8]
    (expect,) = _LEN.unpack_from(view, 9)
    if max_size > 0 and expect > max_size:
        raise FrameError(f"compressed frame inflates to {expect} bytes, over the limit of {max_size}")
    inner = decompress(bytes(view[13:]), method, expect)
    if len(inner) < HEADER_SIZE or inner[7] == _T.Z:
        raise FrameError("compressed frame does not hold a plain ENP frame")
    return decode_frame(inner, atoms, max_size)


def decompress(data: bytes, method: int, expect: int) -> bytes:
    """Inflate the body of a type-200 frame; the result must be exactly ``expect`` bytes.

    Never produces more than ``expect`` + 1 bytes whatever the input (no bombs).

    Raises ``FrameError`` for an unknown method, corrupt data or a length mismatch.
    """
    if method == Compression.LZW:
        out = lzw_decode(data, expect + 1)
    elif method in (Compression.ZLIB, Compression.GZIP):
        d = zlib.decompressobj(15 if method == Compression.ZLIB else 31)
        try:
            out = d.decompress(data, expect + 1)
            if len(out) <= expect and not d.eof:
                out += d.flush()
        except zlib.error as e:
            raise FrameError(f"corrupt {Compression(method).name} data: {e}") from None
    else:
        raise FrameError(f"unknown compression type {method}")
    if len(out) != expect:
        raise FrameError(f"compressed frame inflates to {len(out)} bytes, announced {expect}")
    return out


_LEVELS: Final = {0: 6, 1: 1, 2: 9}  # Go's CompressionLevel: default, best speed, best size


def compress_frame(frame: bytes, method: Compression = Compression.GZIP, level: int = 0) -> bytes:
    """Wrap an encoded frame (header included) into a type-200 frame.

    ``level`` is Go's ``gen.CompressionLevel``: 0 default, 1 best speed, 2 best size.
    The order byte is the inner frame's (it picks the same receive queue).

    Raises ``FrameError`` for LZW (receive only), an unknown method or level, a
    frame of a type Go never compresses, or one that is not an ENP frame.
    """
    length = parse_header(frame)
    if length != len(frame) or FrameType(frame[7]) in UNCOMPRESSED or frame[7] == _T.Z:
        raise FrameError("only whole 101-130 frames are compressed")
    if method not in (Compression.GZIP, Compression.ZLIB):
        raise FrameError(f"cannot send {method!r}: gzip and zlib only (LZW is decoded, not sent)")
    if level not in _LEVELS:
        raise FrameError(f"unknown compression level {level} (0 default, 1 speed, 2 size)")
    c = zlib.compressobj(_LEVELS[level], zlib.DEFLATED, 15 if method == Compression.ZLIB else 31)
    body = c.compress(frame) + c.flush()
    out = bytearray(13)
    out[0] = MAGIC
    out[1] = VERSION
    out += body
    _LEN.pack_into(out, 2, len(out))
    out[6] = frame[6]
    out[7] = _T.Z
    out[8] = method
    _LEN.pack_into(out, 9, len(frame))
    return bytes(out)


def lzw_decode(data: bytes, limit: int) -> bytes:
    """Decode Go ``compress/lzw`` data written with ``lzw.LSB`` and 8-bit literals.

    Codes start 9 bits wide and grow to 12; 256 clears the table, 257 ends the
    stream. Stops with ``FrameError`` once the output would exceed ``limit`` bytes.

    Raises ``FrameError`` on an invalid code or a stream without its end code.
    """
    clear, eof = 256, 257
    prefix = [0] * 4096
    suffix = bytearray(4096)
    first = bytearray(4096)  # first byte of each code's expansion
    length = [0] * 4096
    for i in range(256):
        first[i] = i
        length[i] = 1
    out = bytearray()
    width, hi, overflow, last = 9, eof, 512, -1
    bits = nbits = pos = 0
    n = len(data)
    while True:
        while nbits < width:
            if pos >= n:
                raise FrameError("LZW stream ends without its end code")
            bits |= data[pos] << nbits
            pos += 1
            nbits += 8
        code = bits & ((1 << width) - 1)
        bits >>= width
        nbits -= width
        if code == clear:
            width, hi, overflow, last = 9, eof, 512, -1
            continue
        if code == eof:
            return bytes(out)
        if code < clear:
            head = code
            out.append(code)
        elif code <= hi and code != eof:
            if code == hi:
                if last < 0:
                    raise FrameError("invalid LZW code")
                head = first[last]
                chain = last
            else:
                head = first[code]
                chain = code
            start = len(out)
            out += bytes(length[chain])
            i = start + length[chain] - 1
            c = chain
            while c >= clear:
                out[i] = suffix[c]
                i -= 1
                c = prefix[c]
            out[i] = c
            if code == hi:
                out.append(head)
        else:
            raise FrameError("invalid LZW code")
        if len(out) > limit:
            raise FrameError(f"LZW data inflates past {limit} bytes")
        if last >= 0:
            suffix[hi] = head
            prefix[hi] = last
            first[hi] = first[last]
            length[hi] = length[last] + 1
        last, hi = code, hi + 1
        if hi >= overflow:
            if width == 12:
                last = -1
                hi -= 1
            else:
                width += 1
                overflow = 1 << width


class FrameReader:
    """Split a byte stream into whole frames (Sans-I/O).

    ``feed(data)`` returns the complete frames now available, each as ``bytes``
    (header included). ``max_size`` > 0 refuses a header announcing more. A bad
    header makes the stream unusable: the frames before it are still returned,
    :attr:`failed` holds the error, and the link must be closed.
    """

    __slots__ = ("_buf", "_max", "failed")

    def __init__(self, max_size: int = 0) -> None:
        self._buf = bytearray()
        self._max = max_size
        self.failed: FrameError | None = None
        """The error that ended the stream, if any."""

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return the frames completed by it, in order.

        Raises ``FrameError`` on a malformed header that no complete frame
        precedes in this call (otherwise see :attr:`failed`), and on any call
        after the stream failed.
        """
        if self.failed is not None:
            raise self.failed
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < 6:
                return []
            (length,) = _LEN.unpack_from(buf, 2)
            if (  # a good header of a frame arriving in pieces: append only, no copy per piece
                len(buf) < length
                and buf[0] == MAGIC
                and buf[1] == VERSION
                and length >= HEADER_SIZE
                and not (self._max and length > self._max)
            ):
                return []
            data = bytes(buf)  # one copy of the whole, then each frame sliced from it once
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        frames: list[bytes] = []
        pos = 0
        end = len(data)
        limit = self._max
        while end - pos >= 6:
            (length,) = _LEN.unpack_from(data, pos + 2)
            if data[pos] != MAGIC or data[pos + 1] != VERSION or length < HEADER_SIZE or (limit and length > limit):
                try:
                    parse_header(data[pos : pos + 6], limit)
                except FrameError as e:
                    self.failed = e
                    if not frames:
                        raise
                    return frames
            if end - pos < length:
                break
            frames.append(data[pos : pos + length])
            pos += length
        if pos < end:
            buf += memoryview(data)[pos:]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buf)
