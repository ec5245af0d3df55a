"""The embedded registrar, ESRD R1: how nodes on one host find each other's acceptors.

The first node on a host to bind TCP ``localhost:<port>`` (default 4499) runs the
server; the others are clients. A client registers its routes over TCP and keeps
that socket open: the registration lives exactly as long as the socket. Names are
resolved with one UDP datagram to ``<host of the node name>:<port>``.

Packet: ``1, type, uint16 length of the EDF, one EDF value without caches``;
types 44 register, 45 register reply, 46 resolve, 47 resolve reply
(``net/registrar``). Nothing is authenticated, as in Go.

Security default (beyond Go): the UDP resolver binds the node's own host (e.g.
127.0.0.1 for ``name@localhost``), not every interface as Go's ``:4499`` does, so
a node reachable only on loopback does not answer the network.

A client that loses the server retries every second: it takes the server role
itself if the port is free, else registers again with whoever holds it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import socket
import struct
from collections.abc import Sequence
from typing import Any, Final, cast

from ergopy import gen
from ergopy.net import edf
from ergopy.net.types import Route

log = logging.getLogger("ergopy.net.registrar")

DEFAULT_PORT: Final = 4499
"""Go's embedded registrar port."""
VERSION: Final = 1
REGISTER, REGISTER_REPLY, RESOLVE, RESOLVE_REPLY = 44, 45, 46, 47

MAX_REGISTER: Final = 4096
"""A register request must fit Go's single 4096-byte read."""
MAX_RESOLVE: Final = 1024
"""Go's server reads resolve datagrams into 1024 bytes."""
MAX_REPLY: Final = 4096
"""Go's client reads a resolve reply into 4096 bytes."""
READ_TIMEOUT: Final = 1.0
"""The register request and its reply must each come within 1 s (Go's deadline)."""
RESOLVE_TIMEOUT: Final = 3.0
"""A resolve waits 3 s for its UDP reply (Go's client)."""
RETRY_INTERVAL: Final = 1.0
"""A client that lost the server tries again every second (Go's client)."""

_HEADER = struct.Struct(">BBH")


class RegistrarError(gen.Error):
    """A malformed registrar packet, or a registrar that does not answer."""


class UnknownNodeError(gen.Error):
    """The registrar has no node of that name (Go's ``gen.ErrUnknown``, "unknown")."""


_NO_NAME: Final = gen.Atom("")


@edf.register("#ergo.services/ergo/net/registrar/MessageRegisterRoutes")
@dataclasses.dataclass
class MessageRegisterRoutes:
    """A node's routes, registered over TCP (type 44)."""

    node: gen.Atom = _NO_NAME
    routes: list[Route] | None = None


@edf.register("#ergo.services/ergo/net/registrar/MessageRegisterReply")
@dataclasses.dataclass
class MessageRegisterReply:
    """The server's answer to a registration (type 45): ``None`` or the error."""

    error: BaseException | None = None


@edf.register("#ergo.services/ergo/net/registrar/MessageResolveRoutes")
@dataclasses.dataclass
class MessageResolveRoutes:
    """A resolve request for one node name (type 46, UDP)."""

    node: gen.Atom = _NO_NAME


@edf.register("#ergo.services/ergo/net/registrar/MessageResolveReply")
@dataclasses.dataclass
class MessageResolveReply:
    """The routes of a name, or the error (type 47, UDP)."""

    routes: list[Route] | None = None
    error: BaseException | None = None


_TYPES: Final[dict[int, type[Any]]] = {
    REGISTER: MessageRegisterRoutes,
    REGISTER_REPLY: MessageRegisterReply,
    RESOLVE: MessageResolveRoutes,
    RESOLVE_REPLY: MessageResolveReply,
}
_TYPE_OF: Final = {v: k for k, v in _TYPES.items()}


def encode_packet(message: Any) -> bytes:
    """One registrar packet for ``message`` (its type byte follows from its class).

    Raises ``RegistrarError`` for a message that is not a registrar message or is
    longer than 65,535 bytes, and what ``edf.encode`` raises.
    """
    kind = _TYPE_OF.get(type(message))
    if kind is None:
        raise RegistrarError(f"not a registrar message: {type(message).__name__}")
    body = edf.encode(message)
    if len(body) > 0xFFFF:
        raise RegistrarError("registrar message longer than 65535 bytes")
    return _HEADER.pack(VERSION, kind, len(body)) + body


def decode_packet(data: bytes, expect: int | None = None) -> Any:
    """Decode one registrar packet (``data`` holds it from its first byte).

    ``expect`` is the packet type required here.

    Raises ``RegistrarError`` on a wrong version or type, a short packet, an EDF
    value that does not decode, or one of the wrong class.
    """
    if len(data) < 4:
        raise RegistrarError("registrar packet shorter than its header")
    version, kind, length = _HEADER.unpack_from(data)
    if version != VERSION:
        raise RegistrarError(f"registrar protocol version mismatch: {version}")
    if kind not in _TYPES or (expect is not None and kind != expect):
        raise RegistrarError(f"unexpected registrar packet type {kind}")
    if length > len(data) - 4:
        raise RegistrarError("registrar packet truncated")
    try:
        value = edf.decode(bytes(data[4 : 4 + length]))
    except Exception as e:
        raise RegistrarError(f"malformed registrar packet: {e}") from None
    if type(value) is not _TYPES[kind]:
        raise RegistrarError(f"registrar packet type {kind} holds a {type(value).__name__}")
    return value


def host_addresses(host: str) -> list[str]:
    """The addresses ``host`` resolves to, IPv4 first (the UDP resolver binds these
    only; both families, because a Go client may send to ``::1`` for localhost).

    Raises ``OSError`` if the host does not resolve.
    """
    infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    return sorted({str(i[4][0]) for i in infos}, key=lambda a: (":" in a, a))


# --- server ----------------------------------------------------------------------


class Changes:
    """Something to wait on for the next change (of a registrar, or of a connection endpoint)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake everyone waiting."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Return at the next :meth:`notify`."""
        await self._event.wait()


class _Table:
    """Registered names → routes (server side)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Route]] = {}
        self.changes = Changes()

    def register(self, name: str, routes: Sequence[Route]) -> BaseException | None:
        if name in self.routes:
            return gen.TakenError("resource is taken")
        if not routes:
            return gen.IncorrectError("incorrect value or argument")
        self.routes[name] = list(routes)
        self.changes.notify()
        return None

    def unregister(self, name: str) -> None:
        if self.routes.pop(name, None) is not None:
            self.changes.notify()

    def resolve(self, name: str) -> MessageResolveReply:
        routes = self.routes.get(name)
        if routes is None:
            return MessageResolveReply(routes=None, error=edf.RemoteError("unknown"))  # Go's gen.ErrUnknown
        return MessageResolveReply(routes=list(routes), error=None)


class _RegisterConn(asyncio.Protocol):
    """One client's TCP registration: the name lives as long as this socket."""

    def __init__(self, table: _Table, conns: set[_RegisterConn]) -> None:
        self.table, self.conns = table, conns
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.name: str | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.conns.add(self)
        self.timer = asyncio.get_running_loop().call_later(READ_TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.name is not None:
            log.warning("registrar: %d unexpected bytes from %s, ignored", len(data), self.name)
            return
        self.buf += data
        if len(self.buf) >= 4:
            need = 4 + _HEADER.unpack_from(self.buf)[2]
            if need > MAX_REGISTER:
                log.error("registrar: register request over %d bytes refused", MAX_REGISTER)
                self.transport.abort()
                return
            if len(self.buf) < need:
                return
            try:
                request = decode_packet(bytes(self.buf), REGISTER)
            except RegistrarError as e:
                log.error("registrar: %s", e)
                self.transport.abort()
                return
            if self.timer is not None:
                self.timer.cancel()
            name = str.__str__(gen.Atom(request.node))
            error = self.table.register(name, request.routes or [])
            self.transport.write(encode_packet(MessageRegisterReply(error=error)))
            if error is not None:
                self.transport.close()
                return
            self.name = name
            log.debug("registrar: registered %s", name)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.conns.discard(self)
        if self.name is not None:
            self.table.unregister(self.name)
            log.debug("registrar: %s unregistered (its connection closed)", self.name)


class _ResolveEndpoint(asyncio.DatagramProtocol):
    def __init__(self, table: _Table) -> None:
        self.table = table
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not subclasses

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) > MAX_RESOLVE:
            log.error("registrar: resolve datagram of %d bytes from %s refused", len(data), addr)
            return
        try:
            request = decode_packet(data, RESOLVE)
        except RegistrarError as e:
            log.error("registrar: from %s: %s", addr, e)
            return
        reply = self.table.resolve(str.__str__(gen.Atom(request.node)))
        assert self.transport is not None
        self.transport.sendto(encode_packet(reply), addr)


class Server:
    """The registrar server: TCP ``localhost:port`` for registrations, UDP
    ``host:port`` for resolves (``host`` = the node's host, not all interfaces).

    Use :meth:`start`; it raises ``OSError`` when the port is taken (another node
    is the server).
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT) -> None:
        self.host, self.port = host, port
        self.table = _Table()
        self._tcp: asyncio.Server | None = None
        self._udp: list[asyncio.DatagramTransport] = []
        self._conns: set[_RegisterConn] = set()

    async def start(self) -> None:
        """Bind both sockets.

        Raises ``OSError`` if either is taken (nothing stays bound then).
        """
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(
            lambda: _RegisterConn(self.table, self._conns), "127.0.0.1", self.port, reuse_address=True
        )
        try:
            for addr in host_addresses(self.host):
                try:
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda: _ResolveEndpoint(self.table), local_addr=(addr, self.port)
                    )
                except OSError as e:
                    if ":" in addr and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and self._udp:
                        continue  # no IPv6 on this host: IPv4 serves
                    raise
                self._udp.append(transport)
        except OSError:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop serving and drop every registration (their sockets are closed)."""
        for t in self._udp:
            t.close()
        self._udp.clear()
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.abort()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None

    def udp_addresses(self) -> list[tuple[str, int]]:
        """Where the resolver listens."""
        return [t.get_extra_info("sockname") for t in self._udp]


# --- client ----------------------------------------------------------------------


class _ClientConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.reply.done():
            return
        self.buf += data
        if len(self.buf) >= 4 and len(self.buf) >= 4 + _HEADER.unpack_from(self.buf)[2]:
            self.reply.set_result(bytes(self.buf))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(RegistrarError("registrar closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)


class _ResolveClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data[:MAX_REPLY])

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(RegistrarError(f"registrar unreachable: {exc}"))


class Registrar:
    """A node's embedded registrar: the server if it binds the port first, else a
    client of the node that did; either way it keeps the node registered.

    ``name`` is the node name, ``routes`` its acceptors' routes (no host: a
    resolver uses the host part of the name). ``port`` is configurable (tests use
    a free one); ``retry_interval`` is how often a client that lost the server
    tries again, ``resolve_timeout`` how long a resolve waits (Go: 1 s and 3 s).
    Start with :meth:`start`, end with :meth:`stop`.
    """

    def __init__(
        self,
        name: str,
        routes: Sequence[Route],
        port: int = DEFAULT_PORT,
        retry_interval: float = RETRY_INTERVAL,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self.name = name
        self.host = gen.Atom(name).host() or "localhost"
        self.routes = list(routes)
        self.port = port
        self.retry_interval = retry_interval
        self.resolve_timeout = resolve_timeout
        self.server: Server | None = None
        self._conn: _ClientConn | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopped = False
        self.registered = asyncio.Event()
        self.changes = Changes()
        """Notified whenever the role or the registration changes."""

    @property
    def is_server(self) -> bool:
        """Whether this node currently runs the registrar server."""
        return self.server is not None

    async def start(self) -> None:
        """Take the server role or register with the server, then keep it so.

        Raises ``gen.TakenError`` if the name is registered already,
        ``gen.IncorrectError`` without routes, ``RegistrarError`` if neither role
        can be taken.
        """
        await self._take_role()
        self._watch = asyncio.get_running_loop().create_task(self._keep(), name=f"registrar {self.name}")

    async def _take_role(self) -> None:
        server = Server(self.host, self.port)
        try:
            await server.start()
        except OSError:
            await self._register()
            return
        error = server.table.register(self.name, self.routes)
        if error is not None:
            await server.close()
            raise error
        self.server = server
        self.registered.set()
        self.changes.notify()
        log.debug("registrar: %s runs the registrar server on port %d", self.name, self.port)

    async def _register(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(READ_TIMEOUT * 3):
                _, conn = await loop.create_connection(_ClientConn, "127.0.0.1", self.port)
        except (OSError, TimeoutError) as e:
            raise RegistrarError(f"no registrar on port {self.port}: {e or 'timed out'}") from None
        assert conn.transport is not None
        try:
            conn.transport.write(encode_packet(MessageRegisterRoutes(node=gen.Atom(self.name), routes=self.routes)))
            async with asyncio.timeout(READ_TIMEOUT):
                reply = decode_packet(await conn.reply, REGISTER_REPLY)
        except BaseException as e:
            conn.transport.abort()
            if isinstance(e, TimeoutError):
                raise RegistrarError("the registrar did not answer within 1 s") from None
            raise
        if reply.error is not None:
            conn.transport.abort()
            raise reply.error
        self._conn = conn
        self.registered.set()
        self.changes.notify()

    async def _keep(self) -> None:
        while not self._stopped:
            if self._conn is not None:
                await self._conn.lost
                self._conn = None
                self.registered.clear()
                self.changes.notify()
                log.warning("registrar: lost the registrar server; retrying every %s s", self.retry_interval)
            elif self.server is not None:
                return  # the server role ends only with stop()
            await asyncio.sleep(self.retry_interval)  # Go's retry period, not synchronisation
            try:
                await self._take_role()
            except (RegistrarError, gen.Error) as e:
                log.warning("registrar: cannot register %s yet: %s", self.name, e)

    async def resolve(self, name: str) -> list[Route]:
        """The routes of node ``name`` (hosts filled from the name when empty).

        Raises ``UnknownNodeError`` if the registrar has no such name,
        ``RegistrarError`` if the host does not resolve or no registrar answers
        within ``resolve_timeout``.
        """
        host = gen.Atom(name).host() or "localhost"
        if self.server is not None and name in self.server.table.routes:
            reply = self.server.table.resolve(name)
        else:
            reply = await self._resolve_udp(host, name)
        if isinstance(reply.error, edf.RemoteError) and reply.error.text == "unknown":
            raise UnknownNodeError(f"the registrar on {host}:{self.port} knows no node {name!r}")
        if reply.error is not None:
            raise reply.error
        return [dataclasses.replace(r, host=r.host or host) for r in reply.routes or []]

    async def _resolve_udp(self, host: str, name: str) -> MessageResolveReply:
        loop = asyncio.get_running_loop()
        try:
            transport, proto = await loop.create_datagram_endpoint(
                _ResolveClient, remote_addr=(host, self.port), family=socket.AF_INET
            )
        except OSError as e:
            raise RegistrarError(f"cannot reach a registrar on {host}:{self.port}: {e}") from None
        try:
            transport.sendto(encode_packet(MessageResolveRoutes(node=gen.Atom(name))))
            async with asyncio.timeout(self.resolve_timeout):
                data = await proto.reply
        except TimeoutError:
            raise RegistrarError(
                f"no registrar answered on {host}:{self.port} within {self.resolve_timeout} s"
            ) from None
        finally:
            transport.close()
        reply: MessageResolveReply = decode_packet(data, RESOLVE_REPLY)
        return reply

    async def stop(self) -> None:
        """Unregister (close the socket or the server) and stop retrying."""
        self._stopped = True
        if self._watch is not None:
            self._watch.cancel()
            try:
                await self._watch
            except asyncio.CancelledError:
                pass
            self._watch = None
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.abort()
            self._conn = None
        if self.server is not None:
            await self.server.close()
            self.server = None
        self.registered.clear()
