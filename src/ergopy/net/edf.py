"""EDF, Ergo's data format: the codec every ENP frame and handshake message is written in.

Byte-compatible with Go Ergo 3.1.0 (``net/edf``); ``tests/data/ergo-wire/edf-vectors.json``
holds 121 encodings made by Go's own encoder and the tests check every one.

A value is a *type header* then a *body*. Basic kinds and identifiers have a one-byte
tag as header; registered types ``0x83, uint16 name length, name`` (or ``0x83, uint16
cache id``); slices, maps and arrays of known types ``0x82, uint16 n, n bytes of type
prefix``. Where a container fixes the type (a struct field, an item of ``[]T``, a key
or value of ``map[K]V``) only the body is written.

How Python values map to Go types
---------------------------------
In an ``any`` slot (top level, a field typed ``Any``, an item of a plain ``list``, a key
or value of a plain ``dict``) a value's Python type picks its Go type:

=====================  ==========================================================
Python                 Go
=====================  ==========================================================
``int``                ``int`` (8 bytes, tag 0x96); ``net.Int64(5)`` etc. for the others
``float``              ``float64``; ``net.Float32(0.5)`` for ``float32``
``str``                ``string`` (at most 65,535 UTF-8 bytes)
``bytes``              ``[]byte`` (``bytearray`` and ``memoryview`` too)
``bool``               ``bool``
``None``               nil (only where Go allows nil: any, error, slices, maps)
``gen.Atom``           ``gen.Atom`` (at most 255 bytes)
``gen.PID`` ...        ``gen.PID``, ``gen.ProcessID``, ``gen.Alias``, ``gen.Ref``, ``gen.Event``
aware ``datetime``     ``time.Time`` (a naive one is refused: its instant is unknown)
``BaseException``      ``error`` (registered errors by id or text, others as their text)
``list`` / ``tuple``   ``[]any``
``dict``               ``map[any]any``
registered class       the Go type it was registered as
=====================  ==========================================================

Decoded values keep their Go type, so re-encoding them writes the same bytes: Go's
``int64`` comes back as ``net.Int64(5)`` (an ``int`` subclass: it compares and hashes as
5), ``float32`` as ``net.Float32``, ``[]int`` as :class:`Slice` (a ``list`` that remembers
``[]int``), ``map[string]int`` as :class:`Map`, ``[3]int`` as :class:`Array`,
``time.Time`` as :class:`Time` (a ``datetime`` that keeps Go's nanoseconds), an error
whose text is registered as that error (``"unknown process"`` is a
``gen.ProcessUnknownError``), any other error as :class:`RemoteError`. ``[]any`` and
``map[any]any`` decode to plain ``list`` and ``dict``. A nil slice or map decodes to
``None``. :class:`Typed` gives any value an explicit Go type in an ``any`` slot.

Registered types
----------------
``@register("#example.com/chat/Say")`` on a dataclass maps it to a Go struct: fields in
Go's order, Go widths by annotation (``seq: Annotated[int, net.Int64]`` or ``seq:
net.Int64``; ``list[str]`` is ``[]string``; ``dict[str, net.Int64]`` is
``map[string]int64``; ``Annotated[list[gen.Atom], net.ArrayOf(2)]`` is ``[2]gen.Atom``).
A subclass of a width (``class Status(net.Int16)``), of ``str``, ``list[T]`` or
``dict[K, V]`` maps a Go named type (``type Status int16``, ``type ChatLog []Chat``).
A class with ``edf_marshal(self) -> bytes`` and a classmethod ``edf_unmarshal(data)``
maps a Go type with ``MarshalEDF``/``MarshalBinary`` (written as ``uint32 length +
bytes``). As in Go, a registered type's field types must be known when it is
registered (register nested types first).

Caches
------
In the handshake each node sends id tables for atoms, type names and error texts; it
then writes those ids instead of the texts. :class:`EncodeCaches` are ours (optional:
writing names and texts is always valid), :class:`DecodeCaches` the peer's.

Limits (as Go's)
----------------
Strings encode up to 65,535 bytes (Go 3.1.0 *decodes* only up to 65,533: send Go no
more), atoms 255 bytes, error texts 32,767 bytes, type names 4,095 bytes, binaries
under 4 GiB. Decoding never reads past the buffer and never allocates more items than
there are bytes left, so a declared count of 4 billion fails at once with
:class:`DecodeError`; nothing else escapes :func:`decode`. A fixed-size array is refused
when its length exceeds the bytes left (an array of zero-size items that long is not
accepted, unlike Go).
"""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from ..gen import PID, Alias, Atom, Error, Event, ProcessID, Ref

__all__ = [
    "Array",
    "ArrayOf",
    "DecodeCaches",
    "DecodeError",
    "EncodeCaches",
    "EncodeError",
    "Float32",
    "Float64",
    "Int",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Map",
    "RemoteError",
    "Slice",
    "Time",
    "Typed",
    "Uint",
    "Uint8",
    "Uint16",
    "Uint32",
    "Uint64",
    "decode",
    "decode_from",
    "encode",
    "encode_into",
    "go_type_name",
    "register",
    "register_atom",
    "register_error",
    "registered_errors",
    "registered_types",
]

# ---------------------------------------------------------------------------
# Errors


class EncodeError(Error, TypeError, ValueError):
    """A value EDF cannot encode: a type with no Go mapping, a number out of its Go
    width's range, a string/atom/error text over its limit, a None where Go allows no nil."""


class DecodeError(Error, ValueError):
    """Bytes that are not one valid EDF value: truncated, an unknown tag or registered
    name, a cache id missing from the peer's tables, a length that runs past the end."""


class RemoteError(Error):
    """An error decoded from the network whose text is not a registered error.

    Go rebuilds such an error from its text (``errors.New``) and so does ergopy: two
    ``RemoteError`` with the same text compare equal. Encoding one writes its text.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __eq__(self, other: object) -> bool:
        return type(other) is RemoteError and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RemoteError({self.text!r})"


# ---------------------------------------------------------------------------
# Go widths: markers for annotations, and explicit wrappers in ``any`` slots


class Int8(int):
    """Go ``int8`` (tag 0x92). Out-of-range values fail at encode with EncodeError."""

    __slots__ = ()


class Int16(int):
    """Go ``int16`` (tag 0x93)."""

    __slots__ = ()


class Int32(int):
    """Go ``int32`` (tag 0x94)."""

    __slots__ = ()


class Int64(int):
    """Go ``int64`` (tag 0x95): on the wire distinct from Go ``int``."""

    __slots__ = ()


class Int(int):
    """Go ``int`` (always 8 bytes, tag 0x96); a plain Python ``int`` is encoded as this."""

    __slots__ = ()


class Uint8(int):
    """Go ``uint8`` (tag 0x97)."""

    __slots__ = ()


class Uint16(int):
    """Go ``uint16`` (tag 0x98)."""

    __slots__ = ()


class Uint32(int):
    """Go ``uint32`` (tag 0x99)."""

    __slots__ = ()


class Uint64(int):
    """Go ``uint64`` (tag 0x9a)."""

    __slots__ = ()


class Uint(int):
    """Go ``uint`` (always 8 bytes, tag 0x9b)."""

    __slots__ = ()


class Float32(float):
    """Go ``float32`` (tag 0x8f); encoding rounds to the nearest float32."""

    __slots__ = ()


class Float64(float):
    """Go ``float64`` (tag 0x90); a plain Python ``float`` is encoded as this."""

    __slots__ = ()


class ArrayOf:
    """Annotation marker for a Go fixed-size array: ``Annotated[list[int], ArrayOf(3)]`` is ``[3]int``."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        if not 0 <= length <= 0xFFFFFFFF:
            raise ValueError(f"array length out of range: {length}")
        self.length = length


class Time(datetime):
    """A Go ``time.Time`` decoded from EDF: a ``datetime`` that also keeps Go's nanoseconds.

    ``nanosecond`` is the full sub-second part (0..999,999,999); ``microsecond`` is
    its truncation. Encoding a ``Time`` writes the nanoseconds back.
    """

    nanosecond: int

    @classmethod
    def from_datetime(cls, dt: datetime, nanosecond: int | None = None) -> Time:
        """A ``Time`` for ``dt`` (aware), with ``nanosecond`` (default ``dt.microsecond * 1000``).

        Raises ValueError if ``nanosecond`` does not agree with ``dt.microsecond``.
        """
        t = cls(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, dt.tzinfo, fold=dt.fold)
        ns = dt.microsecond * 1000 if nanosecond is None else nanosecond
        if ns // 1000 != dt.microsecond:
            raise ValueError(f"nanosecond {ns} does not match microsecond {dt.microsecond}")
        t.nanosecond = ns
        return t


# ---------------------------------------------------------------------------
# Typed containers (values decoded from an ``any`` slot keep their Go type)


class Slice(list[Any]):
    """A Go slice ``[]T`` (a ``list`` that remembers ``T``): ``Slice(net.Int64, [1, 2])``.

    Raises EncodeError if ``elem`` names no Go type.
    """

    __slots__ = ("go_type",)

    def __init__(self, elem: Any, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.go_type = elem if isinstance(elem, _GoType) and elem.kind == _K_SLICE else _slice_of(_go_type(elem))

    def __repr__(self) -> str:
        return f"Slice({self.go_type.name}, {list.__repr__(self)})"


class Array(list[Any]):
    """A Go array ``[N]T``: ``Array(net.Int, [1, 2, 3])`` is ``[3]int`` (N is the length).

    Raises EncodeError if ``elem`` names no Go type.
    """

    __slots__ = ("go_type",)

    def __init__(self, elem: Any, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        if isinstance(elem, _GoType) and elem.kind == _K_ARRAY:
            self.go_type = elem
        else:
            self.go_type = _array_of(_go_type(elem), len(self))

    def __repr__(self) -> str:
        return f"Array({self.go_type.name}, {list.__repr__(self)})"


class Map(dict[Any, Any]):
    """A Go map ``map[K]V`` (a ``dict`` that remembers K and V): ``Map(str, net.Int64, {"a": 1})``.

    Raises EncodeError if ``key`` or ``value`` names no Go type.
    """

    __slots__ = ("go_type",)

    def __init__(self, key: Any, value: Any = None, items: Mapping[Any, Any] | Iterable[Any] = ()) -> None:
        super().__init__(items)
        if isinstance(key, _GoType) and key.kind == _K_MAP:
            self.go_type = key
        else:
            self.go_type = _map_of(_go_type(key), _go_type(value))

    def __repr__(self) -> str:
        return f"Map({self.go_type.name}, {dict.__repr__(self)})"


class Typed:
    """A value with an explicit Go type for an ``any`` slot: ``Typed(list[net.Int64], None)``
    is a nil ``[]int64``; ``Typed(net.Uint16, 5)`` a ``uint16``.

    Raises EncodeError if ``go_type`` names no Go type.
    """

    __slots__ = ("go_type", "value")

    def __init__(self, go_type: Any, value: Any) -> None:
        self.go_type = go_type if isinstance(go_type, _GoType) else _go_type(go_type)
        self.value = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Typed):
            return self.go_type is other.go_type and self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((id(self.go_type), self.value))

    def __repr__(self) -> str:
        return f"Typed({self.go_type.name}, {self.value!r})"


# ---------------------------------------------------------------------------
# Caches


class EncodeCaches:
    """Our own id tables, sent in our Introduce; the encoder then writes ids for these.

    ``atoms`` (ids from 256), ``types`` (registered Go type names, ids from 4096) and
    ``errors`` (error texts, ids from 32768) are assigned in the order given. Empty
    tables are always valid: names and texts are then written in full.
    :meth:`for_node` builds the usual tables: the node's name, every registered type
    and every registered error.

    ``peer_types``, when given, are the Go type names the peer can decode (the values of
    its Introduce's type table: Go sends every type it registered). Encoding a value
    that would write any other registered name then raises EncodeError at once, where
    Go would drop the frame silently on the peer's side. Names of registered structs
    nested in fields are never written (their bodies are inline), so only the names a
    value actually writes count.

    Raises ValueError if a table is too long or an atom is over 255 bytes.
    """

    __slots__ = ("_active", "_atom_ids", "_err_ids", "_folds", "_type_hdr", "atoms", "errors", "peer_types",
                 "types")

    def __init__(self, atoms: Iterable[str] = (), types: Iterable[str] = (), errors: Iterable[str] = (),
                 peer_types: Iterable[str] | None = None) -> None:
        self.atoms: dict[int, Atom] = {}
        self.types: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self._atom_ids: dict[str, bytes] = {}
        self._type_hdr: dict[str, bytes] = {}
        self._err_ids: dict[str, bytes] = {}
        self._folds: dict[_GoType, bytes] = {}
        for a in atoms:
            if a in self._atom_ids:
                continue
            i = 256 + len(self.atoms)
            if i > 64535:
                raise ValueError("too many atoms for the atom cache (ids 256-64535)")
            self.atoms[i] = Atom(a)
            self._atom_ids[str.__str__(a)] = _H.pack(i)
        for t in types:
            if t in self._type_hdr:
                continue
            i = 4096 + len(self.types)
            if i > 65535:
                raise ValueError("too many types for the type cache (ids 4096-65535)")
            self.types[i] = t
            self._type_hdr[t] = b"\x83" + _H.pack(i)
        for e in errors:
            if e in self._err_ids:
                continue
            i = 32768 + len(self.errors)
            if i > 65534:
                raise ValueError("too many errors for the error cache (ids 32768-65534)")
            self.errors[i] = e
            self._err_ids[e] = _H.pack(i)
        self.peer_types: frozenset[str] | None = None if peer_types is None else frozenset(peer_types)
        if self.peer_types is not None:
            for name in list(self._type_hdr):
                if name not in self.peer_types:
                    del self._type_hdr[name]  # falls to _unknown_type, which refuses it
            for name in self.peer_types:
                if name not in self._type_hdr and name in _REG_BY_NAME:
                    self._type_hdr[name] = _REG_BY_NAME[name].go_type.prefix
        self._active = bool(self._type_hdr) or self.peer_types is not None

    @classmethod
    def for_node(cls, node: str, peer_types: Iterable[str] | None = None) -> EncodeCaches:
        """Tables as Go builds them: the node name, every registered type and error text
        (``peer_types`` as in the class description)."""
        return cls(atoms=[node], types=list(_REG_BY_NAME), errors=list(_ERR_TEXTS), peer_types=peer_types)

    def _unknown_type(self, name: str, prefix: bytes) -> bytes:
        """The header for a registered name not in our table: its full name, unless the
        peer is known not to have it."""
        if self.peer_types is not None and name not in self.peer_types:
            raise EncodeError(f"the peer cannot decode {name!r}: it is not registered there (Go would drop the "
                              "message silently); register the type on the peer node")
        return prefix

    def error_table(self) -> dict[int, BaseException]:
        """The error table as errors (what Introduce's ``ErrCache map[uint16]error`` holds)."""
        return {i: _error_from_text(t) for i, t in self.errors.items()}


class DecodeCaches:
    """The peer's id tables from its Introduce, to decode what it sends.

    ``atoms`` maps ids to atoms, ``types`` ids to Go type names, ``errors`` ids to error
    texts or errors (their text counts). Ids outside Go's ranges are ignored.
    """

    __slots__ = ("_errs", "_folds", "atoms", "errors", "types")

    def __init__(
        self,
        atoms: Mapping[int, str] | None = None,
        types: Mapping[int, str] | None = None,
        errors: Mapping[int, str | BaseException] | None = None,
    ) -> None:
        self.atoms: dict[int, Atom] = {int(i): Atom(a) for i, a in (atoms or {}).items() if 255 < i <= 65535}
        self.types: dict[int, str] = {int(i): str(t) for i, t in (types or {}).items() if 4095 < i <= 65535}
        self.errors: dict[int, str] = {}
        self._errs: dict[int, Callable[[], BaseException]] = {}
        for i, e in (errors or {}).items():
            if 32767 < i < 65535:
                text = _error_text(e) if isinstance(e, BaseException) else str(e)
                self.errors[int(i)] = text
                self._errs[int(i)] = _error_factory(text)
        self._folds: dict[bytes, _GoType] = {}


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

    __slots__ = ("dec", "dec_any", "elem", "enc", "enc_any", "has_reg", "key", "kind", "length", "name", "prefix",
                 "reg")

    def __init__(self, name: str, kind: int, prefix: bytes, enc: _Enc, dec: _Dec, dec_any: _Dec | None = None,
                 *, has_reg: bool = False) -> None:
        self.name = name
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

    return _GoType(name, _K_BASIC, bytes([tag]), enc, dec, dec_any)


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


_T_STRING = _GoType("string", _K_BASIC, b"\x8d", _enc_string, _dec_string)


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


_T_BINARY = _GoType("[]byte", _K_BASIC, b"\x8e", _enc_binary, _dec_binary)

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


_T_ATOM = _GoType("gen.Atom", _K_BASIC, b"\x8c", _enc_atom, _read_atom)

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


_T_PID = _GoType("gen.PID", _K_BASIC, b"\xaa", _enc_pid, _dec_pid)
_T_PROCESSID = _GoType("gen.ProcessID", _K_BASIC, b"\xab", _enc_named, _dec_processid)
_T_ALIAS = _GoType("gen.Alias", _K_BASIC, b"\xac", _enc_refish, _dec_alias)
_T_EVENT = _GoType("gen.Event", _K_BASIC, b"\xad", _enc_named, _dec_event)
_T_REF = _GoType("gen.Ref", _K_BASIC, b"\xae", _enc_refish, _dec_ref)

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


_T_ERROR = _GoType("error", _K_BASIC, b"\x9c", _enc_error, _dec_error)

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
    for t in (_T_INT8, _T_INT16, _T_INT32, _T_INT64, _T_INT, _T_UINT8, _T_UINT16, _T_UINT32, _T_UINT64, _T_UINT,
              _T_FLOAT32, _T_FLOAT64, _T_BOOL, _T_STRING, _T_BINARY, _T_ATOM, _T_PID, _T_PROCESSID, _T_ALIAS,
              _T_EVENT, _T_REF, _T_TIME, _T_ERROR, _T_ANY)
}

# --- composite kinds ------------------------------------------------------------------

_COMPOSITES: dict[tuple[Any, ...], _GoType] = {}


def _slice_of(elem: _GoType) -> _GoType:
    key = (_K_SLICE, elem)
    hit = _COMPOSITES.get(key)
    if hit is not None:
        return hit
    ienc, idec = elem.enc, elem.dec

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
        if n > len(data) - off:
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

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        if v is None or len(v) != length:
            got = None if v is None else len(v)
            raise EncodeError(f"[{length}]{elem.name} needs exactly {length} items, got {got}")
        for x in v:
            ienc(buf, x, c)

    def dec(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
        if length > len(data) - off:
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

    t = _GoType(f"[{length}]{elem.name}", _K_ARRAY, b"\x9e" + _I.pack(length) + elem.prefix, enc, dec, dec_any,
                has_reg=elem.has_reg)
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
        if n > len(data) - off:
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

    t = _GoType(f"map[{key.name}]{value.name}", _K_MAP, b"\x9f" + key.prefix + value.prefix, enc, dec, dec_any,
                has_reg=key.has_reg or value.has_reg)
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
    Int8: _T_INT8, Int16: _T_INT16, Int32: _T_INT32, Int64: _T_INT64, Int: _T_INT,
    Uint8: _T_UINT8, Uint16: _T_UINT16, Uint32: _T_UINT32, Uint64: _T_UINT64, Uint: _T_UINT,
    Float32: _T_FLOAT32, Float64: _T_FLOAT64,
}

_PLAIN: dict[Any, _GoType] = {
    int: _T_INT, float: _T_FLOAT64, str: _T_STRING, bytes: _T_BINARY, bytearray: _T_BINARY,
    memoryview: _T_BINARY, bool: _T_BOOL, Atom: _T_ATOM, PID: _T_PID, ProcessID: _T_PROCESSID,
    Alias: _T_ALIAS, Event: _T_EVENT, Ref: _T_REF, datetime: _T_TIME, Time: _T_TIME,
    Any: _T_ANY, object: _T_ANY,
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
        return _slice_of(_go_type(args[0]) if args else _T_ANY)
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


def _nullable_ident(t: _GoType) -> _GoType:
    """A field annotated ``X | None`` where Go's X has no nil: None writes Go's zero value."""
    base = t.elem if t.kind == _K_REG and t.elem is not None and t.elem.kind == _K_BASIC else t
    zero = _ZEROS.get(base, _NO_ZERO)
    if zero is _NO_ZERO:
        return t
    benc = t.enc

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        benc(buf, zero if v is None else v, c)

    n = _GoType(t.name, t.kind, t.prefix, enc, t.dec, t.dec_any, has_reg=t.has_reg)
    n.elem, n.key, n.length, n.reg = t.elem, t.key, t.length, t.reg
    return n


_NO_ZERO = object()
_ZEROS: dict[_GoType, Any] = {
    _T_PID: PID("", 0, 0), _T_ALIAS: Alias("", 0, (0, 0, 0)), _T_REF: Ref("", 0, (0, 0, 0)),
    _T_PROCESSID: ProcessID("", ""), _T_EVENT: Event("", ""), _T_ATOM: "", _T_STRING: "", _T_BOOL: False,
    _T_INT8: 0, _T_INT16: 0, _T_INT32: 0, _T_INT64: 0, _T_INT: 0, _T_UINT8: 0, _T_UINT16: 0, _T_UINT32: 0,
    _T_UINT64: 0, _T_UINT: 0, _T_FLOAT32: 0.0, _T_FLOAT64: 0.0, _T_TIME: datetime(1, 1, 1, tzinfo=UTC),
}


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
    ns: dict[str, Any] = {"cls": cls, "name": name, "fields": fields, "field_error": _field_error,
                          "build_error": _build_error, "DecodeError": DecodeError, "EncodeError": EncodeError,
                          "H": _H.pack}
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
    enc_lines += ["        pass", "    except Exception as e:",
                  "        raise field_error(name, v, fields, e) from None"]
    if by_keyword:
        args = ", ".join(f"{a}=v{i}" for i, a in enumerate(attrs))
    else:
        args = ", ".join(f"v{i}" for i in range(len(attrs)))
    dec_lines += ["    try:", f"        return cls({args}), off", "    except Exception as e:",
                  "        raise build_error(name, cls, e) from None"]
    # the any-slot encoder: the same body after the 0x83 header (one call less per message)
    any_lines = ["def enc_any(buf, v, c):",
                 "    buf += prefix if c is None else (c._type_hdr.get(name) or c._unknown_type(name, prefix))",
                 *enc_lines[1:]]
    ns["prefix"] = _reg_prefix(name)
    exec("\n".join(enc_lines), ns)  # generated from identifiers checked above
    exec("\n".join(dec_lines), ns)
    exec("\n".join(any_lines), ns)
    t = _GoType(name, _K_REG, b"", ns["enc"], ns["dec"], has_reg=True)
    t.enc_any = ns["enc_any"]
    return t


_NUM_FMT: dict[_GoType, str] = {
    _T_INT8: "b", _T_INT16: "h", _T_INT32: "i", _T_INT64: "q", _T_INT: "q", _T_UINT8: "B", _T_UINT16: "H",
    _T_UINT32: "I", _T_UINT64: "Q", _T_UINT: "Q", _T_FLOAT32: "f", _T_FLOAT64: "d",
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
        return f"value out of range for its Go type ({e})"
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
    - a subclass of ``list[T]`` (or ``elem=``): a named slice; of ``dict[K, V]`` (or
      ``key=``/``value=``): a named map.

    Returns the class. Raises ValueError if the name or class is already registered or
    the name is too long, EncodeError if a field type has no Go mapping (register
    nested types first, as in Go).
    """
    if cls is None:

        def deco(c: type) -> type:
            _register(go_name, c, fields, kind, elem, key, value)
            return c

        return deco
    _register(go_name, cls, fields, kind, elem, key, value)
    return cls


def _register(go_name: str, cls: type, fields: Sequence[tuple[str, Any]] | None, kind: Any, elem: Any, key: Any,
              value: Any) -> None:
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
                raise EncodeError(f"cannot resolve the field types of {cls.__qualname__} ({e}): define the types "
                                  "it names at module level, or give fields=[(name, type), ...]") from None
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

    t = _GoType(name, _K_REG, b"", benc, dec)
    t.elem = base
    return t


def _named_slice(name: str, cls: type, elem: _GoType) -> _GoType:
    inner = _slice_of(elem)
    ienc, idec = inner.enc, elem.dec

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
        if n > len(data) - off:
            raise DecodeError(f"{name}: {n} items run past the end of the data")
        out = cls()
        append = out.append
        for _ in range(n):
            x, off = idec(data, off, c)
            append(x)
        return out, off

    return _GoType(name, _K_REG, b"", enc, dec)


def _named_map(name: str, cls: type, key: _GoType, value: _GoType) -> _GoType:
    inner = _map_of(key, value)
    ienc, kdec, vdec = inner.enc, key.dec, value.dec

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
        if n > len(data) - off:
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

    return _GoType(name, _K_REG, b"", enc, dec)


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


# ---------------------------------------------------------------------------
# any-slot encoders by Python type


def _tagged(t: _GoType) -> _Enc:
    tag = t.prefix
    benc = t.enc

    def enc(buf: bytearray, v: Any, c: EncodeCaches | None) -> None:
        buf += tag
        benc(buf, v, c)

    return enc


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

_ANY_ENC: dict[type, _Enc] = {
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
for _w, _t in _WIDTHS.items():
    _ANY_ENC[_w] = _tagged(_t)
del _w, _t


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
            raise EncodeError(f"no Go type for {cls.__qualname__}: register it with net.register(\"#...\")")
    if len(_ANY_ENC) < 10_000:
        _ANY_ENC[cls] = f
    return f


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
        r = _REG_BY_RAW.get(data[off + 2:end])
        if r is not None and end <= len(data):
            return r.go_type.dec(data, end, c)
    r, off = _read_reg(data, off, c)
    return r.go_type.dec(data, off, c)


def _top_nil(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    return None, off


def _top_unknown(data: bytes, off: int, c: DecodeCaches | None) -> tuple[Any, int]:
    raise DecodeError(f"unknown type tag {data[off - 1]:#04x}")


_TOP_DEC: list[_Dec] = [_top_unknown] * 256
for _tag, _bt in _BASIC_BY_TAG.items():
    if _bt is not _T_ANY:
        _TOP_DEC[_tag] = _bt.dec_any
_TOP_DEC[0x82] = _top_fold
_TOP_DEC[0x83] = _top_reg
_TOP_DEC[0xFF] = _top_nil
del _tag, _bt

_DECODE_FAILURES = (IndexError, struct.error, UnicodeDecodeError, ValueError, TypeError, OverflowError,
                    RecursionError, KeyError)


def decode_from(data: bytes | bytearray | memoryview, offset: int = 0,
                caches: DecodeCaches | None = None) -> tuple[Any, int]:
    """Decode one value (header and body) at ``offset``; return it and the offset after it.

    Raises DecodeError if the bytes there are not one valid EDF value.
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


_ENCODE_FAILURES = (struct.error, OverflowError, AttributeError, TypeError, ValueError, UnicodeEncodeError,
                    RecursionError)
