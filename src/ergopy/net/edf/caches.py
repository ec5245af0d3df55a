"""The id tables each node sends in its Introduce: ours to encode with, the peer's to decode with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ...gen import Atom
from .kinds import _ERR_TEXTS, _H, _REG_BY_NAME, _error_factory, _error_from_text, _error_text
from .values import EncodeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .kinds import _GoType

__all__ = ["DecodeCaches", "EncodeCaches"]

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

    __slots__ = ("_active", "_atom_ids", "_err_ids", "_folds", "_type_hdr", "atoms", "errors", "peer_types", "types")

    def __init__(
        self,
        atoms: Iterable[str] = (),
        types: Iterable[str] = (),
        errors: Iterable[str] = (),
        peer_types: Iterable[str] | None = None,
    ) -> None:
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
            raise EncodeError(
                f"the peer cannot decode {name!r}: it is not registered there (Go would drop the "
                "message silently); register the type on the peer node"
            )
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
