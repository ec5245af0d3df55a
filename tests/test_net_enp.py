"""ENP frames against the bytes two Go Ergo 3.1.0 nodes exchanged (tests/data/ergo-wire/,
copied from the annotated transcript): every frame decodes, the ones ergopy would send
re-encode byte for byte, compression (gzip, zlib, Go's LZW) inflates to the same frame,
and no garbage crashes or hangs the decoder."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ergopy import gen
from ergopy.net import edf, enp, handshake, proto_types
from ergopy.net.enp import Compression, Frame, FrameError, FrameType, ResponseCode
from ergopy.net.handshake import MessageIntroduce

DATA = Path(__file__).parent / "data" / "ergo-wire"

# The Introduce tables (transcript appendix A): what each node's atom ids mean.
ALPHA_ATOMS = {256: "ticks", 257: "echo", 258: "alpha@localhost"}
BETA_ATOMS = {256: "echo", 257: "beta@localhost"}
ATOMS_OF_SENDER = {"alpha": ALPHA_ATOMS, "beta": BETA_ATOMS}


def read_hex(name: str) -> bytes:
    return bytes.fromhex((DATA / name).read_text().replace("\n", ""))


def split_stream(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(handshake messages, ENP frames) of one recorded direction of a link."""
    handshake, pos = [], 0
    while pos < len(data) and data[pos] == 87:
        n = struct.unpack_from(">I", data, pos + 2)[0]
        handshake.append(data[pos : pos + 6 + n])
        pos += 6 + n
    reader = enp.FrameReader()
    frames = reader.feed(data[pos:])
    assert reader.buffered == 0
    return handshake, frames


def recorded_frames() -> list[tuple[str, bytes]]:
    """(sender, frame) for every ENP frame of the first run's streams and the second run's listing."""
    out: list[tuple[str, bytes]] = []
    for path in sorted(DATA.glob("link-*.hex")):
        sender = path.name.split("-")[2]
        out += [(sender, f) for f in split_stream(read_hex(path.name))[1]]
    for line in (DATA / "second-run-frames.txt").read_text().splitlines():
        if not line.startswith("#"):
            _, sender, hexed = line.split()
            out.append((sender, bytes.fromhex(hexed)))
    return out


FRAMES = recorded_frames()


def test_the_recordings_hold_every_frame_type() -> None:
    assert {f[7] for _, f in FRAMES} == {int(t) for t in FrameType}
    assert len(FRAMES) == 79


def test_stream_splits_into_handshake_and_frames_at_any_chunking() -> None:
    data = read_hex("link-3-beta-to-alpha.hex")
    hs, whole = split_stream(data)
    body = data[sum(map(len, hs)) :]
    for chunk in (1, 7, 64, 4096):
        reader = enp.FrameReader()
        got: list[bytes] = []
        for i in range(0, len(body), chunk):
            got += reader.feed(body[i : i + chunk])
        assert got == whole


@pytest.mark.parametrize("index", range(len(FRAMES)))
def test_every_recorded_frame_decodes_and_reencodes_byte_exact(index: int) -> None:
    sender, raw = FRAMES[index]
    atoms = ATOMS_OF_SENDER[sender]
    frame = enp.decode_frame(raw, atoms)
    if raw[7] == FrameType.Z:
        assert frame.type == FrameType.PID  # the inner frame comes back
        return
    ids = {v: k for k, v in atoms.items()}
    assert enp.encode_frame(frame, ids) == raw


def test_cache_variant_needs_the_senders_table() -> None:
    raw = next(f for s, f in FRAMES if f[7] == FrameType.NAME_CACHE and s == "beta")
    with pytest.raises(FrameError, match="unknown atom cache id 256"):
        enp.decode_frame(raw, {})
    assert enp.decode_frame(raw, BETA_ATOMS).name == "echo"


def test_send_by_name_with_no_atom_table_writes_the_name_variant() -> None:
    raw = next(f for s, f in FRAMES if f[7] == FrameType.NAME_CACHE and s == "beta")
    frame = enp.decode_frame(raw, BETA_ATOMS)
    plain = enp.encode_frame(frame)
    assert plain[7] == FrameType.NAME
    back = enp.decode_frame(plain)
    assert (back.name, back.from_id, back.payload) == ("echo", 1004, frame.payload)


def frame_named(sender: str, type_: FrameType, nth: int = 0) -> bytes:
    return [f for s, f in FRAMES if s == sender and f[7] == type_][nth]


def test_message_pid_fields_as_go_wrote_them() -> None:
    # F17: driver 1004 -> server 1005, #main/Chat (cache id 4215)
    f = enp.decode_frame(frame_named("beta", FrameType.PID), BETA_ATOMS)
    assert (f.order, f.from_id, f.to_id, f.flags, f.important) == (240, 1004, 1005, 0, False)
    assert f.payload[:3] == b"\x83\x10\x77"
    assert enp.default_order(f) == 240


def test_a_frame_ergopy_builds_equals_gos_but_for_the_stale_message_id() -> None:
    raw = frame_named("beta", FrameType.PID)  # F17
    decoded = enp.decode_frame(raw)
    ours = Frame(FrameType.PID, from_id=1004, to_id=1005, payload=decoded.payload)
    ours.order = enp.default_order(ours)
    built = enp.encode_frame(ours)
    assert built[:17] + built[25:] == raw[:17] + raw[25:]
    assert built[17:25] == bytes(8)  # ergopy zeroes the slot Go leaves stale


@pytest.mark.parametrize(
    ("sender", "type_", "expect"),
    [
        (
            "beta",
            FrameType.REQUEST_NAME,
            {"order": 239, "from_id": 1004, "ref_id": (43946, 25522, 0), "name": "server"},
        ),
        ("beta", FrameType.REQUEST_PID, {"order": 240, "to_id": 1005}),
        ("beta", FrameType.REQUEST_ALIAS, {"order": 22, "alias_id": (114656, 25522, 0)}),
        ("beta", FrameType.ALIAS, {"order": 22, "alias_id": (114656, 25522, 0)}),
        ("beta", FrameType.EXIT, {"order": 239, "to_id": 1004, "flags": 2}),
        ("alpha", FrameType.RESPONSE, {"order": 239, "from_id": 1005, "to_id": 1004}),
        ("alpha", FrameType.EVENT, {"order": 242, "name": "news"}),
        ("alpha", FrameType.EVENT_CACHE, {"order": 242, "name": "ticks"}),
        ("alpha", FrameType.TERMINATE_NAME, {"order": 0, "flags": 1, "name": "victim"}),
        ("alpha", FrameType.TERMINATE_NAME_CACHE, {"order": 0, "name": "echo"}),
        ("alpha", FrameType.TERMINATE_EVENT, {"order": 0, "name": "news"}),
        ("alpha", FrameType.TERMINATE_EVENT_CACHE, {"order": 0, "name": "ticks"}),
        ("alpha", FrameType.TERMINATE_PID, {"order": 0, "to_id": 1004}),
        ("alpha", FrameType.TERMINATE_ALIAS, {"order": 0, "alias_id": (250416, 25522, 0)}),
    ],
)
def test_frame_fields_and_order_byte(sender: str, type_: FrameType, expect: dict[str, object]) -> None:
    f = enp.decode_frame(frame_named(sender, type_), ATOMS_OF_SENDER[sender])
    for key, value in expect.items():
        assert getattr(f, key) == value, key
    assert enp.default_order(f) == f.order


def test_response_error_codes() -> None:
    errors = [enp.decode_frame(f) for s, f in FRAMES if f[7] == FrameType.RESPONSE_ERROR]
    by_code = {f.code: f for f in errors}
    # F27 "request refused" as an EDF error, F29 unknown process, F31 important ack
    assert by_code[ResponseCode.OTHER].payload == b"\x9c\x00\x0frequest refused"
    unknown = by_code[ResponseCode.PROCESS_UNKNOWN]
    assert (unknown.order, unknown.from_id, unknown.to_id, unknown.payload) == (0, 0, 1004, b"")
    ack = by_code[ResponseCode.OK]
    assert (ack.ref_id, ack.from_id, ack.order) == ((69473, 0, 0), 1005, 0)


def test_response_codes_name_gos_errors() -> None:
    assert enp.response_error(ResponseCode.PROCESS_UNKNOWN) is gen.ProcessUnknownError
    assert enp.response_error(ResponseCode.MAILBOX_FULL) is gen.MailboxFullError
    assert enp.response_error(ResponseCode.PROCESS_TERMINATED) is gen.ProcessTerminatedError
    assert enp.response_error(ResponseCode.OK) is None
    with pytest.raises(FrameError, match="code 9"):
        enp.response_error(9)


def test_important_send_carries_its_message_id() -> None:
    f = [enp.decode_frame(x) for s, x in FRAMES if s == "beta" and x[7] == FrameType.PID][1]  # F30
    assert f.important and f.message_id == 69473


def test_compressed_frames_inflate_to_one_frame_by_all_three_methods() -> None:
    zs = [f for _, f in FRAMES if f[7] == FrameType.Z][:3]
    assert [z[8] for z in zs] == [Compression.GZIP, Compression.ZLIB, Compression.LZW]
    inner = [enp.decompress(z[13:], z[8], struct.unpack_from(">I", z, 9)[0]) for z in zs]
    assert len(inner[0]) == 4636
    # the stale message-id slot (17..25) differs between runs; everything else is equal
    assert inner[1] == inner[2]
    assert inner[0][:17] + inner[0][25:] == inner[1][:17] + inner[1][25:]
    decoded = [enp.decode_frame(z) for z in zs]
    assert all(d.type == FrameType.PID and d.order == 240 and d.to_id == 1005 for d in decoded)
    assert decoded[0].payload[:3] == b"\x8d\x11\xf8"


@pytest.mark.parametrize("method", [Compression.GZIP, Compression.ZLIB])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_compress_frame_round_trip(method: Compression, level: int) -> None:
    z = next(f for _, f in FRAMES if f[7] == FrameType.Z)
    original = enp.decompress(z[13:], z[8], struct.unpack_from(">I", z, 9)[0])
    ours = enp.compress_frame(original, method, level)
    assert ours[6] == original[6] and ours[7] == FrameType.Z and ours[8] == method
    assert len(ours) < len(original) // 10
    assert enp.encode_frame(enp.decode_frame(ours)) == original
    # Go's gzip reader and zlib reader accept what Python's zlib writes (same formats)
    wbits = 31 if method == Compression.GZIP else 15
    assert zlib.decompress(ours[13:], wbits) == original


def test_exit_terminate_and_any_are_never_compressed() -> None:
    for t in (FrameType.EXIT, FrameType.ANY, FrameType.TERMINATE_NAME):
        raw = next(f for _, f in FRAMES if f[7] == t)
        with pytest.raises(FrameError):
            enp.compress_frame(raw)


def test_lzw_is_receive_only() -> None:
    raw = frame_named("beta", FrameType.PID)
    with pytest.raises(FrameError, match="LZW"):
        enp.compress_frame(raw, Compression.LZW)


def test_compressed_length_mismatch_is_refused() -> None:
    z = bytearray(next(f for _, f in FRAMES if f[7] == FrameType.Z))
    struct.pack_into(">I", z, 9, 4635)
    with pytest.raises(FrameError, match="4635"):
        enp.decode_frame(bytes(z))


def test_compression_bomb_stops_at_the_announced_length() -> None:
    bomb = zlib.compress(b"\0" * 50_000_000)
    frame = bytearray(b"\x4e\x01\0\0\0\0\x00\xc8\x65") + struct.pack(">I", 100) + bomb
    struct.pack_into(">I", frame, 2, len(frame))
    with pytest.raises(FrameError, match="inflates"):
        enp.decode_frame(bytes(frame))


def test_lzw_decoder_matches_go_on_table_growth_and_reset() -> None:
    # Go's writer for 4636 bytes used codes up to 12 bits only if the table grows; check widths grew:
    z = [f for _, f in FRAMES if f[7] == FrameType.Z][2]
    out = enp.lzw_decode(z[13:], 10_000)
    assert len(out) == 4636
    with pytest.raises(FrameError, match="end code"):
        enp.lzw_decode(z[13:-2], 10_000)
    with pytest.raises(FrameError, match="inflates past"):
        enp.lzw_decode(z[13:], 100)


def test_frames_before_a_bad_header_still_come_out() -> None:
    raw = frame_named("beta", FrameType.PID)
    reader = enp.FrameReader()
    assert reader.feed(raw + raw + b"\x00\x01\x02\x03\x04\x05\x06\x07") == [raw, raw]
    assert isinstance(reader.failed, FrameError)
    with pytest.raises(FrameError, match="magic"):
        reader.feed(raw)


def test_max_size_refuses_a_large_header() -> None:
    raw = frame_named("beta", FrameType.PID)
    with pytest.raises(FrameError, match="exceeds the limit of 50"):
        enp.FrameReader(max_size=50).feed(raw)
    assert enp.FrameReader(max_size=len(raw)).feed(raw) == [raw]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x4f\x01\x00\x00\x00\x08\x00\x65", "magic"),
        (b"\x4e\x02\x00\x00\x00\x08\x00\x65", "version"),
        (b"\x4e\x01\x00\x00\x00\x07\x00\x65", "shorter"),
        (b"\x4e\x01\x00\x00\x00\x08\x00\x01", "unknown ENP frame type"),
        (b"\x4e\x01\x00\x00\x00\x0a\x00\x65\x00\x00", "truncated"),
        (b"\x4e\x01\x00\x00\x00\x08\x00\xc7", "no EDF value"),
        (b"\x4e\x01\x00\x00\x00\x32\x00\x82" + bytes(41) + b"\x07", "response error code 7"),
    ],
)
def test_malformed_frames_are_refused(raw: bytes, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        enp.decode_frame(raw)


def test_name_longer_than_255_bytes_is_refused() -> None:
    with pytest.raises(FrameError, match="255"):
        enp.encode_frame(Frame(FrameType.NAME, name="x" * 256, payload=b"\xff"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_frame_reader(data: bytes) -> None:
    reader = enp.FrameReader(max_size=1 << 20)
    try:
        for raw in reader.feed(b"\x4e\x01" + data):
            enp.decode_frame(raw, ALPHA_ATOMS, max_size=1 << 20)
    except FrameError:
        pass


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FRAMES), st.data())
def test_mutated_recorded_frames_never_crash_the_decoder(sample: tuple[str, bytes], data: st.DataObject) -> None:
    _, raw = sample
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(6, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(b)))
    b = b[:cut]
    struct.pack_into(">I", b, 2, len(b))
    try:
        f = enp.decode_frame(bytes(b), BETA_ATOMS, max_size=1 << 16)
    except FrameError:
        return
    assert isinstance(f, Frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_lzw_input_never_crashes(data: bytes) -> None:
    try:
        enp.lzw_decode(data, 5000)
    except FrameError:
        pass


# ---- payloads, decoded with the tables each node sent in its Introduce ------------------


def _go_type(name: str, fields: list[tuple[str, object]]) -> type:
    """The test program's package-main types (test_edf may have registered #main/Chat already)."""
    existing = edf.registered_types().get(name)
    if existing is not None:
        return existing
    cls = dataclasses.make_dataclass(name.rsplit("/", 1)[1], fields)
    edf.register(name, cls)
    return cls


Chat = _go_type("#main/Chat", [("room", str), ("text", str), ("n", edf.Int64)])
Handles = _go_type(
    "#main/Handles", [("server", gen.PID), ("alias", gen.Alias), ("victim", gen.PID), ("victim_alias", gen.Alias)]
)


def introduce_of(sender: str) -> MessageIntroduce:
    name = f"link-1-{sender}-to-{'beta' if sender == 'alpha' else 'alpha'}.hex"
    hs, _ = split_stream(read_hex(name))
    for raw in hs:
        got = handshake.split_message(raw)
        assert got is not None
        if isinstance(got[0], MessageIntroduce):
            return got[0]
    raise AssertionError("no Introduce")


INTRO = {s: introduce_of(s) for s in ("alpha", "beta")}
DECODE = {s: edf.DecodeCaches(i.atom_cache, i.reg_cache, i.err_cache) for s, i in INTRO.items()}
ENCODE = {
    s: edf.EncodeCaches(
        atoms=[i.atom_cache[k] for k in sorted(i.atom_cache)],
        types=[i.reg_cache[k] for k in sorted(i.reg_cache)],
        errors=[str(i.err_cache[k]) for k in sorted(i.err_cache)],
    )
    for s, i in INTRO.items()
}


def test_introduce_tables_match_the_appendix() -> None:
    assert dict(INTRO["alpha"].atom_cache) == ALPHA_ATOMS
    assert dict(INTRO["beta"].atom_cache) == BETA_ATOMS


@pytest.mark.parametrize("index", [i for i, (_, f) in enumerate(FRAMES)])
def test_every_payload_decodes_with_the_senders_tables(index: int) -> None:
    sender, raw = FRAMES[index]
    frame = enp.decode_frame(raw, ATOMS_OF_SENDER[sender])
    if not frame.payload:
        assert frame.type == FrameType.RESPONSE_ERROR and frame.code != ResponseCode.OTHER
        return
    value = edf.decode(frame.payload, DECODE[sender])
    if frame.type in enp.UNCOMPRESSED - {FrameType.ANY}:
        assert isinstance(value, BaseException)  # exit and terminate reasons are errors
    if frame.type == FrameType.ANY:
        assert isinstance(value, (*proto_types.REQUESTS, proto_types.MessageResult))


@pytest.mark.parametrize(
    "index", [i for i, (_, f) in enumerate(FRAMES) if f[7] == FrameType.ANY or f[7] in (129, 130, 101, 107, 181, 184)]
)
def test_payloads_reencode_byte_exact_with_the_senders_tables(index: int) -> None:
    sender, raw = FRAMES[index]
    frame = enp.decode_frame(raw, ATOMS_OF_SENDER[sender])
    if not frame.payload:
        return
    value = edf.decode(frame.payload, DECODE[sender])
    if frame.payload[5:13] == b"\x82\x00\x04\x9d\x83\x10\x2a\xff":
        # Go's typed nil []gen.MessageEvent (an event without a buffer) decodes to None: the
        # nil slice's Go type is not kept, so it cannot re-encode to these bytes. Whoever
        # answers an event link/monitor must send a typed []gen.MessageEvent (net.edf docs)
        assert value.result is None
        return
    assert edf.encode(value, ENCODE[sender]) == frame.payload


def test_decoded_payloads_are_what_go_logged() -> None:
    chat = edf.decode(enp.decode_frame(frame_named("beta", FrameType.PID)).payload, DECODE["beta"])
    assert (chat.room, chat.text, chat.n) == ("lobby", "hello from beta", 1)
    handles = edf.decode(enp.decode_frame(frame_named("alpha", FrameType.RESPONSE)).payload, DECODE["alpha"])
    assert handles.server == gen.PID("alpha@localhost", 1005, 1795951324)
    assert handles.alias == gen.Alias("alpha@localhost", 1795951324, (114656, 25522, 0))
    anys = [edf.decode(enp.decode_frame(f).payload, DECODE[s]) for s, f in FRAMES[:77] if f[7] == FrameType.ANY]
    link = next(a for a in anys if isinstance(a, proto_types.MessageLinkPID))
    assert link.source == gen.PID("beta@localhost", 1004, 1795951326)
    assert link.target == gen.PID("alpha@localhost", 1005, 1795951324)
    assert proto_types.request_order(link) == 240 and proto_types.result_order(link) == 239
    spawns = [a for a in anys if isinstance(a, proto_types.MessageSpawn)]
    assert [s.name for s in spawns] == ["worker", "forbidden"]
    assert spawns[0].options.args == ["arg1", 7] and proto_types.request_order(spawns[0]) == 0
    results = [a for a in anys if isinstance(a, proto_types.MessageResult)]
    assert any(r.result == gen.PID("alpha@localhost", 1008, 1795951324) for r in results)
    assert any(isinstance(r.error, gen.NameUnknownError) for r in results)  # the refused spawn
    history = next(r.result for r in results if isinstance(r.result, list))
    assert [e.message for e in history] == ["headline 1", "headline 2"]
    assert all(isinstance(e, gen.MessageEvent) and e.event == gen.Event("news", "alpha@localhost") for e in history)
