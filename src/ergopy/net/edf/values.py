"""The Python values EDF gives Go types: errors, Go widths, times and typed containers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ...gen import Error

__all__ = [
    "Array",
    "ArrayOf",
    "DecodeError",
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
        k, r = _model()
        is_slice = isinstance(elem, k._GoType) and elem.kind == k._K_SLICE
        self.go_type = elem if is_slice else k._slice_of(r._go_type(elem))

    def __repr__(self) -> str:
        return f"Slice({self.go_type.name}, {list.__repr__(self)})"


class Array(list[Any]):
    """A Go array ``[N]T``: ``Array(net.Int, [1, 2, 3])`` is ``[3]int`` (N is the length).

    Raises EncodeError if ``elem`` names no Go type.
    """

    __slots__ = ("go_type",)

    def __init__(self, elem: Any, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        k, r = _model()
        if isinstance(elem, k._GoType) and elem.kind == k._K_ARRAY:
            self.go_type = elem
        else:
            self.go_type = k._array_of(r._go_type(elem), len(self))

    def __repr__(self) -> str:
        return f"Array({self.go_type.name}, {list.__repr__(self)})"


class Map(dict[Any, Any]):
    """A Go map ``map[K]V`` (a ``dict`` that remembers K and V): ``Map(str, net.Int64, {"a": 1})``.

    Raises EncodeError if ``key`` or ``value`` names no Go type.
    """

    __slots__ = ("go_type",)

    def __init__(self, key: Any, value: Any = None, items: Mapping[Any, Any] | Iterable[Any] = ()) -> None:
        super().__init__(items)
        k, r = _model()
        if isinstance(key, k._GoType) and key.kind == k._K_MAP:
            self.go_type = key
        else:
            self.go_type = k._map_of(r._go_type(key), r._go_type(value))

    def __repr__(self) -> str:
        return f"Map({self.go_type.name}, {dict.__repr__(self)})"


class Typed:
    """A value with an explicit Go type for an ``any`` slot: ``Typed(list[net.Int64], None)``
    is a nil ``[]int64``; ``Typed(net.Uint16, 5)`` a ``uint16``.

    Raises EncodeError if ``go_type`` names no Go type.
    """

    __slots__ = ("go_type", "value")

    def __init__(self, go_type: Any, value: Any) -> None:
        k, r = _model()
        self.go_type = go_type if isinstance(go_type, k._GoType) else r._go_type(go_type)
        self.value = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Typed):
            return self.go_type is other.go_type and self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((id(self.go_type), self.value))

    def __repr__(self) -> str:
        return f"Typed({self.go_type.name}, {self.value!r})"


def _model() -> tuple[Any, Any]:
    """The type model and registry modules (imported late: both build on this module)."""
    from . import kinds, registry

    return kinds, registry
