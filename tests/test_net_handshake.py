"""EHS handshake: the Go transcript's messages byte for byte, its digests, the TLS
fingerprint, and ergopy<->ergopy handshakes over real sockets on 127.0.0.1 (right,
wrong and empty cookie, taken and own name, Join, TLS), plus fuzzed bytes that must
end in a clear error and a closed socket within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ergopy import gen
from ergopy.net import edf, handshake
from ergopy.net.handshake import EHSProtocol, HandshakeError, MessageAccept, MessageHello, MessageIntroduce
from ergopy.net.types import NetworkFlags

DATA = Path(__file__).parent / "data" / "ergo-wire"
HOST = "127.0.0.1"
COOKIE = "wire-cookie-2025"


def read_hex(name: str) -> bytes:
    return bytes.fromhex((DATA / name).read_text().replace("\n", ""))


def handshake_messages(name: str) -> list[bytes]:
    data, out, pos = read_hex(name), [], 0
    while pos < len(data) and data[pos] == handshake.MAGIC:
        n = struct.unpack_from(">I", data, pos + 2)[0]
        out.append(data[pos : pos + 6 + n])
        pos += 6 + n
    return out


RECORDED = [
    (name, i, raw)
    for name in ("link-1-beta-to-alpha.hex", "link-1-alpha-to-beta.hex", "link-2-beta-to-alpha.hex",
                 "link-2-alpha-to-beta.hex", "link-3-beta-to-alpha.hex", "link-3-alpha-to-beta.hex")
    for i, raw in enumerate(handshake_messages(name))
]  # fmt: skip


def decoded(name: str) -> list[Any]:
    out = []
    for raw in handshake_messages(name):
        got = handshake.split_message(raw)
        assert got is not None
        out.append(got[0])
    return out


# ---- the transcript -----------------------------------------------------------------


def test_the_recording_holds_the_first_link_sequence_and_two_joins() -> None:
    kinds = {name: [type(m).__name__ for m in decoded(name)] for name, _, _ in RECORDED}
    assert kinds["link-1-beta-to-alpha.hex"] == ["MessageHello", "MessageIntroduce", "MessageAccept"]
    assert kinds["link-1-alpha-to-beta.hex"] == ["MessageHello", "MessageAccept", "MessageIntroduce"]
    assert kinds["link-2-beta-to-alpha.hex"] == kinds["link-3-beta-to-alpha.hex"] == ["MessageJoin"]
    assert kinds["link-2-alpha-to-beta.hex"] == kinds["link-3-alpha-to-beta.hex"] == ["MessageAccept"]


@pytest.mark.parametrize(("name", "index", "raw"), RECORDED, ids=[f"{n[:-4]}-{i}" for n, i, _ in RECORDED])
def test_every_recorded_handshake_message_decodes_and_reencodes_byte_exact(name: str, index: int, raw: bytes) -> None:
    got = handshake.split_message(raw)
    assert got is not None and got[1] == len(raw)
    assert handshake.encode_message(got[0]) == raw


def test_the_introduce_carries_what_the_transcript_says() -> None:
    intro = decoded("link-1-alpha-to-beta.hex")[2]
    assert isinstance(intro, MessageIntroduce)
    assert (intro.node, intro.creation, intro.max_message_size) == ("alpha@localhost", 1795951324, 0)
    assert intro.flags == NetworkFlags.default()
    assert dict(intro.atom_cache) == {256: "ticks", 257: "echo", 258: "alpha@localhost"}
    assert len(intro.reg_cache) == 126 and intro.reg_cache[4215] == "#main/Chat"
    assert str(intro.err_cache[32774]) == "unknown process"
    assert isinstance(intro.err_cache[32774], gen.ProcessUnknownError)
    accept = decoded("link-1-alpha-to-beta.hex")[1]
    assert accept == MessageAccept(id="dd090e947faab7c4b8415b592f55d4fb", pool_size=3, pool_dsn=["127.0.0.1:11144"])


def test_digests_of_the_transcript() -> None:
    beta_hello, _, _ = decoded("link-1-beta-to-alpha.hex")
    alpha_hello, accept, _ = decoded("link-1-alpha-to-beta.hex")
    intro = decoded("link-1-beta-to-alpha.hex")[1]
    assert (
        handshake.digest(beta_hello.salt, COOKIE)
        == beta_hello.digest
        == ("30bb98905ca1ececc132a39629efaf4ef3e85c69999b2746c131199ca7d2a57a")
    )
    assert handshake.digest(alpha_hello.salt, beta_hello.digest, COOKIE) == alpha_hello.digest
    assert (
        handshake.digest(alpha_hello.salt, COOKIE)
        == intro.digest
        == ("1b69031b6370e16050b9e93a0d1a095df71e38ac8456df1e9d1c39637152fb62")
    )
    for link in ("link-2", "link-3"):
        (join,) = decoded(f"{link}-beta-to-alpha.hex")
        (reply,) = decoded(f"{link}-alpha-to-beta.hex")
        assert handshake.digest(accept.id, join.salt, COOKIE) == join.digest
        assert handshake.digest(join.digest, COOKIE) == reply.digest
    assert handshake.digest(beta_hello.salt, "another-cookie") != beta_hello.digest


def test_tls_certificate_digest_of_the_transcript() -> None:
    der = read_hex("tls-acceptor-cert.der.hex")
    assert len(der) == 542
    assert hashlib.sha1(der).hexdigest() == "9da4865178c20c6f1ebbd497986d836e9358406f"
    acceptor_salt = "24cdd9c6f83a9975e2ca929d1b21635e60c7d8f31b8ead76ca1fa3e5a15c6885"
    dialer_salt = "PythonSaltForTheTLSDigestCheck-0123456789abcdefghijklmnopqrstuv"
    assert handshake.digest(dialer_salt, COOKIE) == "3a996117936b527254e8cfd09d9f8ee504f4e7ba1cb3db6ec23ffef01fb6371d"
    got = handshake.digest_cert(f"{acceptor_salt}:{dialer_salt}:{COOKIE}", der)
    assert got == "67107e0ed7147993fa663f4d8c3325795dfe1e3fa1f88b60c25e149c5049014c"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x58\x01\x00\x00\x00\x00", "not EHS"),
        (b"\x57\x02", "version"),
        (b"\x57\x01\x00\x01\x00\x00", "too long"),
        (b"\x57\x01\x00\x00\x00\x02\x8d\x00", "malformed"),
        (b"\x57\x01\x00\x00\x00\x04\x8d\x00\x00\x00", "trailing"),
    ],
)
def test_malformed_handshake_messages_are_refused(raw: bytes, match: str) -> None:
    with pytest.raises(HandshakeError, match=match):
        handshake.split_message(raw)


def test_incomplete_message_waits_for_more() -> None:
    raw = handshake_messages("link-1-beta-to-alpha.hex")[0]
    for cut in (0, 1, 5, 6, len(raw) - 1):
        assert handshake.split_message(raw[:cut]) is None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_end_in_a_handshake_error_or_a_wait(data: bytes) -> None:
    try:
        handshake.split_message(b"\x57\x01" + data)
    except HandshakeError:
        pass


# ---- ergopy <-> ergopy over real sockets ---------------------------------------------


def options(name: str, cookie: str = "secret", **kw: Any) -> handshake.Options:
    return handshake.Options(
        name=name, cookie=cookie, creation=1_700_000_000 + len(name), flags=NetworkFlags.default(), **kw
    )


class Acceptor:
    """A listening socket whose links wait in a queue for a test to run the acceptor side;
    every link it made is closed when the ``acceptor()`` block ends."""

    def __init__(self) -> None:
        self.links: asyncio.Queue[EHSProtocol] = asyncio.Queue()
        self.made: list[EHSProtocol] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    def _make(self) -> EHSProtocol:
        p = EHSProtocol()
        self.links.put_nowait(p)
        self.made.append(p)
        return p

    async def next_link(self) -> EHSProtocol:
        async with asyncio.timeout(5):
            link = await self.links.get()
            await link.connected
            return link


@contextlib.asynccontextmanager
async def acceptor(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Acceptor]:
    a = Acceptor()
    a.server = await asyncio.get_running_loop().create_server(a._make, HOST, 0, ssl=ssl_context)
    a.port = a.server.sockets[0].getsockname()[1]
    try:
        yield a
    finally:
        a.server.close()
        for link in a.made:
            link.close()
        await a.server.wait_closed()


async def closed(link: EHSProtocol) -> bool:
    """Whether the link's socket closed within 3 s."""
    await asyncio.wait_for(asyncio.shield(link.lost), 3)
    return True


async def handshake_pair(
    dial_opts: handshake.Options, accept_opts: handshake.Options, **accept_kw: Any
) -> tuple[Any, Any, EHSProtocol, EHSProtocol]:
    """Run both sides; returns (dial result or error, accept result or error, dialer link, acceptor link)."""
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()
        d, r = await asyncio.gather(
            handshake.dial(dlink, dial_opts, expect_peer=accept_opts.name),
            handshake.accept(alink, accept_opts, **accept_kw),
            return_exceptions=True,
        )
        return d, r, dlink, alink


async def test_right_cookie_both_sides_agree() -> None:
    caches = edf.EncodeCaches.for_node("a@localhost")
    d, r, dlink, alink = await handshake_pair(options("b@localhost"), options("a@localhost", caches=caches))
    assert isinstance(d, handshake.HandshakeResult) and isinstance(r, handshake.HandshakeResult)
    assert (d.peer, r.peer) == ("a@localhost", "b@localhost")
    assert d.connection_id == r.connection_id and len(d.connection_id) == 32
    assert (d.peer_creation, r.peer_creation) == (1_700_000_011, 1_700_000_011)
    assert d.peer_flags == r.peer_flags == NetworkFlags.default()
    assert d.pool_size == r.pool_size == handshake.DEFAULT_POOL_SIZE
    assert d.pool_dsn == r.pool_dsn == [f"{HOST}:{alink.transport.get_extra_info('sockname')[1]}"]  # type: ignore[union-attr]
    assert d.caches is not None and d.caches.atoms == {256: "a@localhost"}  # the acceptor's tables reach the dialer
    assert r.caches is not None and r.caches.atoms == {}
    assert d.tail == r.tail == b""
    dlink.close()
    alink.close()


async def test_bytes_sent_right_after_the_handshake_are_the_tail() -> None:
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()

        async def dial_then_send() -> handshake.HandshakeResult:
            res = await handshake.dial(dlink, options("b@localhost"))
            assert dlink.transport is not None
            dlink.transport.write(b"\x4e\x01\x00\x00\x00\x09\x00\xc7\xff")
            return res

        _, r = await asyncio.gather(dial_then_send(), handshake.accept(alink, options("a@localhost")))
        # the acceptor detached right after the dialer's final Accept: the frame may be in
        # the tail or still in the socket; either way it is the first thing ENP reads
        transport, tail = alink.transport, r.tail
        assert transport is not None
        rest = bytearray(tail)
        got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                rest.extend(data)
                if len(rest) >= 9 and not got.done():
                    got.set_result(None)

        transport.set_protocol(Sink())
        transport.resume_reading()
        if len(rest) < 9:
            await asyncio.wait_for(got, 3)
        assert bytes(rest) == b"\x4e\x01\x00\x00\x00\x09\x00\xc7\xff"
        dlink.close()
        alink.close()


async def test_wrong_cookie_is_refused_and_both_sockets_close() -> None:
    d, r, dlink, alink = await handshake_pair(options("b@localhost", "one"), options("a@localhost", "two"))
    assert isinstance(r, HandshakeError) and "cookie" in str(r)
    assert isinstance(d, HandshakeError)  # the acceptor sends nothing back: the dialer sees the close
    assert await closed(dlink) and await closed(alink)


@pytest.mark.parametrize("side", ["dialer", "acceptor"])
async def test_empty_cookie_is_refused(side: str) -> None:
    dial_cookie, accept_cookie = ("", "secret") if side == "dialer" else ("secret", "")
    d, r, dlink, alink = await handshake_pair(
        options("b@localhost", dial_cookie), options("a@localhost", accept_cookie)
    )
    refused = d if side == "dialer" else r
    assert isinstance(refused, HandshakeError) and "empty cookie" in str(refused)
    assert isinstance(d, HandshakeError) and isinstance(r, HandshakeError)
    assert await closed(dlink) and await closed(alink)


async def test_taken_name_is_refused() -> None:
    d, r, dlink, _ = await handshake_pair(
        options("b@localhost"), options("a@localhost"), taken=lambda name: name == "b@localhost"
    )
    assert isinstance(r, HandshakeError) and "already connected" in str(r)
    assert isinstance(d, HandshakeError)
    assert await closed(dlink)


async def test_own_name_is_refused_on_both_sides() -> None:
    d, r, _, _ = await handshake_pair(options("a@localhost"), options("a@localhost"))
    assert isinstance(r, HandshakeError) and "own name" in str(r)
    assert isinstance(d, HandshakeError)


async def test_dialer_refuses_a_peer_with_another_name() -> None:
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()
        d, _ = await asyncio.gather(
            handshake.dial(dlink, options("b@localhost"), expect_peer="c@localhost"),
            handshake.accept(alink, options("a@localhost")),
            return_exceptions=True,
        )
        assert isinstance(d, HandshakeError) and "'a@localhost' answered" in str(d)


async def test_join_adds_a_link_and_a_wrong_id_or_cookie_is_refused() -> None:
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()
        d, r = await asyncio.gather(
            handshake.dial(dlink, options("b@localhost")), handshake.accept(alink, options("a@localhost"))
        )
        admitted: list[tuple[str, str]] = []

        def can_join(peer: str, cid: str) -> bool:
            admitted.append((peer, cid))
            return cid == r.connection_id

        async def try_join(cid: str, cookie: str = "secret") -> tuple[Any, Any]:
            j = await handshake.open_link(HOST, a.port)
            ja = await a.next_link()
            res = await asyncio.gather(
                handshake.join(j, options("b@localhost", cookie), cid),
                handshake.accept(ja, options("a@localhost"), can_join=can_join),
                return_exceptions=True,
            )
            j.close()
            ja.close()
            return res[0], res[1]

        jd, ja = await try_join(d.connection_id)
        assert jd.joined and ja.joined and ja.peer == "b@localhost" and ja.connection_id == d.connection_id
        jd, ja = await try_join("0" * 32)
        assert isinstance(ja, HandshakeError) and "join refused" in str(ja)
        assert isinstance(jd, HandshakeError)
        jd, ja = await try_join(d.connection_id, "wrong")
        assert isinstance(ja, HandshakeError) and "incorrect join digest" in str(ja)
        assert admitted == [("b@localhost", d.connection_id), ("b@localhost", "0" * 32)]
        dlink.close()
        alink.close()


async def test_silent_peer_times_out_within_the_read_bound() -> None:
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HandshakeError, match="silent"):
            await handshake.accept(alink, options("a@localhost", read_timeout=0.3))
        assert loop.time() - start < 2
        assert await closed(alink)
        dlink.close()


async def test_whole_handshake_is_bounded_even_against_a_trickle() -> None:
    async with acceptor() as a:
        dlink = await handshake.open_link(HOST, a.port)
        alink = await a.next_link()
        hello = handshake.encode_message(MessageHello(salt="s", digest=handshake.digest("s", "secret")))
        task = asyncio.create_task(handshake.accept(alink, options("a@localhost", read_timeout=1.0, timeout=0.8)))
        assert dlink.transport is not None
        for b in hello:  # one byte every 50 ms: each read is in time, the whole is not
            if dlink.lost.done():
                break
            dlink.transport.write(bytes([b]))
            await asyncio.sleep(0.05)  # pacing the trickle, not synchronisation
        with pytest.raises(HandshakeError, match="not done within"):
            await asyncio.wait_for(task, 3)
        dlink.close()


# ---- TLS ------------------------------------------------------------------------------


def self_signed() -> tuple[bytes, bytes, bytes]:
    """(cert PEM, key PEM, cert DER) for 127.0.0.1, made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext, bytes]:
    """(server context, client context that does not verify, as Ergo's dialer, cert DER)."""
    pem, key_pem, der = self_signed()
    d = tmp_path_factory.mktemp("ehs-tls")
    (d / "cert.pem").write_bytes(pem)
    (d / "key.pem").write_bytes(key_pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(d / "cert.pem", d / "key.pem")
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # Ergo binds the certificate by its fingerprint instead
    return server, client, der


async def tls_pair(
    tls: tuple[ssl.SSLContext, ssl.SSLContext, bytes], claimed_der: bytes, check: bool = True
) -> tuple[Any, Any, EHSProtocol, EHSProtocol]:
    server, client, _ = tls
    async with acceptor(server) as a:
        dlink = await handshake.open_link(HOST, a.port, client)
        alink = await a.next_link()
        d, r = await asyncio.gather(
            handshake.dial(dlink, options("b@localhost", check_fingerprint=check)),
            handshake.accept(alink, options("a@localhost", cert_der=claimed_der)),
            return_exceptions=True,
        )
        return d, r, dlink, alink


async def test_tls_handshake_with_the_certificate_fingerprint(tls: Any) -> None:
    d, r, dlink, alink = await tls_pair(tls, tls[2])
    assert isinstance(d, handshake.HandshakeResult) and isinstance(r, handshake.HandshakeResult)
    assert dlink.peer_certificate() == tls[2]
    dlink.close()
    alink.close()


async def test_tls_fingerprint_of_another_certificate_is_refused(tls: Any) -> None:
    _, _, other = self_signed()
    d, _, dlink, _ = await tls_pair(tls, other)
    assert isinstance(d, HandshakeError) and "incorrect cert digest" in str(d)
    assert await closed(dlink)
    d, _, dlink, alink = await tls_pair(tls, other, check=False)  # Go's DisableTLSFingerprint
    assert isinstance(d, handshake.HandshakeResult)
    dlink.close()
    alink.close()


# ---- fuzzing a real acceptor ---------------------------------------------------------------


async def _fuzz_acceptor(data: bytes) -> None:
    async with acceptor() as a:
        reader, writer = await asyncio.open_connection(HOST, a.port)
        alink = await a.next_link()
        writer.write(data)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HandshakeError):
            await handshake.accept(alink, options("a@localhost", read_timeout=0.2, timeout=1.0))
        assert loop.time() - start < 1.5
        async with asyncio.timeout(2):
            await reader.read()  # returns only once the acceptor has closed the socket
        assert reader.at_eof()
        writer.close()


_VALID_HELLO = handshake.encode_message(MessageHello(salt="x", digest=handshake.digest("x", "secret")))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: b"\x57\x01" + b),
        st.tuples(st.integers(6, len(_VALID_HELLO) - 1), st.binary(min_size=1, max_size=4)).map(
            lambda t: _VALID_HELLO[: t[0]] + t[1] + _VALID_HELLO[t[0] + len(t[1]) :]
        ),
    )
)
def test_fuzzed_bytes_never_crash_or_hang_the_acceptor(data: bytes) -> None:
    asyncio.run(_fuzz_acceptor(data))


async def test_tls_acceptor_without_its_certificate_says_so(tls: Any) -> None:
    d, r, dlink, _ = await tls_pair(tls, b"")
    assert isinstance(r, HandshakeError) and "cert_der" in str(r)
    assert isinstance(d, HandshakeError)
    assert await closed(dlink)


# ---- ergopy against Go's recorded side of the handshake ----------------------------------
# The salts and the connection ID are the only random inputs; fixing them to the recorded
# ones makes ergopy's messages comparable byte for byte with what the Go node sent.

BETA = handshake_messages("link-1-beta-to-alpha.hex")  # Go dialer: Hello, Introduce, Accept
ALPHA = handshake_messages("link-1-alpha-to-beta.hex")  # Go acceptor: Hello, Accept, Introduce
JOIN2 = handshake_messages("link-2-beta-to-alpha.hex")[0]
JOIN2_ACCEPT = handshake_messages("link-2-alpha-to-beta.hex")[0]


def salt_of(raw: bytes) -> str:
    got = handshake.split_message(raw)
    assert got is not None
    return str(got[0].salt)


async def read_ehs(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(6)
    return head + await reader.readexactly(struct.unpack(">I", head[2:])[0])


async def test_ergopy_dialer_against_gos_recorded_acceptor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handshake, "random_salt", lambda: salt_of(BETA[0]))
    seen: list[bytes] = []
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def go_acceptor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_ehs(reader))  # Hello
        writer.write(ALPHA[0])
        seen.append(await read_ehs(reader))  # Introduce
        writer.write(ALPHA[1] + ALPHA[2])
        seen.append(await read_ehs(reader))  # final Accept
        writer.close()
        finished.set_result(None)

    server = await asyncio.start_server(go_acceptor, HOST, 0)
    try:
        link = await handshake.open_link(HOST, server.sockets[0].getsockname()[1])
        opts = handshake.Options(name="beta@localhost", cookie=COOKIE, creation=1795951326)
        result = await handshake.dial(link, opts, expect_peer="alpha@localhost")
        await asyncio.wait_for(finished, 5)
        link.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen[0] == BETA[0]  # ergopy's Hello is Go's, byte for byte
    intro = handshake.split_message(seen[1])
    assert intro is not None and intro[0].digest == decoded("link-1-beta-to-alpha.hex")[1].digest
    assert seen[2] == BETA[2]  # and so is its final Accept
    assert result.peer == "alpha@localhost" and result.peer_creation == 1795951324
    assert result.connection_id == "dd090e947faab7c4b8415b592f55d4fb"
    assert (result.pool_size, result.pool_dsn) == (3, ["127.0.0.1:11144"])
    assert result.caches is not None and result.caches.atoms[258] == "alpha@localhost"


async def test_ergopy_acceptor_against_gos_recorded_dialer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handshake, "random_salt", lambda: salt_of(ALPHA[0]))
    monkeypatch.setattr(handshake.secrets, "token_hex", lambda n: "dd090e947faab7c4b8415b592f55d4fb")
    opts = handshake.Options(name="alpha@localhost", cookie=COOKIE, creation=1795951324)
    async with acceptor() as a:
        reader, writer = await asyncio.open_connection(HOST, a.port)
        link = await a.next_link()
        task = asyncio.create_task(handshake.accept(link, opts))
        writer.write(BETA[0])
        assert await read_ehs(reader) == ALPHA[0]  # ergopy's Hello is Go's, byte for byte
        writer.write(BETA[1])  # Go's Introduce: its digest must check against ergopy's salt
        accept = handshake.split_message(await read_ehs(reader))
        assert accept is not None and accept[0].id == "dd090e947faab7c4b8415b592f55d4fb"
        assert accept[0].pool_size == 3 and accept[0].pool_dsn == [f"{HOST}:{a.port}"]
        intro = handshake.split_message(await read_ehs(reader))
        assert intro is not None and intro[0].node == "alpha@localhost" and intro[0].digest == ""
        writer.write(BETA[2])
        result = await asyncio.wait_for(task, 5)
        assert result.peer == "beta@localhost" and result.peer_creation == 1795951326
        assert result.caches is not None and result.caches.atoms == {256: "echo", 257: "beta@localhost"}
        writer.close()

        # Go's Join for link 2 of that connection: ergopy's Accept is Go's, byte for byte
        reader, writer = await asyncio.open_connection(HOST, a.port)
        link = await a.next_link()
        task = asyncio.create_task(handshake.accept(link, opts, can_join=lambda peer, cid: cid == result.connection_id))
        writer.write(JOIN2)
        assert await read_ehs(reader) == JOIN2_ACCEPT
        joined = await asyncio.wait_for(task, 5)
        assert joined.joined and joined.peer == "beta@localhost"
        writer.close()
