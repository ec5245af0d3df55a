"""ergopy's WebSocket messages under the Go names of ``ergo.services/meta/websocket``.

Go declares (``websocket/message.go``)::

    type MessageType int
    type Message struct { ID gen.Alias; Type MessageType; Body []byte }
    type MessageDisconnect struct { ID gen.Alias }
    type MessageConnect struct { ID gen.Alias; RemoteAddr net.Addr; LocalAddr net.Addr }

and ``ergo.services/meta`` registers none of them with EDF: a Go program that sends or
receives them over the network calls ``edf.RegisterTypeOf(websocket.MessageType(0))``
then ``edf.RegisterTypeOf(websocket.Message{})`` (Go's EDF has no encoder for an
unregistered named type, so ``MessageType`` must come first) and, if it wants it,
``edf.RegisterTypeOf(websocket.MessageDisconnect{})``. ``MessageConnect`` cannot be
registered in Go (``net.Addr`` is an interface EDF cannot encode), so it stays local.

On the wire a ``Message`` is ``ID`` (alias body), ``Type`` (8-byte Go int: a field
of a named type writes only its body) and ``Body`` (``uint32`` length + bytes). ergopy's
``type=None`` is written as 0, which Go's connection sends as TEXT, as ergopy does.
``MessageDisconnect`` carries only the alias: its close code and reason are ergopy's
own and decode as ``None`` and ``""``.
"""

from __future__ import annotations

from ...gen import Alias
from ...net import edf
from .messages import Message, MessageDisconnect, MessageType

__all__ = ["GO_MESSAGE", "GO_MESSAGE_DISCONNECT", "GO_MESSAGE_TYPE"]

_PKG = "#ergo.services/meta/websocket/"
GO_MESSAGE_TYPE = _PKG + "MessageType"
GO_MESSAGE = _PKG + "Message"
GO_MESSAGE_DISCONNECT = _PKG + "MessageDisconnect"

edf.register(GO_MESSAGE_TYPE, MessageType, kind=edf.Int)
edf.register(GO_MESSAGE, Message, fields=[("id", Alias | None), ("type", MessageType | None), ("body", bytes)])
edf.register(GO_MESSAGE_DISCONNECT, MessageDisconnect, fields=[("id", Alias)])
