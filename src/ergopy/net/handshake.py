"""EHS R1: the handshake that opens every link between two Ergo nodes.

A handshake message is ``87, 1, uint32 length, EDF value`` (the length counts
the EDF bytes only; the value is one registered struct encoded without caches).
A reader waits at most :data:`READ_TIMEOUT` per read and refuses more than
65,535 bytes, as Go does (``net/handshake/handshake.go``).

First link (dialer D, acceptor A; ``H(x)`` is the lowercase hex SHA-256 of ``x``)::

    D→A  Hello{Salt sD, Digest H("sD:cookie")}
    A→D  Hello{Salt sA, Digest H("sA:<D's digest>:cookie"), DigestCert (TLS)}
    D→A  Introduce{..., Digest H("sA:cookie")}
    A→D  Accept{ID, PoolSize, PoolDSN}
    A→D  Introduce{..., Digest ""}
    D→A  Accept{}

Extra pool link: ``D→A Join{Node, ConnectionID, Salt sJ, Digest H("ID:sJ:cookie")}``,
``A→D Accept{Digest H("<join digest>:cookie"), DigestCert (TLS)}``.

Under TLS the acceptor binds its certificate into the handshake:
``DigestCert = hex(SHA-256("sA:sD:cookie" + SHA-1(certificate DER)))`` (Join:
``"<join digest>:sJ:cookie"``); the dialer recomputes it from the certificate it
received. Failures close the socket; nothing is sent back. An empty cookie is
refused on both sides (Go replaces it with a random one: it never matches).

The I/O is an :class:`EHSProtocol` (an asyncio ``Protocol``) so that, once the
handshake is done, the link's transport is handed to the ENP reader together with
any bytes that arrived after the last handshake message (``HandshakeResult.tail``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import inspect
import secrets
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, cast

from ergopy import gen
from ergopy.net import edf
from ergopy.net.types import NetworkFlags, Version

MAGIC: Final = 87
VERSION: Final = 1
MAX_MESSAGE: Final = 65535
READ_TIMEOUT: Final = 1.0
"""Seconds a handshake read may wait (Go: 1 s per read)."""
DEFAULT_POOL_SIZE: Final = 3
"""Links per connection the acceptor offers (Go's default)."""

HANDSHAKE_VERSION: Final = Version(name="EHS", release="R1", commit="", license="MIT")
PROTO_VERSION: Final = Version(name="ENP", release="R1", commit="", license="MIT")

_HEADER = struct.Struct(">BBI")


class HandshakeError(gen.Error, ConnectionError):
    """The handshake failed: wrong or empty cookie, wrong certificate digest, a
    malformed or oversized message, an unexpected message, the peer's own or a
    taken name, a silent peer, or the link closed. The link is closed."""


# --- messages (net/handshake/types.go) -----------------------------------------


_NO_NAME: Final = gen.Atom("")


@edf.register("#ergo.services/ergo/net/handshake/MessageHello")
@dataclasses.dataclass
class MessageHello:
    """The first message each side sends on a new connection."""

    salt: str = ""
    digest: str = ""
    digest_cert: str = ""


@edf.register("#ergo.services/ergo/net/handshake/MessageJoin")
@dataclasses.dataclass
class MessageJoin:
    """The dialer's first message on an extra link of an existing connection."""

    node: gen.Atom = _NO_NAME
    connection_id: str = ""
    salt: str = ""
    digest: str = ""


@edf.register("#ergo.services/ergo/net/handshake/MessageIntroduce")
@dataclasses.dataclass
class MessageIntroduce:
    """Who a node is and its id tables (atoms, registered types, errors)."""

    node: gen.Atom = _NO_NAME
    version: Version = dataclasses.field(default_factory=Version)
    flags: NetworkFlags = dataclasses.field(default_factory=NetworkFlags)
    creation: Annotated[int, edf.Int64] = 0
    max_message_size: Annotated[int, edf.Int] = 0
    atom_cache: dict[Annotated[int, edf.Uint16], gen.Atom] = dataclasses.field(default_factory=dict)
    reg_cache: dict[Annotated[int, edf.Uint16], str] = dataclasses.field(default_factory=dict)
    err_cache: dict[Annotated[int, edf.Uint16], BaseException] = dataclasses.field(default_factory=dict)
    digest: str = ""


@edf.register("#ergo.services/ergo/net/handshake/MessageAccept")
@dataclasses.dataclass
class MessageAccept:
    """The acceptor's answer (connection ID, pool) or the dialer's final empty one."""

    id: str = ""
    pool_size: Annotated[int, edf.Int] = 0
    pool_dsn: list[str] | None = None
    digest: str = ""
    digest_cert: str = ""


# --- pure functions --------------------------------------------------------------


def digest(*parts: str) -> str:
    """``H(x)``: lowercase hex SHA-256 of the parts joined with ``:``.

    Texts decoded from invalid UTF-8 (EDF keeps such bytes as surrogate escapes)
    are hashed as their original bytes, as Go hashes its byte strings.
    """
    return hashlib.sha256(":".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def digest_cert(text: str, cert_der: bytes) -> str:
    """The TLS fingerprint digest: hex SHA-256 of ``text`` followed by the 20 raw
    bytes of SHA-1(``cert_der``)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape") + hashlib.sha1(cert_der).digest()).hexdigest()


def random_salt() -> str:
    """64 lowercase hex characters from 32 random bytes, as Go makes salts."""
    return secrets.token_hex(32)


def encode_message(message: Any) -> bytes:
    """Frame one handshake message: ``87, 1, uint32 length, EDF (no caches)``.

    Raises ``HandshakeError`` if the EDF value exceeds 65,535 bytes, and whatever
    ``edf.encode`` raises for a value it cannot encode.
    """
    body = edf.encode(message)
    if len(body) > MAX_MESSAGE:
        raise HandshakeError(f"handshake message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _HEADER.pack(MAGIC, VERSION, len(body)) + body


def split_message(buf: bytes | bytearray) -> tuple[Any, int] | None:
    """Decode the handshake message at the start of ``buf``.

    Returns ``(message, bytes used)`` or ``None`` when more bytes are needed.

    Raises ``HandshakeError`` on a wrong magic or version, a length over 65,535,
    or an EDF value that does not decode to exactly the announced bytes.
    """
    if len(buf) >= 1 and buf[0] != MAGIC:
        raise HandshakeError("malformed handshake packet (not EHS)")
    if len(buf) >= 2 and buf[1] != VERSION:
        raise HandshakeError(f"mismatch handshake version {buf[1]}")
    if len(buf) < 6:
        return None
    length = _HEADER.unpack_from(buf)[2]
    if length > MAX_MESSAGE:
        raise HandshakeError(f"too long handshake message ({length} bytes)")
    if len(buf) < 6 + length:
        return None
    try:
        value, end = edf.decode_from(bytes(buf[6 : 6 + length]), 0)
    except Exception as e:
        raise HandshakeError(f"malformed handshake message: {e}") from None
    if end != length:
        raise HandshakeError("malformed handshake message (trailing bytes)")
    return value, 6 + length


# --- I/O -------------------------------------------------------------------------


class EHSProtocol(asyncio.Protocol):
    """An asyncio protocol for a link in its handshake phase.

    It buffers what arrives; :meth:`read_message` waits for one whole handshake
    message. When the handshake is done, :meth:`detach` returns the transport and
    the bytes that followed the last message, for the ENP reader to take over.
    The buffer never holds more than one maximal message plus one read.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: BaseException | None = None
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        """Done when the socket is closed while this protocol owns it."""

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > 6 + MAX_MESSAGE + 65536 and self.transport is not None:
            self.transport.pause_reading()  # read_message refuses it; bound the buffer meanwhile
        self._wake()

    def eof_received(self) -> bool:
        self._closed = HandshakeError("link closed by the peer during the handshake")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is None:
            self._closed = HandshakeError(f"link lost during the handshake: {exc or 'closed'}")
        if not self.connected.done():
            self.connected.set_exception(self._closed)
        if not self.lost.done():
            self.lost.set_result(None)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read_message(self, timeout: float = READ_TIMEOUT) -> Any:
        """The next handshake message; each wait for more bytes is bounded by ``timeout``.

        Raises ``HandshakeError`` on a malformed message, a silent peer or a lost link.
        """
        while True:
            got = split_message(self._buf)
            if got is not None:
                message, used = got
                del self._buf[:used]
                return message
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                raise HandshakeError(f"handshake peer silent for {timeout} s") from None
            finally:
                self._waiter = None

    def write_message(self, message: Any) -> None:
        """Send one handshake message.

        Raises ``HandshakeError`` if the link is gone or the message too large.
        """
        if self.transport is None or self.transport.is_closing():
            raise HandshakeError("link closed")
        self.transport.write(encode_message(message))

    def peer_certificate(self) -> bytes | None:
        """The DER of the certificate the peer presented (TLS), else ``None``."""
        obj = self.transport.get_extra_info("ssl_object") if self.transport else None
        if obj is None:
            return None
        der = obj.getpeercert(binary_form=True)
        return bytes(der) if der else None

    def is_tls(self) -> bool:
        """Whether the link runs over TLS."""
        return self.transport is not None and self.transport.get_extra_info("ssl_object") is not None

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Hand the link over: its transport (reading paused: the new protocol resumes
        it) and the bytes received past the handshake.

        Raises ``HandshakeError`` if the link is already closed.
        """
        if self.transport is None or self._closed is not None:
            raise HandshakeError("link closed")
        tail = bytes(self._buf)
        self._buf.clear()
        self.transport.pause_reading()  # nothing may arrive here any more: the new owner resumes
        return self.transport, tail

    def close(self) -> None:
        """Close the link (abort: a failed handshake has nothing left to flush)."""
        if self.transport is not None:
            self.transport.abort()


@dataclasses.dataclass
class Options:
    """What this node brings to a handshake.

    ``cookie`` must not be empty. ``cert_der`` is this acceptor's TLS leaf
    certificate (DER) for the fingerprint; ``check_fingerprint`` False is Go's
    ``DisableTLSFingerprint`` on the dialer. ``caches`` are our id tables, sent in
    the Introduce; the connection must then encode with them (None: empty tables,
    names and texts written in full, which is valid EDF). ``read_timeout`` bounds
    each wait for bytes; ``timeout`` the whole handshake.
    """

    name: str
    cookie: str
    creation: int
    flags: NetworkFlags = dataclasses.field(default_factory=NetworkFlags)
    version: Version = dataclasses.field(default_factory=Version)
    max_message_size: int = 0
    pool_size: int = DEFAULT_POOL_SIZE
    cert_der: bytes | None = None
    check_fingerprint: bool = True
    caches: edf.EncodeCaches | None = None
    read_timeout: float = READ_TIMEOUT
    timeout: float = 5.0


@dataclasses.dataclass
class HandshakeResult:
    """What a finished handshake established about the peer and the connection.

    For a joined link (``joined`` True) only ``peer`` and ``connection_id`` are
    set: the rest belongs to the connection the link joins.
    """

    peer: gen.Atom
    connection_id: str
    joined: bool = False
    peer_version: Version | None = None
    peer_creation: int = 0
    peer_flags: NetworkFlags | None = None
    peer_max_message_size: int = 0
    caches: edf.DecodeCaches | None = None
    pool_size: int = 1
    pool_dsn: list[str] = dataclasses.field(default_factory=list)
    tail: bytes = b""


def _check_cookie(cookie: str) -> None:
    if not cookie:
        raise HandshakeError("empty cookie refused: set a cookie on both nodes")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _expect(message: Any, kind: type[Any], stage: str) -> Any:
    if type(message) is not kind:
        raise HandshakeError(f"malformed handshake: expected {kind.__name__} ({stage}), got {type(message).__name__}")
    return message


def _decode_caches(intro: MessageIntroduce) -> edf.DecodeCaches:
    return edf.DecodeCaches(atoms=intro.atom_cache, types=intro.reg_cache, errors=intro.err_cache)


def _introduce(options: Options, digest_: str) -> MessageIntroduce:
    c = options.caches
    return MessageIntroduce(
        node=gen.Atom(options.name),
        version=options.version,
        flags=options.flags,
        creation=options.creation,
        max_message_size=options.max_message_size,
        atom_cache=dict(c.atoms) if c else {},
        reg_cache=dict(c.types) if c else {},
        err_cache=c.error_table() if c else {},
        digest=digest_,
    )


async def _bounded(link: EHSProtocol, timeout: float, coro: Any) -> Any:
    try:
        async with asyncio.timeout(timeout):
            return await coro
    except TimeoutError:
        link.close()
        raise HandshakeError(f"handshake not done within {timeout} s") from None
    except BaseException:
        link.close()
        raise


async def dial(link: EHSProtocol, options: Options, expect_peer: str | None = None) -> HandshakeResult:
    """Run the dialer's side of a first link: Hello, check, Introduce, Accept.

    ``expect_peer`` (the name that was dialled) must be the name the peer
    introduces. On failure the link is closed.

    Raises ``HandshakeError`` (wrong/empty cookie, certificate digest mismatch,
    the peer introducing our own or an unexpected name, malformed messages,
    timeouts, lost link).
    """
    return await _bounded(link, options.timeout, _dial(link, options, expect_peer))  # type: ignore[no-any-return]


async def _dial(link: EHSProtocol, options: Options, expect_peer: str | None) -> HandshakeResult:
    _check_cookie(options.cookie)
    cookie, rt = options.cookie, options.read_timeout
    salt = random_salt()
    hello = MessageHello(salt=salt, digest=digest(salt, cookie))
    link.write_message(hello)
    hello2 = _expect(await link.read_message(rt), MessageHello, "hello")
    if not _same(hello2.digest, digest(hello2.salt, hello.digest, cookie)):
        raise HandshakeError("incorrect digest: the peer's cookie differs")
    if options.check_fingerprint:
        der = link.peer_certificate()
        if der is not None and not _same(hello2.digest_cert, digest_cert(f"{hello2.salt}:{salt}:{cookie}", der)):
            raise HandshakeError("incorrect cert digest: the certificate is not the one the peer's node holds")
    link.write_message(_introduce(options, digest(hello2.salt, cookie)))
    accept = _expect(await link.read_message(rt), MessageAccept, "accept")
    intro = _expect(await link.read_message(rt), MessageIntroduce, "introduce")
    if intro.node == options.name:
        raise HandshakeError(f"the peer introduced itself with our own name {options.name!r}")
    if expect_peer is not None and intro.node != expect_peer:
        raise HandshakeError(f"dialled {expect_peer!r} but {str.__str__(intro.node)!r} answered")
    link.write_message(MessageAccept())
    _, tail = link.detach()
    return HandshakeResult(
        peer=gen.Atom(intro.node),
        connection_id=accept.id,
        peer_version=intro.version,
        peer_creation=intro.creation,
        peer_flags=intro.flags,
        peer_max_message_size=intro.max_message_size,
        caches=_decode_caches(intro),
        pool_size=max(1, accept.pool_size),
        pool_dsn=list(accept.pool_dsn or []),
        tail=tail,
    )


async def join(link: EHSProtocol, options: Options, connection_id: str) -> HandshakeResult:
    """Run the dialer's side of an extra pool link: Join, check the Accept.

    Raises ``HandshakeError`` (empty cookie, wrong digest or certificate digest,
    malformed messages, timeouts, lost link). On failure the link is closed.
    """
    return await _bounded(link, options.timeout, _join(link, options, connection_id))  # type: ignore[no-any-return]


async def _join(link: EHSProtocol, options: Options, connection_id: str) -> HandshakeResult:
    _check_cookie(options.cookie)
    cookie = options.cookie
    salt = random_salt()
    jd = digest(connection_id, salt, cookie)
    link.write_message(MessageJoin(node=gen.Atom(options.name), connection_id=connection_id, salt=salt, digest=jd))
    accept = _expect(await link.read_message(options.read_timeout), MessageAccept, "join accept")
    if not _same(accept.digest, digest(jd, cookie)):
        raise HandshakeError("incorrect join digest: the peer's cookie differs")
    if options.check_fingerprint:
        der = link.peer_certificate()
        if der is not None and not _same(accept.digest_cert, digest_cert(f"{jd}:{salt}:{cookie}", der)):
            raise HandshakeError("incorrect cert digest")
    _, tail = link.detach()
    return HandshakeResult(peer=gen.Atom(""), connection_id=connection_id, joined=True, tail=tail)


async def accept(
    link: EHSProtocol,
    options: Options,
    taken: Callable[[str], bool] | None = None,
    can_join: Callable[[str, str], bool | Awaitable[bool]] | None = None,
    restarted: Callable[[str, int], None] | None = None,
) -> HandshakeResult:
    """Run the acceptor's side: a first link (Hello...) or an extra link (Join).

    ``restarted(name, creation)`` is called first with the introduced peer (its
    owner drops a connection of that name with another creation: the peer restarted);
    ``taken(name)`` True refuses a peer whose name already has a connection;
    ``can_join(peer, connection_id)`` True (or an awaitable of True: the owner may wait
    for that connection's first link to finish its handshake) admits a Join (None
    refuses every Join).
    The Accept offers ``options.pool_size`` links and this socket's local address.
    On failure the link is closed and nothing is sent.

    Raises ``HandshakeError`` (wrong/empty cookie, our own or a taken name, an
    unknown connection to join, malformed messages, timeouts, lost link).
    """
    return await _bounded(link, options.timeout, _accept(link, options, taken, can_join, restarted))  # type: ignore[no-any-return]


async def _accept(
    link: EHSProtocol,
    options: Options,
    taken: Callable[[str], bool] | None,
    can_join: Callable[[str, str], bool | Awaitable[bool]] | None,
    restarted: Callable[[str, int], None] | None = None,
) -> HandshakeResult:
    _check_cookie(options.cookie)
    cookie, rt = options.cookie, options.read_timeout
    first = await link.read_message(rt)
    if type(first) is MessageJoin:
        return await _accept_join(link, options, first, can_join)
    hello = _expect(first, MessageHello, "hello")
    if not _same(hello.digest, digest(hello.salt, cookie)):
        raise HandshakeError("incorrect digest (accept stage 'hello'): the peer's cookie differs")
    salt = random_salt()
    reply = MessageHello(salt=salt, digest=digest(salt, hello.digest, cookie))
    if link.is_tls() and not options.cert_der:
        raise HandshakeError("TLS acceptor without Options.cert_der: dialers would refuse its fingerprint")
    if link.is_tls() and options.cert_der:
        reply.digest_cert = digest_cert(f"{salt}:{hello.salt}:{cookie}", options.cert_der)
    link.write_message(reply)
    intro = _expect(await link.read_message(rt), MessageIntroduce, "introduce")
    if not _same(intro.digest, digest(salt, cookie)):
        raise HandshakeError("incorrect digest (accept stage 'introduce')")
    peer = str.__str__(gen.Atom(intro.node))
    if peer == options.name:
        raise HandshakeError(f"a peer introduced itself with our own name {peer!r}")
    if restarted is not None:
        restarted(peer, intro.creation)
    if taken is not None and taken(peer):
        raise HandshakeError(f"a node named {peer!r} is already connected")
    assert link.transport is not None
    local = link.transport.get_extra_info("sockname")
    dsn = [f"[{local[0]}]:{local[1]}" if ":" in local[0] else f"{local[0]}:{local[1]}"] if local else []
    ours = MessageAccept(id=secrets.token_hex(16), pool_size=options.pool_size, pool_dsn=dsn)
    link.write_message(ours)
    link.write_message(_introduce(options, ""))
    _expect(await link.read_message(rt), MessageAccept, "final accept")
    _, tail = link.detach()
    return HandshakeResult(
        peer=gen.Atom(peer),
        connection_id=ours.id,
        peer_version=intro.version,
        peer_creation=intro.creation,
        peer_flags=intro.flags,
        peer_max_message_size=intro.max_message_size,
        caches=_decode_caches(intro),
        pool_size=options.pool_size,
        pool_dsn=dsn,
        tail=tail,
    )


async def _accept_join(
    link: EHSProtocol, options: Options, m: MessageJoin, can_join: Callable[[str, str], bool | Awaitable[bool]] | None
) -> HandshakeResult:
    cookie = options.cookie
    if not _same(m.digest, digest(m.connection_id, m.salt, cookie)):
        raise HandshakeError("incorrect join digest")
    peer = str.__str__(gen.Atom(m.node))
    admitted = can_join(peer, m.connection_id) if can_join is not None else False
    if inspect.isawaitable(admitted):
        admitted = await admitted
    if not admitted:
        raise HandshakeError(f"join refused: no connection {m.connection_id!r} from {peer!r} with room for a link")
    reply = MessageAccept(digest=digest(m.digest, cookie))
    if link.is_tls() and options.cert_der:
        reply.digest_cert = digest_cert(f"{m.digest}:{m.salt}:{cookie}", options.cert_der)
    link.write_message(reply)
    _, tail = link.detach()
    return HandshakeResult(peer=gen.Atom(peer), connection_id=m.connection_id, joined=True, tail=tail)


async def open_link(
    host: str, port: int, ssl_context: ssl.SSLContext | None = None, timeout: float = 3.0
) -> EHSProtocol:
    """Connect to ``host:port`` (TLS with ``ssl_context``) within ``timeout`` (Go: 3 s).

    Raises ``HandshakeError`` if the connection cannot be made in time.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_connection(
                EHSProtocol, host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
            )
    except (OSError, TimeoutError, ssl.SSLError) as e:
        raise HandshakeError(f"cannot connect to {host}:{port}: {e or 'timed out'}") from None
    return proto
