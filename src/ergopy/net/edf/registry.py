"""Registration: Python classes under Go type names, Go errors under their texts, and
how a Python annotation names a Go type."""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints

from ...gen import PID, Alias, Atom, Event, ProcessID, Ref
from .kinds import (
    _ANY_ENC,
    _ERR_BY_CLASS,
    _ERR_BY_OBJ,
    _ERR_TEXTS,
    _H,
    _I,
    _K_BASIC,
    _K_REG,
    _MAX_BINARY,
    _MAX_ERROR,
    _MAX_STRING,
    _MAX_TYPE_NAME,
    _REG_BY_CLS,
    _REG_BY_NAME,
    _REG_BY_RAW,
    _T_ALIAS,
    _T_ANY,
    _T_ATOM,
    _T_BINARY,
    _T_BOOL,
    _T_ERROR,
    _T_EVENT,
    _T_FLOAT32,
    _T_FLOAT64,
    _T_INT,
    _T_INT8,
    _T_INT16,
    _T_INT32,
    _T_INT64,
    _T_PID,
    _T_PROCESSID,
    _T_REF,
    _T_STRING,
    _T_TIME,
    _T_UINT,
    _T_UINT8,
    _T_UINT16,
    _T_UINT32,
    _T_UINT64,
    _WIDTHS,
    _WORK_PER_BYTE,
    _array_of,
    _Enc,
    _error_text,
    _GoType,
    _map_of,
    _Registered,
    _slice_of,
)
from .values import ArrayOf, DecodeError, EncodeError, RemoteError, Time

if TYPE_CHECKING:
    from .caches import DecodeCaches, EncodeCaches

__all__ = [
    "error_text",
    "go_type_name",
    "register",
    "register_atom",
    "register_error",
    "registered_errors",
    "registered_types",
]

_PLAIN: dict[Any, _GoType] = {
    int: _T_INT,
    float: _T_FLOAT64,
    str: _T_STRING,
    bytes: _T_BINARY,
    bytearray: _T_BINARY,
    memoryview: _T_BINARY,
    bool: _T_BOOL,
    Atom: _T_ATOM,
    PID: _T_PID,
    ProcessID: _T_PROCESSID,
    Alias: _T_ALIAS,
    Event: _T_EVENT,
    Ref: _T_REF,
    datetime: _T_TIME,
    Time: _T_TIME,
    Any: _T_ANY,
    object: _T_ANY,
}


def _go_type(ann: Any) -> _GoType:
    """The Go type a Python annotation stands for. Raises EncodeError if there is none."""
    if isinstance(ann, _GoType):
        return ann
    t = _PLAIN.get(ann) if isinstance(ann, type) or ann is Any else None
    if t is not None:
        return t
    if isinstance(ann, type):
        r = _REG_BY_CLS.get(ann)
        if r is not None:
            return r.go_type
        w = _WIDTHS.get(ann)
        if w is not None:
            return w
        if issubclass(ann, BaseException):
            return _T_ERROR
        if issubclass(ann, Time | datetime):
            return _T_TIME
        for base in ann.__mro__[1:]:  # an unregistered subclass (an IntEnum, a str subclass): its base
            if base in _WIDTHS:
                return _WIDTHS[base]
            if base in (int, float, str, bytes):
                return _PLAIN[base]
    origin = get_origin(ann)
    args = get_args(ann)
    if origin is Annotated:
        inner = args[0]
        for m in args[1:]:
            if isinstance(m, type) and m in _WIDTHS:
                return _WIDTHS[m]
            if isinstance(m, ArrayOf):
                elem_args = get_args(inner)
                elem = _go_type(elem_args[0]) if elem_args else _T_ANY
                return _array_of(elem, m.length)
            if isinstance(m, _GoType):
                return m
        return _go_type(inner)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _go_type(rest[0])
        if all(isinstance(a, type) and issubclass(a, BaseException) for a in rest):
            return _T_ERROR
        raise EncodeError(f"no single Go type for {ann!r}: give the field one type")
    if origin in (list, Sequence, typing.Sequence, tuple) or origin is getattr(typing, "List", None):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise EncodeError(f"no Go type for {ann!r}: use list[T] or tuple[T, ...]")
        elem = _go_type(args[0]) if args else _T_ANY
        if elem is _T_UINT8:  # Go's []uint8 is []byte: written as binary, read back as bytes
            return _T_BYTES_FROM_INTS
        return _slice_of(elem)
    if origin in (dict, Mapping, typing.Mapping):
        if not args:
            return _map_of(_T_ANY, _T_ANY)
        return _map_of(_go_type(args[0]), _go_type(args[1]))
    if ann is list or ann is tuple:
        return _slice_of(_T_ANY)
    if ann is dict:
        return _map_of(_T_ANY, _T_ANY)
    if ann is None or ann is type(None):
        raise EncodeError("None is no Go type")
    raise EncodeError(f"no Go type for {ann!r}: register it (edf.register) or use a Go width such as net.Int64")


def _enc_bytes_from_ints(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
    _T_BINARY.enc(buf, v if v is None or isinstance(v, bytes | bytearray | memoryview) else bytes(v), c)


_T_BYTES_FROM_INTS = _GoType("[]byte", _K_BASIC, b"\x8e", _enc_bytes_from_ints, _T_BINARY.dec, min_size=4)


def _nullable_ident(t: _GoType) -> _GoType:
    """A field annotated ``X | None`` where Go's X has no nil: None writes Go's zero value,
    and for an identifier (PID, Alias, Ref, ProcessID, Event) the zero value reads back as None."""
    base = t.elem if t.kind == _K_REG and t.elem is not None and t.elem.kind == _K_BASIC else t
    zero = _ZEROS.get(base, _NO_ZERO)
    if zero is _NO_ZERO:
        return t
    benc, bdec = t.enc, t.dec

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        benc(buf, zero if v is None else v, c)

    dec = bdec
    if base in _IDENTS:

        def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
            v, off = bdec(data, off, c)
            return (None if v == zero else v), off

    n = _GoType(t.name, t.kind, t.prefix, enc, dec, t.dec_any, has_reg=t.has_reg, min_size=t.min_size, work=t.work)
    n.elem, n.key, n.length, n.reg = t.elem, t.key, t.length, t.reg
    return n


_NO_ZERO = object()
_ZEROS: dict[_GoType, Any] = {
    _T_PID: PID("", 0, 0),
    _T_ALIAS: Alias("", 0, (0, 0, 0)),
    _T_REF: Ref("", 0, (0, 0, 0)),
    _T_PROCESSID: ProcessID("", ""),
    _T_EVENT: Event("", ""),
    _T_ATOM: "",
    _T_STRING: "",
    _T_BOOL: False,
    _T_INT8: 0,
    _T_INT16: 0,
    _T_INT32: 0,
    _T_INT64: 0,
    _T_INT: 0,
    _T_UINT8: 0,
    _T_UINT16: 0,
    _T_UINT32: 0,
    _T_UINT64: 0,
    _T_UINT: 0,
    _T_FLOAT32: 0.0,
    _T_FLOAT64: 0.0,
    _T_TIME: datetime(1, 1, 1, tzinfo=UTC),
}


_IDENTS = {_T_PID, _T_ALIAS, _T_REF, _T_PROCESSID, _T_EVENT}


def _field_type(ann: Any) -> _GoType:
    t = _go_type(ann)
    if get_origin(ann) in (Union, types.UnionType) and type(None) in get_args(ann):
        return _nullable_ident(t)
    return t


def _reg_prefix(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > _MAX_TYPE_NAME:
        raise ValueError(f"registered type name too long: {len(raw)} bytes (max {_MAX_TYPE_NAME})")
    return b"\x83" + _H.pack(len(raw)) + raw


def _make_struct(name: str, cls: type, fields: list[tuple[str, _GoType]], by_keyword: bool) -> _GoType:
    """A struct's body encoder and decoder, generated once at registration.

    Strings and runs of numeric fields are written inline (a run of numbers is one
    ``struct`` call); other fields call their type's encoder/decoder.
    """
    attrs = [a for a, _ in fields]
    for a in attrs:
        if not a.isidentifier():
            raise ValueError(f"field name {a!r} is not an identifier")
    ns: dict[str, Any] = {
        "cls": cls,
        "name": name,
        "fields": fields,
        "field_error": _field_error,
        "build_error": _build_error,
        "DecodeError": DecodeError,
        "EncodeError": EncodeError,
        "H": _H.pack,
    }
    enc_lines = ["def enc(buf, v, c):", "    try:"]
    dec_lines = ["def dec(data, off, c):"]
    i = 0
    while i < len(fields):
        a, t = fields[i]
        if t in _NUM_FMT:  # a run of numbers: one struct.pack / unpack_from
            j = i
            while j < len(fields) and fields[j][1] in _NUM_FMT:
                j += 1
            st_ = struct.Struct(">" + "".join(_NUM_FMT[fields[k][1]] for k in range(i, j)))
            ns[f"P{i}"], ns[f"U{i}"] = st_.pack, st_.unpack_from
            enc_lines.append(f"        buf += P{i}({', '.join(f'v.{fields[k][0]}' for k in range(i, j))})")
            targets = "".join(f"v{k}, " for k in range(i, j))
            dec_lines.append(f"    {targets}= U{i}(data, off)")
            dec_lines.append(f"    off += {st_.size}")
            i = j
            continue
        if t is _T_STRING:
            enc_lines += [
                f"        b = v.{a}.encode('utf-8', 'surrogateescape')",
                f"        if len(b) > {_MAX_STRING}:",
                f"            raise EncodeError(f'string too long: {{len(b)}} bytes (max {_MAX_STRING})')",
                "        buf += H(len(b))",
                "        buf += b",
            ]
            dec_lines += [
                "    n = (data[off] << 8) | data[off + 1]",
                "    off += 2",
                "    end = off + n",
                "    if end > len(data):",
                "        raise DecodeError(f'string of {n} bytes runs past the end of the data')",
                f"    v{i} = data[off:end].decode('utf-8', 'surrogateescape')",
                "    off = end",
            ]
        else:
            ns[f"e{i}"] = t.enc
            ns[f"d{i}"] = t.dec
            enc_lines.append(f"        e{i}(buf, v.{a}, c)")
            dec_lines.append(f"    v{i}, off = d{i}(data, off, c)")
        i += 1
    enc_lines += [
        "        pass",
        "    except Exception as e:",
        "        raise field_error(name, v, fields, e) from None",
    ]
    if by_keyword:
        args = ", ".join(f"{a}=v{i}" for i, a in enumerate(attrs))
    else:
        args = ", ".join(f"v{i}" for i in range(len(attrs)))
    dec_lines += [
        "    try:",
        f"        return cls({args}), off",
        "    except Exception as e:",
        "        raise build_error(name, cls, e) from None",
    ]
    # the any-slot encoder: the same body after the 0x83 header (one call less per message)
    any_lines = [
        "def enc_any(buf, v, c):",
        "    buf += prefix if c is None else (c._type_hdr.get(name) or c._unknown_type(name, prefix))",
        *enc_lines[1:],
    ]
    ns["prefix"] = _reg_prefix(name)
    exec("\n".join(enc_lines), ns)  # generated from identifiers checked above
    exec("\n".join(dec_lines), ns)
    exec("\n".join(any_lines), ns)
    t = _GoType(
        name,
        _K_REG,
        b"",
        ns["enc"],
        ns["dec"],
        has_reg=True,
        min_size=sum(f.min_size for _, f in fields),
        work=1 + sum(f.work for _, f in fields),
    )
    t.enc_any = ns["enc_any"]
    return t


_NUM_FMT: dict[_GoType, str] = {
    _T_INT8: "b",
    _T_INT16: "h",
    _T_INT32: "i",
    _T_INT64: "q",
    _T_INT: "q",
    _T_UINT8: "B",
    _T_UINT16: "H",
    _T_UINT32: "I",
    _T_UINT64: "Q",
    _T_UINT: "Q",
    _T_FLOAT32: "f",
    _T_FLOAT64: "d",
}


def _build_error(name: str, cls: type, e: Exception) -> DecodeError:
    return DecodeError(f"{name}: cannot build {cls.__qualname__}: {type(e).__name__}: {e}")


def _field_error(name: str, v: Any, fields: list[tuple[str, _GoType]], e: Exception) -> EncodeError:
    for a, t in fields:
        try:
            t.enc(bytearray(), getattr(v, a), None)
        except Exception as fe:
            return EncodeError(f"{name} field {a!r}: {_reason(fe)}")
    return EncodeError(f"{name}: {_reason(e)}")


def _reason(e: BaseException) -> str:
    if isinstance(e, EncodeError):
        return str(e)
    if isinstance(e, struct.error | OverflowError):
        return (
            f"value out of range for its Go type ({e}); a Python int is Go's int (int64 range): "
            "wrap it in its Go width, e.g. net.Uint64(v)"
        )
    if isinstance(e, AttributeError):
        return f"wrong value type ({e})"
    return f"{type(e).__name__}: {e}"


def register(
    go_name: str,
    cls: type | None = None,
    *,
    fields: Sequence[tuple[str, Any]] | None = None,
    kind: Any = None,
    elem: Any = None,
    key: Any = None,
    value: Any = None,
    length: int | None = None,
) -> Any:
    """Register a Python class under a Go type name (``"#" + package path + "/" + type name``).

    Use as a decorator, ``@register("#example.com/chat/Say")``, or as
    ``register(go_name)(cls)`` / ``register(go_name, cls)``. What the class maps to:

    - a dataclass: a Go struct; fields in order with their annotations as Go types, or
      ``fields=[(attribute, annotation), ...]`` to give them explicitly (then decoding
      builds the class with keywords);
    - a class with ``edf_marshal(self) -> bytes`` and classmethod ``edf_unmarshal(data)``:
      a Go type with ``MarshalEDF``/``MarshalBinary``;
    - a subclass of a Go width, ``int``, ``float``, ``str`` (or ``kind=`` for an
      ``IntEnum``): a Go named basic type;
    - a subclass of ``list[T]`` (or ``elem=``): a named slice, or with ``length=N`` a
      named array ``[N]T``; of ``dict[K, V]`` (or ``key=``/``value=``): a named map.

    Returns the class. Raises ValueError if the name or class is already registered or
    the name is too long, EncodeError if a field type has no Go mapping (register
    nested types first, as in Go).
    """
    if cls is None:

        def deco(c: type) -> type:
            _register(go_name, c, fields, kind, elem, key, value, length)
            return c

        return deco
    _register(go_name, cls, fields, kind, elem, key, value, length)
    return cls


def _register(
    go_name: str,
    cls: type,
    fields: Sequence[tuple[str, Any]] | None,
    kind: Any,
    elem: Any,
    key: Any,
    value: Any,
    length: int | None = None,
) -> None:
    if go_name in _REG_BY_NAME:
        raise ValueError(f"Go type name {go_name!r} is already registered (to {_REG_BY_NAME[go_name].cls!r})")
    if cls in _REG_BY_CLS:
        raise ValueError(f"{cls!r} is already registered as {_REG_BY_CLS[cls].name!r}")
    prefix = _reg_prefix(go_name)
    field_list: list[tuple[str, _GoType]] | None = None
    t: _GoType
    if callable(getattr(cls, "edf_marshal", None)) and callable(getattr(cls, "edf_unmarshal", None)):
        t = _custom_type(go_name, cls)
    elif kind is not None or _named_basic_base(cls) is not None:
        base = _go_type(kind) if kind is not None else _named_basic_base(cls)
        assert base is not None
        t = _named_basic(go_name, cls, base)
    elif length is not None:
        e = _go_type(elem) if elem is not None else _generic_arg(cls, list, 0)
        t = _named_array(go_name, cls, _array_of(e, length))
    elif issubclass(cls, list) or elem is not None:
        e = _go_type(elem) if elem is not None else _generic_arg(cls, list, 0)
        t = _named_slice(go_name, cls, e)
    elif issubclass(cls, dict) or key is not None:
        k = _go_type(key) if key is not None else _generic_arg(cls, dict, 0)
        v = _go_type(value) if value is not None else _generic_arg(cls, dict, 1)
        t = _named_map(go_name, cls, k, v)
    elif fields is not None or dataclasses.is_dataclass(cls):
        if fields is None:
            try:
                hints = get_type_hints(cls, include_extras=True)
            except NameError as e:
                raise EncodeError(
                    f"cannot resolve the field types of {cls.__qualname__} ({e}): define the types "
                    "it names at module level, or give fields=[(name, type), ...]"
                ) from None
            field_list = [(f.name, _field_type(hints[f.name])) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
            t = _make_struct(go_name, cls, field_list, by_keyword=False)
        else:
            field_list = [(a, _field_type(ann)) for a, ann in fields]
            t = _make_struct(go_name, cls, field_list, by_keyword=True)
    else:
        raise EncodeError(f"cannot register {cls!r}: not a dataclass, named basic type, list, dict or custom type")
    t.prefix = prefix
    t.has_reg = True
    t.kind = _K_REG
    reg = _Registered(go_name, cls, t, field_list)
    t.reg = reg
    _REG_BY_NAME[go_name] = reg
    _REG_BY_RAW[go_name.encode()] = reg
    _REG_BY_CLS[cls] = reg
    _ANY_ENC[cls] = t.enc_any or _registered_any(t)


def _registered_any(t: _GoType) -> _Enc:
    """Any-slot encoder of a registered type: its 0x83 header (name or cache id) then the body."""
    name, prefix, body = t.name, t.prefix, t.enc

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        if c is None:
            buf += prefix
        else:
            buf += c._type_hdr.get(name) or c._unknown_type(name, prefix)
        body(buf, v, c)

    return enc


def _generic_arg(cls: type, origin: type, i: int) -> _GoType:
    for b in getattr(cls, "__orig_bases__", ()):
        if get_origin(b) is origin:
            return _go_type(get_args(b)[i])
    return _T_ANY


def _named_basic_base(cls: type) -> _GoType | None:
    for b in cls.__mro__[1:]:
        if b in _WIDTHS:
            return _WIDTHS[b]
        if b in (int, float, str, bool):
            return _PLAIN[b]
    return None


def _named_basic(name: str, cls: type, base: _GoType) -> _GoType:
    benc, bdec = base.enc, base.dec

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        v, off = bdec(data, off, c)
        try:
            return cls(v), off
        except (ValueError, TypeError):  # e.g. an IntEnum without that member: keep the number
            return v, off

    t = _GoType(name, _K_REG, b"", benc, dec, min_size=base.min_size)
    t.elem = base
    return t


def _named_slice(name: str, cls: type, elem: _GoType) -> _GoType:
    inner = _slice_of(elem)
    ienc, idec, ework = inner.enc, elem.dec, elem.work

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        mark = len(buf)
        ienc(buf, v, c)
        if v is not None:
            buf[mark] = 0x83  # a registered slice writes 0x83 as its value marker

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        m = data[off]
        if m == 0xFF:
            return None, off + 1
        if m != 0x83:
            raise DecodeError(f"{name}: registered slice marker 0x83 expected, got {m:#04x}")
        (n,) = _I.unpack_from(data, off + 1)
        off += 5
        if n > len(data) - off or (ework > 1 and n * ework > _WORK_PER_BYTE * len(data)):
            raise DecodeError(f"{name}: {n} items run past the end of the data")
        out = cls()
        append = out.append
        for _ in range(n):
            x, off = idec(data, off, c)
            append(x)
        return out, off

    return _GoType(name, _K_REG, b"", enc, dec)


def _named_array(name: str, cls: type, array: _GoType) -> _GoType:
    """A registered ``[N]T``: its items only, like an unnamed array, decoded into ``cls``."""
    adec = array.dec

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        items, off = adec(data, off, c)
        return cls(items), off

    return _GoType(name, _K_REG, b"", array.enc, dec, min_size=array.min_size, work=array.work)


def _named_map(name: str, cls: type, key: _GoType, value: _GoType) -> _GoType:
    inner = _map_of(key, value)
    ienc, kdec, vdec, ework = inner.enc, key.dec, value.dec, key.work + value.work

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        mark = len(buf)
        ienc(buf, v, c)
        if v is not None:
            buf[mark] = 0x83

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        m = data[off]
        if m == 0xFF:
            return None, off + 1
        if m != 0x83:
            raise DecodeError(f"{name}: registered map marker 0x83 expected, got {m:#04x}")
        (n,) = _I.unpack_from(data, off + 1)
        off += 5
        if n > len(data) - off or (ework > 2 and n * ework > _WORK_PER_BYTE * len(data)):
            raise DecodeError(f"{name}: {n} entries run past the end of the data")
        out = cls()
        for _ in range(n):
            k, off = kdec(data, off, c)
            x, off = vdec(data, off, c)
            out[k] = x
        return out, off

    return _GoType(name, _K_REG, b"", enc, dec)


def _custom_type(name: str, cls: Any) -> _GoType:
    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        raw = v.edf_marshal()
        if len(raw) > _MAX_BINARY:
            raise EncodeError(f"{name}: marshalled value too long ({len(raw)} bytes)")
        buf += _I.pack(len(raw))
        buf += raw

    unmarshal = cls.edf_unmarshal

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        (n,) = _I.unpack_from(data, off)
        off += 4
        end = off + n
        if end > len(data):
            raise DecodeError(f"{name}: {n} bytes run past the end of the data")
        try:
            return unmarshal(data[off:end]), end
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"{name}: edf_unmarshal failed: {e}") from None

    return _GoType(name, _K_REG, b"", enc, dec, min_size=4)


def register_error(error: BaseException | type[BaseException] | str, text: str | None = None) -> None:
    """Register an error so that it travels as one Go error text (and cache id) and decodes back.

    - an exception *instance* (a singleton such as ``gen.TERMINATE_REASON_NORMAL``):
      encodes as its text (``text`` or ``str(error)``), decodes to that same object;
    - an exception *class* with ``text``: every instance encodes as ``text`` (its own
      message is not sent), and ``text`` decodes to a new ``error(text)``;
    - a plain text: decodes to ``RemoteError(text)`` and joins the error cache table.

    Raises ValueError if the text is over 32,767 bytes or already registered, or a
    class is given without ``text``.
    """
    if isinstance(error, str):
        t = error
        factory: Callable[[], BaseException] = lambda: RemoteError(t)  # noqa: E731
    elif isinstance(error, BaseException):
        t = text if text is not None else str(error)
        obj = error
        factory = lambda: obj  # noqa: E731
    elif isinstance(error, type) and issubclass(error, BaseException):
        if text is None:
            raise ValueError(f"register_error({error.__name__}) needs the Go text of the error")
        t = text
        klass = error
        factory = lambda: klass(t)  # noqa: E731
    else:
        raise ValueError(f"not an error: {error!r}")
    if len(t.encode()) > _MAX_ERROR:
        raise ValueError(f"error text too long (max {_MAX_ERROR} bytes)")
    if t in _ERR_TEXTS:
        raise ValueError(f"error text {t!r} is already registered")
    _ERR_TEXTS[t] = factory
    if isinstance(error, BaseException):
        _ERR_BY_OBJ[id(error)] = (error, t)
    elif isinstance(error, type):
        _ERR_BY_CLASS[error] = t


def register_atom(atom: str) -> None:
    """Accepted for symmetry with Go's ``edf.RegisterAtom``; atoms go into
    :class:`EncodeCaches` per connection, so this only checks the length.

    Raises ValueError if the atom is over 255 bytes.
    """
    Atom(atom)


def registered_types() -> dict[str, type]:
    """Every registered Go type name and its Python class, in registration order."""
    return {n: r.cls for n, r in _REG_BY_NAME.items()}


def registered_errors() -> list[str]:
    """Every registered error text, in registration order."""
    return list(_ERR_TEXTS)


def go_type_name(value: Any) -> str | None:
    """The registered Go name of ``value``'s type (``"#main/Chat"``), or None if it is not registered."""
    r = _REG_BY_CLS.get(type(value))
    return r.name if r is not None else None


def error_text(error: BaseException) -> str:
    """The Go text ``error`` travels as: a registered error's text, else ``str(error)``
    (its class name when that is empty)."""
    return _error_text(error)
