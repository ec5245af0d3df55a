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

Where Go type-asserts an ``any`` (``MessageResult.Result`` of an event link/monitor must
be a ``[]gen.MessageEvent``, else Go reports ``ErrMalformed``), send the typed value even
when empty or nil: ``Slice(gen.MessageEvent, history)`` or ``Typed(list[gen.MessageEvent],
None)``, never a bare None.

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
registered (register nested types first). A field annotated ``X | None`` where Go's
``X`` has no nil (a PID, an alias, a number...) writes Go's zero value for None; for an
identifier the zero value reads back as None. A registered class's subclass is sent as
the registered class. ``go_type_name(value)`` is the Go name a value is sent under.

Errors travel as text: ``register_error`` maps a text to an exception class or object
(``ergopy.net.types`` maps Go's framework errors onto ``gen``'s classes), and
``error_text(e)`` is the text an exception is sent as. Errors are compared by class
and text on the way back, as Go compares registered errors by identity and the rest
not at all.

Caches
------
In the handshake each node sends id tables for atoms, type names and error texts; it
then writes those ids instead of the texts. :class:`EncodeCaches` are ours (optional:
writing names and texts is always valid), :class:`DecodeCaches` the peer's. Given the
peer's type names (``EncodeCaches(peer_types=...)``), encoding a value the peer could
not decode fails at once with EncodeError instead of being dropped by the peer.

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

from .caches import DecodeCaches, EncodeCaches
from .codec import decode, decode_from, encode, encode_into
from .registry import (
    error_text,
    go_type_name,
    register,
    register_atom,
    register_error,
    registered_errors,
    registered_types,
)
from .values import (
    Array,
    ArrayOf,
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
    Typed,
    Uint,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
)

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
    "error_text",
    "go_type_name",
    "register",
    "register_atom",
    "register_error",
    "registered_errors",
    "registered_types",
]
