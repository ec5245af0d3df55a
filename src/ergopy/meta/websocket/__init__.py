"""WebSocket meta-processes: the Handler (server side) and the Connection (both sides).

    handler = websocket.create_handler(websocket.HandlerOptions(process_pool=["w1", "w2"]))
    self.spawn_meta(handler, gen.MetaOptions())
    conn = await websocket.create_connection(websocket.ConnectionOptions(process="w1", url="ws://..."))
    self.spawn_meta(conn, gen.MetaOptions())

Connections deliver ``MessageConnect``, ``Message``..., ``MessageDisconnect`` to their
process; send ``Message`` to a connection's alias to write to its peer.
"""

from .connection import ConnectError, Connection, SlowConsumerError, create_connection
from .handler import Handler, create_handler, same_origin
from .messages import (
    Message,
    MessageConnect,
    MessageDisconnect,
    MessageType,
    Request,
    close_body,
    parse_close_body,
)
from .options import ConnectionOptions, HandlerOptions, Limits, SlowConsumerPolicy

__all__ = [
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
    "parse_close_body",
    "same_origin",
]
