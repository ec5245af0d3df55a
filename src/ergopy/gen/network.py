"""Network options: how a node joins other nodes (Go Ergo's ``gen.NetworkOptions`` and friends).

``NodeOptions(network=NetworkOptions(cookie=...))`` turns the network on; without
it a node talks to nothing. Every class checks its fields when it is built
(``TypeError``/``ValueError`` naming the field and the value), as the other
options do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .options import check_bool, check_instance, check_int, check_seconds, check_str

__all__ = [
    "NO_COMPRESSION",
    "DEFAULT_ACCEPTOR_PORT",
    "DEFAULT_REGISTRAR_PORT",
    "AcceptorOptions",
    "Compression",
    "NetworkFlags",
    "NetworkOptions",
    "NetworkRoute",
]

DEFAULT_ACCEPTOR_PORT = 11144
"""Go's default acceptor port (``gen.DefaultPort``)."""
DEFAULT_REGISTRAR_PORT = 4499
"""The embedded registrar's port (Go's ``registrar.DefaultRegistrarPort``)."""


def _check_port(owner: object, name: str, value: object) -> int:
    return check_int(owner, name, value, 0, 65535)


def _check_tls(owner: object, name: str, value: object) -> Any:
    if value is None:
        return None
    import ssl  # only when TLS is asked for

    return check_instance(owner, name, value, ssl.SSLContext, optional=True)


@dataclass(frozen=True, slots=True)
class Compression:
    """How a process compresses what it sends to other nodes (Go's ``gen.Compression``).

    With ``enable``, a frame longer than ``threshold`` bytes goes out compressed with
    ``type`` ("gzip", Go's default, or "zlib"; Go also reads "lzw", which nobody needs
    to send) at ``level`` (0 default, 1 best speed, 2 best size). Go refuses a
    threshold under 1024 bytes (below that compression costs more than it saves).
    """

    enable: bool = False
    type: str = "gzip"
    level: int = 0
    threshold: int = 1024

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        check_bool(self, "enable", self.enable)
        check_str(self, "type", self.type)
        if self.type not in ("gzip", "zlib"):
            raise ValueError(f"Compression.type must be 'gzip' or 'zlib', got {self.type!r}")
        check_int(self, "level", self.level, 0, 2)
        check_int(self, "threshold", self.threshold, 1024)


NO_COMPRESSION = Compression()
"""The default: nothing compressed."""


@dataclass(frozen=True, slots=True)
class NetworkFlags:
    """What this node offers its peers (Go's ``gen.NetworkFlags``); ``enable`` False turns all off.

    ``remote_spawn`` lets peers spawn the factories enabled with
    ``node.network.enable_spawn``; ``important_delivery`` lets peers ask for
    acknowledged sends. :meth:`default` is Go's ``gen.DefaultNetworkFlags``.
    """

    enable: bool = True
    remote_spawn: bool = True
    remote_application_start: bool = True
    fragmentation: bool = False
    proxy_transit: bool = False
    proxy_accept: bool = True
    important_delivery: bool = True

    def __post_init__(self) -> None:
        """Raises ``TypeError`` naming a field that is not a bool."""
        for name in self.__dataclass_fields__:
            check_bool(self, name, getattr(self, name))

    @classmethod
    def default(cls) -> NetworkFlags:
        """Go's ``gen.DefaultNetworkFlags`` (0x67): enable, remote spawn, remote application
        start, proxy accept, important delivery."""
        return cls()


@dataclass(frozen=True, slots=True)
class AcceptorOptions:
    """One listening socket of the node.

    ``host`` empty means the host part of the node's name (Go's default). ``port`` 0
    picks a free port (``node.network.acceptors()`` reports the bound one); Go's
    default is 11144, and as in Go a port in use makes the acceptor try the next ones
    up to ``port_range`` (50000; equal to ``port``: that port only). ``tls`` is a
    server ``ssl.SSLContext`` (None: plain TCP); with it, ``cert_der`` (the leaf
    certificate in DER) is bound into the handshake as Go's certificate fingerprint
    (every TLS acceptor of a node must use the same certificate).
    """

    host: str = ""
    port: int = DEFAULT_ACCEPTOR_PORT
    tls: Any = None
    cert_der: bytes | None = None
    port_range: int = 50000

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range,
        ``ValueError`` for TLS without ``cert_der``."""
        check_str(self, "host", self.host)
        _check_port(self, "port", self.port)
        _check_tls(self, "tls", self.tls)
        check_instance(self, "cert_der", self.cert_der, bytes, optional=True)
        _check_port(self, "port_range", self.port_range)
        if self.tls is not None and not self.cert_der:
            raise ValueError("AcceptorOptions.cert_der is required with tls (peers check its fingerprint)")


@dataclass(frozen=True, slots=True)
class NetworkRoute:
    """A static route to a node (Go's ``gen.NetworkRoute``): where to dial it.

    ``host`` empty means the host part of the node's name. ``tls`` is a client
    ``ssl.SSLContext`` (None: plain TCP).
    """

    host: str = ""
    port: int = DEFAULT_ACCEPTOR_PORT
    tls: Any = None

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range."""
        check_str(self, "host", self.host)
        _check_port(self, "port", self.port)
        _check_tls(self, "tls", self.tls)


@dataclass(slots=True)
class NetworkOptions:
    """The node's network (Go's ``gen.NetworkOptions``).

    ``cookie`` is the shared secret every peer must hold; an empty one is refused
    (Go would substitute a random cookie, which can never match). ``acceptors``
    are the listening sockets (empty: the node only dials). ``max_message_size``
    bounds a frame we accept (0: no limit). ``registrar`` False turns the embedded
    registrar off (static routes only); ``registrar_port`` is its port (4499, the
    same on every node of a host). ``routes`` are static routes by node name.
    ``pool_size`` is how many links a peer dialling us may open (Go's default 3; 1 makes
    a Go dialler use a single link). ``liveness`` bounds, in seconds, how long a silent
    peer goes unnoticed (the issue's bound: 20 s by default; at least 4, the kernel
    counts in seconds). ``request_timeout`` bounds a remote spawn's wait for its result
    (Go's 5 s). ``client_tls`` is the ``ssl.SSLContext`` used to dial a node whose
    registrar route says TLS (None: the system's default verification, or none at all
    with ``insecure_skip_verify``, Go's ``InsecureSkipVerify``: the handshake's
    certificate fingerprint still binds the peer's certificate to the cookie).
    """

    cookie: str = ""
    acceptors: Sequence[AcceptorOptions] = field(default_factory=lambda: [AcceptorOptions()])
    flags: NetworkFlags = field(default_factory=NetworkFlags)
    max_message_size: int = 0
    pool_size: int = 3
    registrar: bool = True
    registrar_port: int = DEFAULT_REGISTRAR_PORT
    routes: Mapping[str, NetworkRoute] = field(default_factory=dict)
    liveness: float = 20.0
    request_timeout: float = 5.0
    client_tls: Any = None
    insecure_skip_verify: bool = False

    def __post_init__(self) -> None:
        """Raises ``TypeError``/``ValueError`` naming a field of the wrong type or out of range,
        ``ValueError`` for an empty cookie."""
        check_str(self, "cookie", self.cookie)
        if not self.cookie:
            raise ValueError("NetworkOptions.cookie must not be empty: set the same secret on every node")
        if isinstance(self.acceptors, str | bytes) or not isinstance(self.acceptors, Sequence):
            raise TypeError(f"NetworkOptions.acceptors must be a list of AcceptorOptions, got {self.acceptors!r}")
        for a in self.acceptors:
            check_instance(self, "acceptors", a, AcceptorOptions)
        self.acceptors = list(self.acceptors)
        check_instance(self, "flags", self.flags, NetworkFlags)
        check_int(self, "max_message_size", self.max_message_size, 0, 2**32 - 1)
        check_int(self, "pool_size", self.pool_size, 1, 255)
        check_bool(self, "registrar", self.registrar)
        _check_port(self, "registrar_port", self.registrar_port)
        if not isinstance(self.routes, Mapping):
            raise TypeError(f"NetworkOptions.routes must be a dict of node name to NetworkRoute, got {self.routes!r}")
        for k, v in self.routes.items():
            check_str(self, "routes", k)
            check_instance(self, "routes", v, NetworkRoute)
        self.routes = dict(self.routes)
        seconds = check_seconds(self, "liveness", self.liveness, optional=False)
        if seconds is not None and seconds < 4:
            raise ValueError(f"NetworkOptions.liveness must be at least 4 seconds, got {self.liveness!r}")
        check_seconds(self, "request_timeout", self.request_timeout, optional=False, positive=True)
        _check_tls(self, "client_tls", self.client_tls)
        check_bool(self, "insecure_skip_verify", self.insecure_skip_verify)
