"""The top level: encode a value with its type header, decode one value from its header.

Also the any-slot encoder for each Python type (``int`` is Go's ``int``, ``list`` is
``[]any``...) and the decoder for each header tag.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...gen import PID, Alias, Atom, Event, ProcessID, Ref
from .kinds import (
    _ANY_ENC,
    _BASIC_BY_TAG,
    _H,
    _I,
    _K_ARRAY,
    _K_MAP,
    _K_SLICE,
    _MAX_STRING,
    _MAX_TYPE_NAME,
    _REG_BY_NAME,
    _REG_BY_RAW,
    _T_ALIAS,
    _T_ANY,
    _T_ATOM,
    _T_BINARY,
    _T_ERROR,
    _T_EVENT,
    _T_PID,
    _T_PROCESSID,
    _T_REF,
    _T_TIME,
    _TOP_DEC,
    _WIDTHS,
    _array_of,
    _GoType,
    _map_of,
    _Registered,
    _resolve_any,
    _slice_of,
    _tagged,
)
from .registry import _reason
from .values import Array, DecodeError, EncodeError, Map, RemoteError, Slice, Time, Typed

if TYPE_CHECKING:
    from .caches import DecodeCaches, EncodeCaches

__all__ = ["decode", "decode_from", "encode", "encode_into"]

# any-slot encoders by Python type

_TQ = struct.Struct(">Bq")
_TD = struct.Struct(">Bd")


def _any_int(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    buf += _TQ.pack(0x96, v)


def _any_float(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    buf += _TD.pack(0x90, v)


def _any_str(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    b = v.encode("utf-8", "surrogateescape")
    n = len(b)
    if n > _MAX_STRING:
        raise EncodeError(f"string too long: {n} bytes (max {_MAX_STRING}; Go 3.1.0 decodes at most 65533)")
    buf += b"\x8d" + _H.pack(n)
    buf += b


def _any_bool(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    buf += b"\x91\x01" if v else b"\x91\x00"


def _any_none(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    buf.append(0xFF)


def _any_typed_container(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    v.go_type.encode_any(buf, v, c)


def _any_typed(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    v.go_type.encode_any(buf, v.value, c)


_ANY_LIST = _slice_of(_T_ANY)
_ANY_MAP = _map_of(_T_ANY, _T_ANY)

_ANY_ENC.update(
    {
        int: _any_int,
        float: _any_float,
        str: _any_str,
        bool: _any_bool,
        type(None): _any_none,
        Atom: _tagged(_T_ATOM),
        bytes: _tagged(_T_BINARY),
        bytearray: _tagged(_T_BINARY),
        memoryview: _tagged(_T_BINARY),
        PID: _tagged(_T_PID),
        ProcessID: _tagged(_T_PROCESSID),
        Alias: _tagged(_T_ALIAS),
        Event: _tagged(_T_EVENT),
        Ref: _tagged(_T_REF),
        datetime: _tagged(_T_TIME),
        Time: _tagged(_T_TIME),
        list: _ANY_LIST.encode_any,
        tuple: _ANY_LIST.encode_any,
        dict: _ANY_MAP.encode_any,
        Slice: _any_typed_container,
        Array: _any_typed_container,
        Map: _any_typed_container,
        Typed: _any_typed,
        RemoteError: _tagged(_T_ERROR),
    }
)
for _w, _t in _WIDTHS.items():
    _ANY_ENC[_w] = _tagged(_t)
del _w, _t


# ---------------------------------------------------------------------------
# Top-level decoding (a header then a body)

_FOLD_MEMO: dict[bytes, _GoType] = {}


def _parse_prefix(p: bytes, off: int, c: DecodeCaches | None) -> tuple[_GoType, int]:
    tag = p[off]
    off += 1
    if tag == 0x9D:
        e, off = _parse_prefix(p, off, c)
        return _slice_of(e), off
    if tag == 0x9F:
        k, off = _parse_prefix(p, off, c)
        v, off = _parse_prefix(p, off, c)
        return _map_of(k, v), off
    if tag == 0x9E:
        (n,) = _I.unpack_from(p, off)
        e, off = _parse_prefix(p, off + 4, c)
        return _array_of(e, n), off
    if tag == 0x83:
        r, off = _read_reg(p, off, c)
        return r.go_type, off
    t = _BASIC_BY_TAG.get(tag)
    if t is None:
        raise DecodeError(f"unknown type tag {tag:#04x} in a type prefix")
    return t, off


def _read_reg(data: bytes, off: int, c: DecodeCaches | None) -> tuple[_Registered, int]:
    n = (data[off] << 8) | data[off + 1]
    off += 2
    if n > _MAX_TYPE_NAME:
        if c is None:
            raise DecodeError(f"type cache id {n} but no type cache")
        name = c.types.get(n)
        if name is None:
            raise DecodeError(f"unknown type cache id {n}")
    else:
        end = off + n
        if end > len(data):
            raise DecodeError(f"type name of {n} bytes runs past the end of the data")
        name = data[off:end].decode()
        off = end
    r = _REG_BY_NAME.get(name)
    if r is None:
        raise DecodeError(f"unknown registered type {name!r} (register it with net.register)")
    return r, off


def _top_fold(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    n = (data[off] << 8) | data[off + 1]
    off += 2
    end = off + n
    if end > len(data) or n == 0:
        raise DecodeError(f"type prefix of {n} bytes runs past the end of the data")
    raw = data[off:end]
    memo = _FOLD_MEMO if c is None else c._folds
    t = memo.get(raw)
    if t is None:
        t, used = _parse_prefix(raw, 0, c)
        if used != n:
            raise DecodeError("extra bytes in a type prefix")
        if t.kind not in (_K_SLICE, _K_MAP, _K_ARRAY):
            raise DecodeError(f"folded type {t.name} is not a slice, map or array")
        if len(memo) < 1024:
            memo[raw] = t
    return t.dec_any(data, end, c)


def _top_reg(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    n = (data[off] << 8) | data[off + 1]
    if n <= _MAX_TYPE_NAME:  # fast path: a name we know, looked up by its bytes
        end = off + 2 + n
        r = _REG_BY_RAW.get(data[off + 2 : end])
        if r is not None and end <= len(data):
            return r.go_type.dec(data, end, c)
    r, off = _read_reg(data, off, c)
    return r.go_type.dec(data, off, c)


def _top_nil(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    return None, off


def _top_unknown(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    raise DecodeError(f"unknown type tag {data[off - 1]:#04x}")


_TOP_DEC.extend([_top_unknown] * 256)
for _tag, _bt in _BASIC_BY_TAG.items():
    if _bt is not _T_ANY:
        _TOP_DEC[_tag] = _bt.dec_any
_TOP_DEC[0x82] = _top_fold
_TOP_DEC[0x83] = _top_reg
_TOP_DEC[0xFF] = _top_nil
del _tag, _bt

_DECODE_FAILURES = (
    IndexError,
    struct.error,
    UnicodeDecodeError,
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
    KeyError,
)


def decode_from(
    data: bytes | bytearray | memoryview, offset: int = 0, caches: DecodeCaches | None = None
) -> tuple[Any, int]:
    """Decode one value (header and body) at ``offset``; return it and the offset after it.

    ``bytes`` are read in place; a ``bytearray`` or ``memoryview`` is copied to ``bytes``
    first (all of it: slice a large buffer before). Raises DecodeError if the bytes there
    are not one valid EDF value.
    """
    if type(data) is not bytes:
        data = bytes(data)
    try:
        return _TOP_DEC[data[offset]](data, offset + 1, caches)
    except DecodeError:
        raise
    except _DECODE_FAILURES as e:
        raise DecodeError(_decode_reason(e)) from None


def decode(data: bytes | bytearray | memoryview, caches: DecodeCaches | None = None) -> Any:
    """Decode exactly one value; trailing bytes are an error.

    Raises DecodeError if ``data`` is not exactly one valid EDF value.
    """
    if type(data) is not bytes:
        data = bytes(data)
    try:
        v, end = _TOP_DEC[data[0]](data, 1, caches)
    except DecodeError:
        raise
    except _DECODE_FAILURES as e:
        raise DecodeError(_decode_reason(e)) from None
    if end != len(data):
        raise DecodeError(f"{len(data) - end} bytes left after the value")
    return v


def _decode_reason(e: BaseException) -> str:
    if isinstance(e, IndexError | struct.error):
        return "truncated EDF data"
    if isinstance(e, UnicodeDecodeError):
        return f"invalid UTF-8 in a string or atom: {e.reason}"
    if isinstance(e, RecursionError):
        return "EDF value nested too deeply"
    return f"malformed EDF: {type(e).__name__}: {e}"


# ---------------------------------------------------------------------------
# Top-level encoding


def encode_into(buf: bytearray, value: Any, caches: EncodeCaches | None = None) -> None:
    """Append ``value`` (type header and body) to ``buf``.

    Raises EncodeError if ``value`` is None (Go refuses a bare nil), has no Go type, or
    breaks a limit; ``buf`` is then left as it was.
    """
    if value is None:
        raise EncodeError("nothing to encode (a bare nil cannot be encoded)")
    mark = len(buf)
    try:
        f = _ANY_ENC.get(type(value)) or _resolve_any(type(value))
        f(buf, value, caches)
    except EncodeError:
        del buf[mark:]
        raise
    except _ENCODE_FAILURES as e:
        del buf[mark:]
        raise EncodeError(f"cannot encode {type(value).__qualname__}: {_reason(e)}") from None


def encode(value: Any, caches: EncodeCaches | None = None) -> bytes:
    """``value`` as EDF bytes: type header then body.

    Raises EncodeError as :func:`encode_into`.
    """
    if type(value) is str:  # the most common payloads: no buffer, one concatenation or one pack
        b = value.encode("utf-8", "surrogateescape")
        if len(b) > _MAX_STRING:
            raise EncodeError(f"string too long: {len(b)} bytes (max {_MAX_STRING}; Go 3.1.0 decodes at most 65533)")
        return b"\x8d" + _H.pack(len(b)) + b
    if type(value) is int and -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        return _TQ.pack(0x96, value)
    if value is None:
        raise EncodeError("nothing to encode (a bare nil cannot be encoded)")
    buf = bytearray()
    try:
        f = _ANY_ENC.get(type(value)) or _resolve_any(type(value))
        f(buf, value, caches)
    except EncodeError:
        raise
    except _ENCODE_FAILURES as e:
        raise EncodeError(f"cannot encode {type(value).__qualname__}: {_reason(e)}") from None
    return bytes(buf)


_ENCODE_FAILURES = (
    struct.error,
    OverflowError,
    AttributeError,
    TypeError,
    ValueError,
    UnicodeEncodeError,
    RecursionError,
)
