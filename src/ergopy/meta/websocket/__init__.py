"""WebSocket meta-processes: the Handler (server side) and the Connection (both sides).

    handler = websocket.create_handler(websocket.HandlerOptions(process_pool=["w1", "w2"]))
    self.spawn_meta(handler, gen.MetaOptions())
    conn = await websocket.create_connection(websocket.ConnectionOptions(process="w1", url="ws://..."))
    self.spawn_meta(conn, gen.MetaOptions())

Connections deliver ``MessageConnect``, ``Message``..., ``MessageDisconnect`` to their
process; send ``Message`` to a connection's alias to write to its peer.
"""

from . import edf_types  # noqa: F401 - registers Message/MessageType/MessageDisconnect under Go's names
from .connection import CloseError, ConnectError, Connection, SlowConsumerError, create_connection
from .handler import Handler, create_handler, same_origin
from .messages import (
    Message,
    MessageConnect,
    MessageDisconnect,
    MessageType,
    Request,
    close_body,
    cut_close_reason,
    parse_close_body,
    sendable_close_code,
)
from .options import ConnectionOptions, HandlerOptions, Limits, SlowConsumerPolicy

__all__ = [
    "CloseError",
    "ConnectError",
    "Connection",
    "ConnectionOptions",
    "Handler",
    "HandlerOptions",
    "Limits",
    "Message",
    "MessageConnect",
    "MessageDisconnect",
    "MessageType",
    "Request",
    "SlowConsumerError",
    "SlowConsumerPolicy",
    "close_body",
    "create_connection",
    "create_handler",
    "cut_close_reason",
    "parse_close_body",
    "same_origin",
    "sendable_close_code",
]
