"""Options of the WebSocket handler and client connection, each default with its reason."""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .messages import Request

__all__ = ["ConnectionOptions", "HandlerOptions", "Limits", "SlowConsumerPolicy"]

DEFAULT_HANDSHAKE_TIMEOUT = 15.0  # Ergo's default (HandshakeTimeout == 0 means 15 s)
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB: larger messages close with 1009; bounds memory per read
DEFAULT_OUTBOUND_LIMIT = 1 << 20  # 1 MiB queued for a client that does not read → slow-consumer policy
DEFAULT_PING_INTERVAL = 20.0  # as websockets: finds dead peers behind NATs within a minute
DEFAULT_PING_TIMEOUT = 20.0  # a peer silent this long after a ping is dead → close 1011
DEFAULT_MAILBOX_HIGH_WATER = 1024  # messages queued at the worker before the connection stops reading


class SlowConsumerPolicy(enum.Enum):
    """What a connection does when more than ``outbound_limit`` bytes wait for a peer that does not read.

    ``CLOSE`` (default): close with 1008 and abort the transport (a graceful close
    could never complete against a stalled reader); the worker gets its
    ``MessageDisconnect``. ``DROP``: drop new outgoing messages until the queue
    drains (counted in inspect as ``messages dropped``).
    """

    CLOSE = "close"
    DROP = "drop"


@dataclass(slots=True)
class Limits:
    """Limits shared by the handler's and the client's connections."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    outbound_limit: int = DEFAULT_OUTBOUND_LIMIT
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.CLOSE
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    idle_timeout: float | None = None  # off: chat clients may stay silent for hours
    mailbox_high_water: int = DEFAULT_MAILBOX_HIGH_WATER


@dataclass(slots=True)
class HandlerOptions:
    """Options of ``websocket.create_handler``.

    ``process_pool``: names of the processes that handle connections, round-robin
    per connection (empty: the handler's parent process). ``handshake_timeout``:
    seconds for the upgrade (0/None: 15). Served by ``web.create_web_server`` it bounds
    how long a new connection may take to send its request head (the 101 itself is
    written at once), unless ``WebServerOptions.handshake_timeout`` is set. ``check_origin``: ``(Request) -> bool``;
    ``None`` means the same-origin rule (no Origin header, or its host equals
    Host). ``subprotocols``: the server's, in preference order: the first one the client
    also offers is chosen (gorilla's rule).
    """

    process_pool: Sequence[str] = ()
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    enable_compression: bool = False
    check_origin: Callable[[Request], bool] | None = None
    subprotocols: Sequence[str] = ()
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    outbound_limit: int = DEFAULT_OUTBOUND_LIMIT
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.CLOSE
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    idle_timeout: float | None = None
    mailbox_high_water: int = DEFAULT_MAILBOX_HIGH_WATER

    def limits(self) -> Limits:
        return _limits(self)


@dataclass(slots=True)
class ConnectionOptions:
    """Options of ``websocket.create_connection`` (a client connection).

    ``process``: the name of the process that gets the connection's messages
    (empty: the process that spawns the meta-process). ``url``: ``ws://`` or
    ``wss://``. ``ssl``: an ``SSLContext`` for ``wss://`` (default: the system's
    verified context).
    """

    process: str = ""
    url: str = ""
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    enable_compression: bool = False
    headers: Mapping[str, str] | None = None
    subprotocols: Sequence[str] | None = None
    ssl: ssl.SSLContext | bool | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    outbound_limit: int = DEFAULT_OUTBOUND_LIMIT
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.CLOSE
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    idle_timeout: float | None = None
    mailbox_high_water: int = DEFAULT_MAILBOX_HIGH_WATER
    extra: dict[str, object] = field(default_factory=dict)

    def limits(self) -> Limits:
        return _limits(self)


def _limits(o: HandlerOptions | ConnectionOptions) -> Limits:
    return Limits(
        o.max_message_size,
        o.outbound_limit,
        o.slow_consumer,
        o.ping_interval,
        o.ping_timeout,
        o.idle_timeout,
        o.mailbox_high_water,
    )


def handshake_timeout(value: float | None) -> float:
    """Ergo's rule: 0 or None means the default of 15 s."""
    return value if value else DEFAULT_HANDSHAKE_TIMEOUT
