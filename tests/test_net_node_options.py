"""gen.NetworkOptions and friends: checked when built, naming the field and the value."""

from __future__ import annotations

import pytest

from ergopy import gen


def test_network_options_defaults_follow_go() -> None:
    opts = gen.NetworkOptions(cookie="secret")
    assert opts.acceptors == [gen.AcceptorOptions(host="", port=11144, port_range=50000)]
    assert opts.flags == gen.NetworkFlags.default()
    assert opts.registrar and opts.registrar_port == 4499
    assert opts.liveness == 20.0


def test_empty_cookie_is_refused() -> None:
    with pytest.raises(ValueError, match=r"NetworkOptions\.cookie must not be empty"):
        gen.NetworkOptions(cookie="")


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"cookie": 5}, TypeError, r"NetworkOptions\.cookie must be a str, got 5"),
        ({"acceptors": "x"}, TypeError, r"NetworkOptions\.acceptors must be a list"),
        ({"acceptors": [("h", 1)]}, TypeError, r"NetworkOptions\.acceptors must be a AcceptorOptions"),
        ({"max_message_size": -1}, ValueError, r"NetworkOptions\.max_message_size must be an int"),
        ({"pool_size": 0}, ValueError, r"NetworkOptions\.pool_size must be an int in 1\.\.255, got 0"),
        ({"registrar_port": 70000}, ValueError, r"NetworkOptions\.registrar_port must be an int in 0\.\.65535"),
        ({"routes": {"b@h": 5}}, TypeError, r"NetworkOptions\.routes must be a NetworkRoute"),
        ({"liveness": 2}, ValueError, r"NetworkOptions\.liveness must be at least 4 seconds, got 2"),
        ({"request_timeout": 0}, ValueError, r"NetworkOptions\.request_timeout must be a finite"),
        ({"registrar": "yes"}, TypeError, r"NetworkOptions\.registrar must be a bool"),
        ({"client_tls": "ctx"}, TypeError, r"NetworkOptions\.client_tls must be a SSLContext or None"),
        ({"insecure_skip_verify": 1}, TypeError, r"NetworkOptions\.insecure_skip_verify must be a bool"),
    ],
)
def test_network_options_refuse_bad_fields(kwargs: dict[str, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        gen.NetworkOptions(**{"cookie": "c", **kwargs})  # type: ignore[arg-type]


def test_acceptor_and_route_check_their_fields() -> None:
    with pytest.raises(ValueError, match=r"AcceptorOptions\.port must be an int in 0\.\.65535, got -1"):
        gen.AcceptorOptions(port=-1)
    with pytest.raises(TypeError, match=r"AcceptorOptions\.tls must be a SSLContext or None"):
        gen.AcceptorOptions(tls="yes")
    with pytest.raises(TypeError, match=r"NetworkRoute\.host must be a str"):
        gen.NetworkRoute(host=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"NetworkFlags\.enable must be a bool"):
        gen.NetworkFlags(enable=1)  # type: ignore[arg-type]


def test_node_options_network_must_be_network_options() -> None:
    with pytest.raises(TypeError, match=r"NodeOptions\.network must be a NetworkOptions or None, got 'secret'"):
        gen.NodeOptions(network="secret")
    assert gen.NodeOptions().network is None


def test_compression_checks_its_fields() -> None:
    assert gen.ProcessOptions(compression=gen.Compression(enable=True)).compression.enable
    with pytest.raises(ValueError, match=r"Compression\.type must be 'gzip' or 'zlib', got 'lzw'"):
        gen.Compression(type="lzw")
    with pytest.raises(ValueError, match=r"Compression\.threshold must be an int >= 1024, got 10"):
        gen.Compression(threshold=10)
    with pytest.raises(TypeError, match=r"ProcessOptions\.compression must be a Compression or None, got True"):
        gen.ProcessOptions(compression=True)
