"""Options of the WebSocket handler and client connection, each default with its reason."""

from __future__ import annotations

import enum
import ssl
import ssl as _ssl  # the field named ssl shadows the module in the class body
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ...gen.options import check_bool, check_int, check_names, check_seconds, check_str
from .messages import Request

__all__ = ["ConnectionOptions", "HandlerOptions", "Limits", "SlowConsumerPolicy"]

DEFAULT_HANDSHAKE_TIMEOUT = 15.0  # Ergo's default (HandshakeTimeout == 0 means 15 s)
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB: larger messages close with 1009; bounds memory per read
DEFAULT_OUTBOUND_LIMIT = 1 << 20  # 1 MiB queued for a client that does not read → slow-consumer policy
DEFAULT_PING_INTERVAL = 20.0  # as websockets: finds dead peers behind NATs within a minute
DEFAULT_PING_TIMEOUT = 20.0  # a peer silent this long after a ping is dead → close 1011
DEFAULT_MAILBOX_HIGH_WATER = 1024  # messages queued at the worker before the connection stops reading
# With permessage-deflate on, a message shorter than this many bytes is sent uncompressed (RSV1
# clear, as RFC 7692 allows per message): DEFLATE saves a few bytes at most there (64 bytes of
# JSON become 54) and, without context takeover, costs 5-8 us of CPU per message. Node's ws
# library uses 1024 for the same reason.
DEFAULT_COMPRESSION_THRESHOLD = 128


class SlowConsumerPolicy(enum.Enum):
    """What a connection does when more than ``outbound_limit`` bytes wait for a peer that does not read.

    ``CLOSE`` (default): close with 1008 and abort the transport (a graceful close
    could never complete against a stalled reader); the worker gets its
    ``MessageDisconnect``. ``DROP``: drop new outgoing messages until the queue
    drains (counted in inspect as ``messages dropped``).
    """

    CLOSE = "close"
    DROP = "drop"


@dataclass(slots=True, kw_only=True)
class Limits:
    """Limits of a connection, the same fields in ``HandlerOptions`` and ``ConnectionOptions``
    (both derive from this; give them by keyword).

    ``max_message_size``: bytes, a larger message closes with 1009 (0: no limit).
    ``outbound_limit``: bytes queued for the peer before ``slow_consumer`` applies.
    ``ping_interval``/``ping_timeout``: keepalive, seconds (``None``/0: off); a peer that
    does not answer closes with 1011. ``idle_timeout``: seconds with no data message
    either way before a close with 1000 (``None``/0: off). ``mailbox_high_water``: messages
    waiting at the worker before the connection stops reading (0: never stops).

    Raises ``TypeError``/``ValueError`` naming the field when a value has the wrong type
    or is out of range.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    outbound_limit: int = DEFAULT_OUTBOUND_LIMIT
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.CLOSE
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    idle_timeout: float | None = None  # off: chat clients may stay silent for hours
    mailbox_high_water: int = DEFAULT_MAILBOX_HIGH_WATER

    def __post_init__(self) -> None:
        check_int(self, "max_message_size", self.max_message_size)
        check_int(self, "outbound_limit", self.outbound_limit)
        if not isinstance(self.slow_consumer, SlowConsumerPolicy):
            raise TypeError(
                f"{type(self).__name__}.slow_consumer must be SlowConsumerPolicy.CLOSE or .DROP, "
                f"got {self.slow_consumer!r}"
            )
        check_seconds(self, "ping_interval", self.ping_interval)
        check_seconds(self, "ping_timeout", self.ping_timeout)
        check_seconds(self, "idle_timeout", self.idle_timeout)
        check_int(self, "mailbox_high_water", self.mailbox_high_water)

    def limits(self) -> Limits:
        """A copy of these limits alone (what one connection keeps)."""
        return Limits(
            max_message_size=self.max_message_size,
            outbound_limit=self.outbound_limit,
            slow_consumer=self.slow_consumer,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            idle_timeout=self.idle_timeout,
            mailbox_high_water=self.mailbox_high_water,
        )


@dataclass(slots=True)
class HandlerOptions(Limits):
    """Options of ``websocket.create_handler``; the :class:`Limits` fields too, by keyword.

    ``process_pool``: names of the processes that handle connections, round-robin
    per connection (empty: the handler's parent process); a list, not a single name.
    ``handshake_timeout``: seconds for the upgrade (0/None: 15). Served by
    ``web.create_web_server`` it bounds how long a new connection may take to send its
    request head (the 101 itself is written at once), unless
    ``WebServerOptions.handshake_timeout`` is set. ``check_origin``: ``(Request) -> bool``;
    ``None`` means the same-origin rule (no Origin header, or its host equals
    Host). ``subprotocols``: the server's, in preference order: the first one the client
    also offers is chosen (gorilla's rule). ``compression_threshold``: with compression
    negotiated, messages shorter than this many bytes go uncompressed (0: compress every
    message, as Ergo/gorilla do); what is received is inflated whatever its size.

    Raises ``TypeError``/``ValueError`` naming the field when a value has the wrong type
    or is out of range (``process_pool="w1"`` is a ``TypeError``).
    """

    process_pool: Sequence[str] = ()
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    enable_compression: bool = False
    check_origin: Callable[[Request], bool] | None = None
    subprotocols: Sequence[str] = ()
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD

    def __post_init__(self) -> None:
        Limits.__post_init__(self)
        self.process_pool = check_names(self, "process_pool", self.process_pool)
        check_seconds(self, "handshake_timeout", self.handshake_timeout)
        check_bool(self, "enable_compression", self.enable_compression)
        check_int(self, "compression_threshold", self.compression_threshold)
        if self.check_origin is not None and not callable(self.check_origin):
            raise TypeError(f"HandlerOptions.check_origin must be a callable or None, got {self.check_origin!r}")
        self.subprotocols = check_names(self, "subprotocols", self.subprotocols)


@dataclass(slots=True)
class ConnectionOptions(Limits):
    """Options of ``websocket.create_connection`` (a client connection); the :class:`Limits`
    fields too, by keyword.

    ``process``: the name of the process that gets the connection's messages
    (empty: the process that spawns the meta-process). ``url``: ``ws://`` or
    ``wss://`` (checked by ``create_connection``). ``ssl``: an ``SSLContext`` for
    ``wss://`` (default: the system's verified context). ``compression_threshold``: as
    ``HandlerOptions``'s.

    Raises ``TypeError``/``ValueError`` naming the field when a value has the wrong type
    or is out of range.
    """

    process: str = ""
    url: str = ""
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    enable_compression: bool = False
    headers: Mapping[str, str] | None = None
    subprotocols: Sequence[str] | None = None
    ssl: ssl.SSLContext | bool | None = None
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD

    def __post_init__(self) -> None:
        Limits.__post_init__(self)
        check_str(self, "process", self.process)
        check_str(self, "url", self.url)
        check_seconds(self, "handshake_timeout", self.handshake_timeout)
        check_bool(self, "enable_compression", self.enable_compression)
        check_int(self, "compression_threshold", self.compression_threshold)
        if self.headers is not None:
            if not isinstance(self.headers, Mapping):
                raise TypeError(f"ConnectionOptions.headers must be a dict of str to str or None, got {self.headers!r}")
            for k, v in self.headers.items():
                if not isinstance(k, str) or not isinstance(v, str):
                    raise TypeError(
                        f"ConnectionOptions.headers must map str to str, got {k!r}: {v!r} in {self.headers!r}"
                    )
        if self.subprotocols is not None:
            self.subprotocols = check_names(self, "subprotocols", self.subprotocols)
        if self.ssl is not None and not isinstance(self.ssl, bool | _ssl.SSLContext):
            raise TypeError(f"ConnectionOptions.ssl must be an ssl.SSLContext, a bool or None, got {self.ssl!r}")


def handshake_timeout(value: float | None) -> float:
    """Ergo's rule: 0 or None means the default of 15 s."""
    return value if value else DEFAULT_HANDSHAKE_TIMEOUT
