"""Security defaults on real sockets: origin checks, size limits on by default, TLS, quiet logs.

``test_ws_server.py`` has the plain cases (a foreign Origin gets 403, check_origin may allow
it, a wss echo); here: origins crafted to look like ours, the header and message limits
without any option set, TLS end to end with ergopy on both sides (a certificate made with
``cryptography``), a TLS port that a client reaches in plain text or never greets, and what
a normal session leaves in the logs.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from conftest import receive
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from ws_helpers import HOST, Probe, RawClient, expect, run, serve, upgrade_request

import ergopy
from ergopy import gen
from ergopy.meta import web, websocket

MiB = 1 << 20


# ---- origins ----------------------------------------------------------------------------------------


def crafted_origins(port: int) -> list[str]:
    """Origins that contain our host:port somewhere but are not it."""
    return [
        "null",
        f"http://{HOST}:{port}.evil.example",
        f"http://{HOST}:{port}@evil.example",
        f"http://evil.example/{HOST}:{port}",
        f"http://evil.example#{HOST}:{port}",
        f"http://{HOST}:{port + 1}",
        f"http://{HOST}",
        f"http://localhost:{port}",  # the same machine under another name is another origin
        "http://[::1]:80",
    ]


async def test_crafted_cross_origins_are_refused_by_the_default_check(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    for origin in crafted_origins(s.port):
        raw = await RawClient.open(s.port)
        status, _ = await raw.request(upgrade_request(s.port, extra=[("Origin", origin)]))
        raw.close()
        assert status == 403, f"{origin!r} was answered {status}"
    for origin in (f"http://{HOST}:{s.port}", f"HTTP://{HOST}:{s.port}", f"https://{HOST}:{s.port}"):
        # gorilla's rule compares host[:port] only, ASCII case-insensitively
        raw = await RawClient.open(s.port)
        status, _ = await raw.request(upgrade_request(s.port, extra=[("Origin", origin)]))
        raw.close()
        assert status == 101, f"{origin!r} was answered {status}"
    kinds = [type((await receive(s.queue)).message).__name__ for _ in range(6)]
    assert sorted(kinds) == ["MessageConnect"] * 3 + ["MessageDisconnect"] * 3  # none for the refused
    assert s.queue.empty()


async def test_an_allow_list_check_origin_and_one_that_raises(node: ergopy.Node) -> None:
    allowed = {"https://chat.example"}

    def check(req: websocket.Request) -> bool:
        if req.headers.get("Origin") == "https://boom.example":
            raise RuntimeError("the check itself failed")
        return req.headers.get("Origin") in allowed

    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(check_origin=check))
    for origin, want in [
        ("https://chat.example", 101),
        ("https://chat.example.evil", 403),
        ("https://boom.example", 403),  # an exception refuses, it does not allow
        (f"http://{HOST}:{s.port}", 403),  # a custom check replaces the same-origin rule
    ]:
        raw = await RawClient.open(s.port)
        status, _ = await raw.request(upgrade_request(s.port, extra=[("Origin", origin)]))
        raw.close()
        assert status == want, (origin, status)
    assert node.is_alive()


# ---- limits on by default ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "request_"),
    [
        ("a 9000-byte header value", lambda port: upgrade_request(port, extra=[("X-Big", "v" * 9000)])),
        ("a 9000-byte request line", lambda port: upgrade_request(port, path="/ws?" + "q" * 9000)),
        ("a 9000-byte header name", lambda port: upgrade_request(port, extra=[("X" * 9000, "v")])),
    ],
)
async def test_oversize_request_heads_are_refused_by_default(node: ergopy.Node, what: str, request_: Any) -> None:
    assert web.WebServerOptions().max_line_size == 8190
    assert web.WebServerOptions().max_field_size == 8190
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(request_(s.port))
    raw.close()
    assert status in (400, 413, 414, 431), f"{what}: {status}"
    assert s.queue.empty()
    async with connect(s.url()) as c:  # and the server still serves
        await c.send("ok")
        assert await c.recv() == "ok"


async def test_a_header_just_under_the_limit_is_accepted(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port, extra=[("X-Big", "v" * 8000)]))
    raw.close()
    assert status == 101


async def test_thousands_of_small_headers_do_not_hang_the_server(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"])
    raw = await RawClient.open(s.port)
    many = [(f"X-H{i}", "v") for i in range(5000)]
    status, _ = await raw.request(upgrade_request(s.port, extra=many), timeout=10)
    raw.close()
    assert status is None or status in (101, 400, 431), status
    async with connect(s.url()) as c:
        await c.send("ok")
        assert await c.recv() == "ok"


async def test_the_client_connection_limits_message_size_by_default(node: ergopy.Node) -> None:
    """A server sending our client 1 MiB + 1 gets 1009 (ConnectionOptions.max_message_size default)."""
    assert websocket.ConnectionOptions().max_message_size == MiB
    closed: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"y" * MiB)  # exactly the limit: delivered
        await ws.send(b"y" * (MiB + 1))
        try:
            await ws.recv()
        except ConnectionClosed:
            pass
        closed.put_nowait(ws.close_code)

    q: asyncio.Queue[Any] = asyncio.Queue()
    await node.spawn_register("w1", Probe, None, q, False)
    async with ws_serve(handler, HOST, 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]

        async def dial(p: Probe) -> gen.Alias:
            conn = await websocket.create_connection(websocket.ConnectionOptions(url=f"ws://{HOST}:{port}/"))
            return p.spawn_meta(conn, gen.MetaOptions())

        await run(node, "w1", dial)
        await expect(q, websocket.MessageConnect)
        assert len((await expect(q, websocket.Message)).body) == MiB
        assert (await expect(q, websocket.MessageDisconnect)).code == 1009
        assert await asyncio.wait_for(closed.get(), 5) == 1009


# ---- TLS ---------------------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made with ``cryptography``: (cert.pem, key.pem)."""
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
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only that certificate)."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    return server_ctx, client_ctx


async def test_wss_end_to_end_with_ergopy_on_both_sides(
    node: ergopy.Node, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls
    s = await serve(node, pool=["w1"], ssl=server_ctx)
    q: asyncio.Queue[Any] = asyncio.Queue()
    await node.spawn_register("c1", Probe, None, q, False)

    async def dial(p: Probe) -> gen.Alias:
        conn = await websocket.create_connection(websocket.ConnectionOptions(url=s.url(), ssl=client_ctx))
        return p.spawn_meta(conn, gen.MetaOptions())

    alias = await run(node, "c1", dial)
    await expect(q, websocket.MessageConnect)
    server_side = await expect(s.queue, websocket.MessageConnect)
    node.send_alias(alias, websocket.Message(body=b"secret over tls"))
    assert (await expect(s.queue, websocket.Message)).body == b"secret over tls"
    assert (await expect(q, websocket.Message)).body == b"secret over tls"  # the server's echo
    node.send_exit_meta(alias, gen.TERMINATE_REASON_NORMAL)
    assert (await expect(q, websocket.MessageDisconnect)).code == 1000
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code) == (server_side.id, 1000)


async def test_wss_refuses_a_client_that_does_not_trust_the_certificate(
    node: ergopy.Node, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, _ = tls
    s = await serve(node, pool=["w1"], ssl=server_ctx)
    with pytest.raises(websocket.ConnectError):  # verification is on by default
        await websocket.create_connection(websocket.ConnectionOptions(url=s.url()))
    assert s.queue.empty()


async def test_plain_http_to_a_tls_port_is_never_upgraded(
    node: ergopy.Node, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls
    s = await serve(node, pool=["w1"], ssl=server_ctx)
    raw = await RawClient.open(s.port)
    status, _ = await raw.request(upgrade_request(s.port), timeout=5)
    raw.close()
    assert status != 101
    assert s.queue.empty()
    async with connect(s.url(), ssl=client_ctx) as c:  # and TLS clients are still served
        await c.send("ok")
        assert await c.recv() == "ok"


async def test_a_client_that_never_starts_tls_is_cut_at_the_handshake_timeout(
    node: ergopy.Node, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, _ = tls
    s = await serve(node, pool=["w1"], ssl=server_ctx, handshake_timeout=0.3)
    loop = asyncio.get_running_loop()
    raw = await RawClient.open(s.port)  # TCP only; no ClientHello
    t0 = loop.time()
    await raw.wait_eof(timeout=5)
    elapsed = loop.time() - t0
    raw.close()
    assert 0.25 <= elapsed < 2.0, elapsed


# ---- logs -----------------------------------------------------------------------------------------------


async def test_a_normal_session_logs_no_request_data_at_info_or_above(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = ["Bearer-s3cr3t-token", "session=c00kie-value", "q=private-query", "body-secret-payload"]
    s = await serve(node, pool=["w1"])
    async with connect(
        s.url("/ws?q=private-query"),
        additional_headers={"Authorization": "Bearer-s3cr3t-token", "Cookie": "session=c00kie-value"},
    ) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        assert mc.headers["Authorization"] == "Bearer-s3cr3t-token"  # the worker sees it...
        await c.send("body-secret-payload")
        assert await c.recv() == "body-secret-payload"
        await expect(s.queue, websocket.Message)
    await expect(s.queue, websocket.MessageDisconnect)
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    for r in loud:  # ...the logs do not
        text = r.getMessage() + " " + " ".join(str(a) for a in (r.args or ()))
        assert not any(sec in text for sec in secrets), f"{r.name} {r.levelname}: {text}"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in loud]
