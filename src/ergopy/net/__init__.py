"""Ergo's network stack: the EDF codec (:mod:`ergopy.net.edf`) and, beside it, the
handshake, the ENP protocol and the registrar.

The EDF names most code needs are re-exported here::

    from ergopy import net

    @net.register("#example.com/chat/Say")
    @dataclasses.dataclass
    class Say:
        room: str
        seq: Annotated[int, net.Int64]
"""

from . import (
    edf,
    types,
)
from .edf import (
    Array,
    ArrayOf,
    DecodeCaches,
    DecodeError,
    EncodeCaches,
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
    go_type_name,
    register,
    register_error,
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
    "edf",
    "go_type_name",
    "register",
    "register_error",
    "types",
]
