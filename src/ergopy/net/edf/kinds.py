"""The Go type model: each Go kind's EDF prefix, body encoder and body decoder.

A :class:`_GoType` is one Go type (``int64``, ``[]string``, ``#main/Chat``...).
Registered types are added by :mod:`.registry`; the tables that pick a Go type for a
Python value (``_ANY_ENC``) and a decoder for a type tag (``_TOP_DEC``) are declared
here and filled by :mod:`.codec`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ...gen import PID, Alias, Atom, Event, ProcessID, Ref
from .values import (
    Array,
    DecodeError,
    EncodeError,
    Float32,
    Float64,
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
    Map,
    RemoteError,
    Slice,
    Time,
    Uint,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
)

if TYPE_CHECKING:
    from .caches import DecodeCaches, EncodeCaches

# ---------------------------------------------------------------------------
# Internal type model

_K_BASIC, _K_ANY, _K_SLICE, _K_ARRAY, _K_MAP, _K_REG = range(6)

_Enc = Callable[[bytearray, Any, "EncodeCaches | None"], None]
_Dec = Callable[[bytes, int, "DecodeCaches | None"], tuple[Any, int]]

_B = struct.Struct(">B")
_H = struct.Struct(">H")
_I = struct.Struct(">I")


class _GoType:
    """One Go type: its EDF prefix, a body encoder and a body decoder.

    ``enc(buf, value, caches)`` appends the body; ``dec(data, offset, caches)`` returns
    ``(value, new offset)``; ``dec_any`` is the decoder used in ``any`` slots (it keeps
    the Go type on the value: ``Int64``, ``Slice``...). ``has_reg`` says the prefix
    names a registered type (so caches change it).
    """

    __slots__ = (
        "dec",
        "dec_any",
        "elem",
        "enc",
        "enc_any",
        "has_reg",
        "key",
        "kind",
        "length",
        "min_size",
        "name",
        "prefix",
        "reg",
        "work",
    )

    def __init__(
        self,
        name: str,
        kind: int,
        prefix: bytes,
        enc: _Enc,
        dec: _Dec,
        dec_any: _Dec | None = None,
        *,
        has_reg: bool = False,
        min_size: int = 1,
        work: int = 1,
    ) -> None:
        self.name = name
        # Bounds for decoding hostile input: a body takes at least min_size bytes, and
        # decoding one value runs about `work` steps (an array of N items is N steps, an
        # array of empty structs costs steps but no bytes).
        self.min_size = min_size
        self.work = work
        self.kind = kind
        self.prefix = prefix
        self.enc = enc
        self.dec = dec
        self.dec_any = dec_any or dec
        self.has_reg = has_reg
        self.elem: _GoType | None = None
        self.key: _GoType | None = None
        self.length = 0
        self.reg: _Registered | None = None
        self.enc_any: _Enc | None = None  # a registered struct's generated header+body encoder

    def __repr__(self) -> str:
        return f"<Go type {self.name}>"

    def prefix_for(self, c: EncodeCaches | None) -> bytes:
        """The prefix with registered names replaced by the cache's ids."""
        if c is None or not self.has_reg or not c._active:
            return self.prefix
        p = c._folds.get(self)
        if p is None:
            p = self._cached_prefix(c)
            if len(c._folds) < _MEMO_MAX:
                c._folds[self] = p
        return p

    def _cached_prefix(self, c: EncodeCaches) -> bytes:
        if self.kind == _K_REG:
            return c._type_hdr.get(self.name) or c._unknown_type(self.name, self.prefix)
        if self.kind == _K_SLICE:
            assert self.elem is not None
            return b"\x9d" + self.elem.prefix_for(c)
        if self.kind == _K_ARRAY:
            assert self.elem is not None
            return b"\x9e" + _I.pack(self.length) + self.elem.prefix_for(c)
        if self.kind == _K_MAP:
            assert self.elem is not None and self.key is not None
            return b"\x9f" + self.key.prefix_for(c) + self.elem.prefix_for(c)
        return self.prefix

    def header(self, c: EncodeCaches | None) -> bytes:
        """What precedes the body at top level and in an ``any`` slot."""
        p = self.prefix_for(c)
        if len(p) > 1 and p[0] != 0x83:
            if len(p) > 0xFFFF:
                raise EncodeError(f"type prefix of {self.name} too long ({len(p)} bytes)")
            return b"\x82" + _H.pack(len(p)) + p
        return p

    def encode_any(self, buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        buf += self.header(c)
        self.enc(buf, v, c)


# --- basic kinds -------------------------------------------------------------


def _num(name: str, tag: int, fmt: str, wrap: type | None) -> _GoType:
    st = struct.Struct(">" + fmt)
    pack = st.pack
    unpack = st.unpack_from
    size = st.size

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        buf += pack(v)

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        return unpack(data, off)[0], off + size

    dec_any: _Dec = dec
    if wrap is not None:
        w = wrap

        def dec_any(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
            return w(unpack(data, off)[0]), off + size

    return _GoType(name, _K_BASIC, bytes([tag]), enc, dec, dec_any, min_size=size)


_T_INT8 = _num("int8", 0x92, "b", Int8)
_T_INT16 = _num("int16", 0x93, "h", Int16)
_T_INT32 = _num("int32", 0x94, "i", Int32)
_T_INT64 = _num("int64", 0x95, "q", Int64)
_T_INT = _num("int", 0x96, "q", None)
_T_UINT8 = _num("uint8", 0x97, "B", Uint8)
_T_UINT16 = _num("uint16", 0x98, "H", Uint16)
_T_UINT32 = _num("uint32", 0x99, "I", Uint32)
_T_UINT64 = _num("uint64", 0x9A, "Q", Uint64)
_T_UINT = _num("uint", 0x9B, "Q", Uint)
_T_FLOAT32 = _num("float32", 0x8F, "f", Float32)
_T_FLOAT64 = _num("float64", 0x90, "d", None)


def _enc_bool(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    if v is True:
        buf.append(1)
    elif v is False:
        buf.append(0)
    else:
        raise EncodeError(f"bool expected, got {type(v).__name__}")


def _dec_bool(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    return data[off] != 0, off + 1


_T_BOOL = _GoType("bool", _K_BASIC, b"\x91", _enc_bool, _dec_bool)

_MAX_STRING = 0xFFFF
_MAX_ATOM = 255
_MAX_ERROR = 0x7FFF
_MAX_BINARY = 0xFFFFFFFE  # Go refuses > MaxUint32-1
_MAX_TYPE_NAME = 4095


def _enc_string(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    b = v.encode("utf-8", "surrogateescape")  # Go strings are bytes: invalid UTF-8 round-trips
    n = len(b)
    if n > _MAX_STRING:
        raise EncodeError(f"string too long: {n} bytes (max {_MAX_STRING}; Go 3.1.0 decodes at most 65533)")
    buf += _H.pack(n)
    buf += b


def _dec_string(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    n = (data[off] << 8) | data[off + 1]
    off += 2
    end = off + n
    if end > len(data):
        raise DecodeError(f"string of {n} bytes runs past the end of the data")
    return data[off:end].decode("utf-8", "surrogateescape"), end


_T_STRING = _GoType("string", _K_BASIC, b"\x8d", _enc_string, _dec_string, min_size=2)


def _enc_binary(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    if v is None:
        buf += b"\x00\x00\x00\x00"  # Go: a nil []byte is written as empty
        return
    n = len(v) if type(v) is not memoryview else v.nbytes
    if n > _MAX_BINARY:
        raise EncodeError(f"binary too long: {n} bytes (max {_MAX_BINARY})")
    buf += _I.pack(n)
    buf += v


def _dec_binary(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    (n,) = _I.unpack_from(data, off)
    off += 4
    end = off + n
    if end > len(data):
        raise DecodeError(f"binary of {n} bytes runs past the end of the data")
    return data[off:end], end


_T_BINARY = _GoType("[]byte", _K_BASIC, b"\x8e", _enc_binary, _dec_binary, min_size=4)

# Atoms: memoise the bytes of the few names a node writes over and over (node names).
_ATOM_BYTES: dict[str, bytes] = {}
_ATOM_MEMO: dict[bytes, Atom] = {}
_MEMO_MAX = 4096


def _atom_bytes(a: str) -> bytes:
    b = _ATOM_BYTES.get(a)
    if b is None:
        raw = a.encode()
        if len(raw) > _MAX_ATOM:
            raise EncodeError(f"atom too long: {len(raw)} bytes (max {_MAX_ATOM}): {a[:40]!r}...")
        b = _H.pack(len(raw)) + raw
        if len(_ATOM_BYTES) >= _MEMO_MAX:
            _ATOM_BYTES.clear()
        _ATOM_BYTES[a] = b
    return b


def _enc_atom(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    if c is not None:
        i = c._atom_ids.get(v)
        if i is not None:
            buf += i
            return
    buf += _atom_bytes(v)


def _read_atom(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Atom, int]:
    n = (data[off] << 8) | data[off + 1]
    off += 2
    if n > _MAX_ATOM:
        if c is None:
            raise DecodeError(f"atom cache id {n} but no atom cache")
        a = c.atoms.get(n)
        if a is None:
            raise DecodeError(f"unknown atom cache id {n}")
        return a, off
    end = off + n
    if end > len(data):
        raise DecodeError(f"atom of {n} bytes runs past the end of the data")
    raw = data[off:end]
    a = _ATOM_MEMO.get(raw)
    if a is None:
        a = Atom(raw.decode())
        if len(_ATOM_MEMO) >= _MEMO_MAX:
            _ATOM_MEMO.clear()
        _ATOM_MEMO[raw] = a
    return a, end


_T_ATOM = _GoType("gen.Atom", _K_BASIC, b"\x8c", _enc_atom, _read_atom, min_size=2)

_QQ = struct.Struct(">Qq")
_Q3 = struct.Struct(">qQQQ")


def _enc_pid(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    _enc_atom(buf, v.node, c)
    buf += _QQ.pack(v.id, v.creation)


def _dec_pid(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    node, off = _read_atom(data, off, c)
    i, cr = _QQ.unpack_from(data, off)
    return PID(node, i, cr), off + 16


def _enc_named(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    _enc_atom(buf, v.node, c)
    _enc_atom(buf, v.name, c)


def _dec_processid(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    node, off = _read_atom(data, off, c)
    name, off = _read_atom(data, off, c)
    return ProcessID(name, node), off


def _dec_event(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    node, off = _read_atom(data, off, c)
    name, off = _read_atom(data, off, c)
    return Event(name, node), off


def _enc_refish(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    _enc_atom(buf, v.node, c)
    a, b, d = v.id
    buf += _Q3.pack(v.creation, a, b, d)


def _dec_ref(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    node, off = _read_atom(data, off, c)
    cr, a, b, d = _Q3.unpack_from(data, off)
    return Ref(node, cr, (a, b, d)), off + 32


def _dec_alias(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    node, off = _read_atom(data, off, c)
    cr, a, b, d = _Q3.unpack_from(data, off)
    return Alias(node, cr, (a, b, d)), off + 32


_T_PID = _GoType("gen.PID", _K_BASIC, b"\xaa", _enc_pid, _dec_pid, min_size=18)
_T_PROCESSID = _GoType("gen.ProcessID", _K_BASIC, b"\xab", _enc_named, _dec_processid, min_size=4)
_T_ALIAS = _GoType("gen.Alias", _K_BASIC, b"\xac", _enc_refish, _dec_alias, min_size=34)
_T_EVENT = _GoType("gen.Event", _K_BASIC, b"\xad", _enc_named, _dec_event, min_size=4)
_T_REF = _GoType("gen.Ref", _K_BASIC, b"\xae", _enc_refish, _dec_ref, min_size=34)

# --- time.Time (Go's MarshalBinary, versions 1 and 2) ----------------------------

_UNIX_TO_INTERNAL = 62135596800  # seconds from 0001-01-01 to 1970-01-01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = struct.Struct(">BqiH")  # version, seconds since year 1, nanoseconds, offset minutes (raw uint16)
_ZERO_FIXED = timezone(timedelta(0), "+00:00")


def _enc_time(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    if not isinstance(v, datetime):
        raise EncodeError(f"time.Time needs a datetime, got {type(v).__name__}")
    off = v.utcoffset()
    if off is None:
        raise EncodeError("time.Time needs an aware datetime (a naive one has no known instant)")
    delta = v - _EPOCH
    sec = delta.days * 86400 + delta.seconds + _UNIX_TO_INTERNAL
    nsec = getattr(v, "nanosecond", None) if type(v) is Time else None
    if nsec is None or nsec // 1000 != v.microsecond:
        nsec = v.microsecond * 1000
    version = 1
    extra = b""
    if v.tzinfo is UTC:
        minutes = -1
    else:
        total = off.days * 86400 + off.seconds  # exact: Python offsets have no sub-second part here
        if off.microseconds:
            raise EncodeError("time.Time zone offsets are whole seconds")
        rem = abs(total) % 60 * (1 if total >= 0 else -1)  # Go's % truncates toward zero
        if rem:
            version = 2
            extra = bytes([rem & 0xFF])
        minutes = int(total / 60)
        if minutes < -32768 or minutes == -1 or minutes > 32767:
            raise EncodeError(f"time.Time zone offset {total} s cannot be encoded (Go: unexpected zone offset)")
    body = _TIME.pack(version, sec, nsec, minutes & 0xFFFF) + extra
    buf.append(len(body))
    buf += body


def _dec_time(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    n = data[off]
    off += 1
    end = off + n
    if end > len(data):
        raise DecodeError(f"time.Time of {n} bytes runs past the end of the data")
    version = data[off] if n else 0
    if not ((version == 1 and n == 15) or (version == 2 and n == 16)):
        raise DecodeError(f"time.Time: unsupported encoding (version {version}, {n} bytes)")
    _, sec, nsec, raw_min = _TIME.unpack_from(data, off)
    minutes = raw_min - 0x10000 if raw_min & 0x8000 else raw_min
    offset = minutes * 60
    if version == 2:
        offset += data[off + 15]  # as Go: the seconds byte is read unsigned
    if not 0 <= nsec < 1_000_000_000:
        raise DecodeError(f"time.Time: nanoseconds out of range ({nsec})")
    if offset == -60:
        tz: timezone = UTC
    elif offset == 0:
        tz = _ZERO_FIXED  # Go's FixedZone with offset 0 is not its UTC: keep it apart
    else:
        tz = timezone(timedelta(seconds=offset))
    try:
        dt = (_EPOCH + timedelta(seconds=sec - _UNIX_TO_INTERNAL, microseconds=nsec // 1000)).astimezone(tz)
    except (OverflowError, ValueError) as e:
        raise DecodeError(f"time.Time out of Python's range: {e}") from None
    return Time.from_datetime(dt, nsec), end


_T_TIME = _GoType("time.Time", _K_BASIC, b"\xaf", _enc_time, _dec_time)

# --- errors -----------------------------------------------------------------------

# Registered errors: an object (a singleton such as gen.TERMINATE_REASON_NORMAL) or a
# class stands for one Go text; a text decodes through its factory.
_ERR_BY_OBJ: dict[int, tuple[BaseException, str]] = {}
_ERR_BY_CLASS: dict[type, str] = {}
_ERR_TEXTS: dict[str, Callable[[], BaseException]] = {}


def _error_text(e: BaseException) -> str:
    hit = _ERR_BY_OBJ.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    if type(e) is RemoteError:
        return e.text
    if _ERR_BY_CLASS:
        for k in type(e).__mro__:
            t = _ERR_BY_CLASS.get(k)
            if t is not None:
                return t
    return str(e) or type(e).__name__


def _error_factory(text: str) -> Callable[[], BaseException]:
    f = _ERR_TEXTS.get(text)
    if f is not None:
        return f
    return lambda: RemoteError(text)


def _error_from_text(text: str) -> BaseException:
    f = _ERR_TEXTS.get(text)
    return f() if f is not None else RemoteError(text)


def _enc_error(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    if v is None:
        buf += b"\xff\xff"
        return
    if not isinstance(v, BaseException):
        raise EncodeError(f"error expected (an exception), got {type(v).__name__}")
    text = _error_text(v)
    if c is not None:
        i = c._err_ids.get(text)
        if i is not None:
            buf += i
            return
    raw = text.encode()
    if len(raw) > _MAX_ERROR:
        raise EncodeError(f"error text too long: {len(raw)} bytes (max {_MAX_ERROR})")
    buf += _H.pack(len(raw))
    buf += raw


def _dec_error(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    n = (data[off] << 8) | data[off + 1]
    off += 2
    if n == 0xFFFF:
        return None, off
    if n > _MAX_ERROR:
        if c is None:
            raise DecodeError(f"error cache id {n} but no error cache")
        f = c._errs.get(n)
        if f is None:
            raise DecodeError(f"unknown error cache id {n}")
        return f(), off
    end = off + n
    if end > len(data):
        raise DecodeError(f"error text of {n} bytes runs past the end of the data")
    return _error_from_text(data[off:end].decode()), end


_T_ERROR = _GoType("error", _K_BASIC, b"\x9c", _enc_error, _dec_error, min_size=2)

# --- any ---------------------------------------------------------------------------


def _enc_any(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    f = _ANY_ENC.get(type(v))
    if f is None:
        f = _resolve_any(type(v))
    f(buf, v, c)


def _dec_any(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    return _TOP_DEC[data[off]](data, off + 1, c)


_T_ANY = _GoType("any", _K_ANY, b"\x84", _enc_any, _dec_any)

_BASIC_BY_TAG: dict[int, _GoType] = {
    t.prefix[0]: t
    for t in (
        _T_INT8,
        _T_INT16,
        _T_INT32,
        _T_INT64,
        _T_INT,
        _T_UINT8,
        _T_UINT16,
        _T_UINT32,
        _T_UINT64,
        _T_UINT,
        _T_FLOAT32,
        _T_FLOAT64,
        _T_BOOL,
        _T_STRING,
        _T_BINARY,
        _T_ATOM,
        _T_PID,
        _T_PROCESSID,
        _T_ALIAS,
        _T_EVENT,
        _T_REF,
        _T_TIME,
        _T_ERROR,
        _T_ANY,
    )
}

# --- composite kinds ------------------------------------------------------------------

_COMPOSITES: dict[tuple[Any, ...], _GoType] = {}
_WORK_PER_BYTE = 64  # decoding steps allowed per byte of input: bounds arrays of empty items


def _slice_of(elem: _GoType) -> _GoType:
    key = (_K_SLICE, elem)
    hit = _COMPOSITES.get(key)
    if hit is not None:
        return hit
    ienc, idec, ework = elem.enc, elem.dec, elem.work

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        if v is None:
            buf.append(0xFF)
            return
        buf.append(0x9D)
        buf += _I.pack(len(v))
        for x in v:
            ienc(buf, x, c)

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        m = data[off]
        if m == 0xFF:
            return None, off + 1
        if m != 0x9D:
            raise DecodeError(f"slice marker 0x9d expected, got {m:#04x}")
        (n,) = _I.unpack_from(data, off + 1)
        off += 5
        if n > len(data) - off or (ework > 1 and n * ework > _WORK_PER_BYTE * len(data)):
            raise DecodeError(f"slice of {n} items runs past the end of the data")
        out: list[Any] = []
        append = out.append
        for _ in range(n):
            x, off = idec(data, off, c)
            append(x)
        return out, off

    if elem is _T_ANY:
        dec_any = dec
    else:

        def dec_any(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
            v, off = dec(data, off, c)
            if v is None:
                return None, off
            s = Slice.__new__(Slice)
            list.extend(s, v)
            s.go_type = t
            return s, off

    t = _GoType("[]" + elem.name, _K_SLICE, b"\x9d" + elem.prefix, enc, dec, dec_any, has_reg=elem.has_reg)
    t.elem = elem
    if len(_COMPOSITES) < _MEMO_MAX:
        _COMPOSITES[key] = t
    return t


def _array_of(elem: _GoType, length: int) -> _GoType:
    key = (_K_ARRAY, elem, length)
    hit = _COMPOSITES.get(key)
    if hit is not None:
        return hit
    ienc, idec = elem.enc, elem.dec
    need = length * elem.min_size
    work = 1 + length * elem.work

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        if v is None or len(v) != length:
            got = None if v is None else len(v)
            raise EncodeError(f"[{length}]{elem.name} needs exactly {length} items, got {got}")
        for x in v:
            ienc(buf, x, c)

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        if need > len(data) - off or work > _WORK_PER_BYTE * len(data):
            raise DecodeError(f"array of {length} items runs past the end of the data")
        out: list[Any] = []
        append = out.append
        for _ in range(length):
            x, off = idec(data, off, c)
            append(x)
        return out, off

    def dec_any(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        v, off = dec(data, off, c)
        a = Array.__new__(Array)
        list.extend(a, v)
        a.go_type = t
        return a, off

    t = _GoType(
        f"[{length}]{elem.name}",
        _K_ARRAY,
        b"\x9e" + _I.pack(length) + elem.prefix,
        enc,
        dec,
        dec_any,
        has_reg=elem.has_reg,
        min_size=need,
        work=work,
    )
    t.elem = elem
    t.length = length
    if len(_COMPOSITES) < _MEMO_MAX:
        _COMPOSITES[key] = t
    return t


def _map_of(key: _GoType, value: _GoType) -> _GoType:
    ck = (_K_MAP, key, value)
    hit = _COMPOSITES.get(ck)
    if hit is not None:
        return hit
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec
    ework = key.work + value.work

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        if v is None:
            buf.append(0xFF)
            return
        buf.append(0x9F)
        buf += _I.pack(len(v))
        for k, x in v.items():
            kenc(buf, k, c)
            venc(buf, x, c)

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        m = data[off]
        if m == 0xFF:
            return None, off + 1
        if m != 0x9F:
            raise DecodeError(f"map marker 0x9f expected, got {m:#04x}")
        (n,) = _I.unpack_from(data, off + 1)
        off += 5
        if n > len(data) - off or (ework > 2 and n * ework > _WORK_PER_BYTE * len(data)):
            raise DecodeError(f"map of {n} entries runs past the end of the data")
        out: dict[Any, Any] = {}
        for _ in range(n):
            k, off = kdec(data, off, c)
            x, off = vdec(data, off, c)
            out[k] = x
        return out, off

    if key is _T_ANY and value is _T_ANY:
        dec_any = dec
    else:

        def dec_any(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
            v, off = dec(data, off, c)
            if v is None:
                return None, off
            m = Map.__new__(Map)
            dict.update(m, v)
            m.go_type = t
            return m, off

    t = _GoType(
        f"map[{key.name}]{value.name}",
        _K_MAP,
        b"\x9f" + key.prefix + value.prefix,
        enc,
        dec,
        dec_any,
        has_reg=key.has_reg or value.has_reg,
    )
    t.key = key
    t.elem = value
    if len(_COMPOSITES) < _MEMO_MAX:
        _COMPOSITES[ck] = t
    return t


# ---------------------------------------------------------------------------
# Registered types


class _Registered:
    """What :func:`register` records for one Python class and its Go name."""

    __slots__ = ("cls", "fields", "go_type", "name")

    def __init__(self, name: str, cls: type, go_type: _GoType, fields: list[tuple[str, _GoType]] | None) -> None:
        self.name = name
        self.cls = cls
        self.go_type = go_type
        self.fields = fields


_REG_BY_NAME: dict[str, _Registered] = {}
_REG_BY_RAW: dict[bytes, _Registered] = {}
_REG_BY_CLS: dict[type, _Registered] = {}

_WIDTHS: dict[type, _GoType] = {
    Int8: _T_INT8,
    Int16: _T_INT16,
    Int32: _T_INT32,
    Int64: _T_INT64,
    Int: _T_INT,
    Uint8: _T_UINT8,
    Uint16: _T_UINT16,
    Uint32: _T_UINT32,
    Uint64: _T_UINT64,
    Uint: _T_UINT,
    Float32: _T_FLOAT32,
    Float64: _T_FLOAT64,
}


# --- the any-slot encoder table (filled by codec.py) and its fallback ---


def _tagged(t: _GoType) -> _Enc:
    tag = t.prefix
    benc = t.enc

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        buf += tag
        benc(buf, v, c)

    return enc


_ANY_ENC: dict[type, _Enc] = {}
_TOP_DEC: list[_Dec] = []


def _resolve_any(cls: type) -> _Enc:
    """The any-slot encoder for a type not in the table: by its nearest known base."""
    if issubclass(cls, BaseException):
        f = _tagged(_T_ERROR)
    else:
        for b in cls.__mro__[1:]:
            hit = _ANY_ENC.get(b)
            if hit is not None and b is not object:
                f = hit
                break
        else:
            raise EncodeError(f'no Go type for {cls.__qualname__}: register it with net.register("#...")')
    if len(_ANY_ENC) < 10_000:
        _ANY_ENC[cls] = f
    return f
