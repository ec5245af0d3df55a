"""Identifiers of the actor model: Atom, PID, ProcessID, Ref, Alias, Event.

Each prints exactly as Ergo prints it, so logs and inspect output read the same
in both worlds: ``<2C323E75.0.1001>``, ``<2C323E75.'worker'>``,
``Ref#<2C323E75.1.0.0>``, ``Alias#<2C323E75.1.0.0>``, ``Event#<2C323E75:'ev'>``.

All are immutable and hashable; a ``Ref`` and an ``Alias`` with the same fields
are different values (they never compare equal), as in Go where they are
distinct types.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["PID", "Alias", "Atom", "Event", "ProcessID", "Ref", "crc32"]

_MAX_ATOM_BYTES = 255  # Ergo's limit (ErrAtomTooLong)


def _crc_table(poly: int = 0xD5828281) -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


@lru_cache(maxsize=1024)
def crc32(text: str) -> str:
    """Return Ergo's node checksum of ``text`` as eight upper-case hex digits.

    Ergo uses CRC-32 with the Koopman-style polynomial 0xD5828281 (reflected,
    init and xorout 0xFFFFFFFF); the empty string gives ``""``.
    """
    if not text:
        return ""
    c = 0xFFFFFFFF
    for b in text.encode():
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return "%08X" % (c ^ 0xFFFFFFFF)


class Atom(str):
    """A name: a node name (``node@host``), a process name, an event name.

    An ``Atom`` is a ``str`` (it compares and hashes as its text) that prints
    quoted, as Ergo does: ``str(Atom("worker")) == "'worker'"``.

    Raises ``ValueError`` if the text is longer than 255 bytes.
    """

    __slots__ = ()

    def __new__(cls, value: str = "") -> Atom:
        if type(value) is Atom:
            return value  # str.__new__ would take the quoted __str__ of an Atom
        if len(value) > _MAX_ATOM_BYTES // 4 and len(value.encode()) > _MAX_ATOM_BYTES:
            raise ValueError(f"too long Atom (max: {_MAX_ATOM_BYTES}): {value[:40]!r}...")
        return super().__new__(cls, value)

    def __str__(self) -> str:
        return "'" + str.__str__(self) + "'"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return "Atom(" + str.__repr__(self) + ")"

    @property
    def text(self) -> str:
        """The bare text, unquoted."""
        return str.__str__(self)

    def host(self) -> str:
        """The part after ``@`` (empty if there is none)."""
        _, _, host = self.partition("@")
        return host

    def crc32(self) -> str:
        """Ergo's checksum of the name, as used when printing identifiers."""
        return crc32(str.__str__(self))


class PID:
    """A process identifier: node, a 64-bit ID and the node's creation time.

    Prints as ``<CRC.hi.lo>`` with the two 32-bit halves of ``id`` as signed numbers.
    """

    __slots__ = ("_hash", "creation", "id", "node")
    _hash: int
    node: Atom
    id: int
    creation: int

    def __init__(self, node: str, id: int, creation: int = 0) -> None:
        object.__setattr__(self, "node", node if type(node) is Atom else Atom(node))
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "creation", creation)
        object.__setattr__(self, "_hash", hash((id, creation, str.__str__(self.node))))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PID is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PID:
            return NotImplemented
        return self.id == other.id and self.creation == other.creation and self.node == other.node

    def __str__(self) -> str:
        hi = _int32(self.id >> 32)
        lo = _int32(self.id & 0xFFFFFFFF)
        return f"<{crc32(str.__str__(self.node))}.{hi}.{lo}>"

    def __repr__(self) -> str:
        return f"PID({str.__str__(self.node)!r}, {self.id}, {self.creation})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PID, (str.__str__(self.node), self.id, self.creation))


class _NamedBase:
    """A name on a node: what ``ProcessID`` and ``Event`` share (type-distinct equality)."""

    __slots__ = ("_hash", "name", "node")
    _hash: int
    name: Atom
    node: Atom

    def __init__(self, name: str, node: str = "") -> None:
        object.__setattr__(self, "name", name if type(name) is Atom else Atom(name))
        object.__setattr__(self, "node", node if type(node) is Atom else Atom(node))
        object.__setattr__(self, "_hash", hash((type(self), str.__str__(self.name), str.__str__(self.node))))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _NamedBase)
        return self.name == other.name and self.node == other.node

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str.__str__(self.name)!r}, {str.__str__(self.node)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str.__str__(self.name), str.__str__(self.node)))


class ProcessID(_NamedBase):
    """A process addressed by its registered name on a node. Prints ``<CRC.'name'>``."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"<{crc32(str.__str__(self.node))}.{self.name}>"


class _RefBase:
    __slots__ = ("_hash", "creation", "id", "node")
    _hash: int
    node: Atom
    creation: int
    id: tuple[int, int, int]
    _prefix = ""

    def __init__(self, node: str, creation: int, id: tuple[int, int, int]) -> None:
        object.__setattr__(self, "node", node if type(node) is Atom else Atom(node))
        object.__setattr__(self, "creation", creation)
        object.__setattr__(self, "id", tuple(id))
        object.__setattr__(self, "_hash", hash((type(self), self.id, creation, str.__str__(self.node))))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _RefBase)
        return self.id == other.id and self.creation == other.creation and self.node == other.node

    def __str__(self) -> str:
        a, b, c = self.id
        return f"{self._prefix}#<{crc32(str.__str__(self.node))}.{a}.{b}.{c}>"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str.__str__(self.node)!r}, {self.creation}, {self.id})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str.__str__(self.node), self.creation, self.id))


class Ref(_RefBase):
    """A unique reference (call requests, event tokens). Prints ``Ref#<CRC.a.b.c>``."""

    __slots__ = ()
    _prefix = "Ref"


class Alias(_RefBase):
    """An alias: the identifier of a meta-process, or an extra address of a process.

    Prints ``Alias#<CRC.a.b.c>``; never equal to a ``Ref`` with the same fields.
    """

    __slots__ = ()
    _prefix = "Alias"


class Event(_NamedBase):
    """A named event registered by a producer process on a node. Prints ``Event#<CRC:'name'>``."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"Event#<{crc32(str.__str__(self.node))}:{self.name}>"


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v
