"""The fast paths of the network's per-message work give what the general paths give."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ergopy.net import edf, enp
from ergopy.net.enp import FrameError, FrameType


def _name_frame(name: str, payload: bytes = b"\x96" + bytes(8)) -> enp.Frame:
    return enp.Frame(FrameType.NAME, 7, 1000, flags=1, name=name, payload=payload)


def test_name_frames_round_trip_past_the_encoded_name_cache() -> None:
    names = [f"proc-{i}-é" for i in range(enp._NAMES_CACHED * 2 + 3)]  # evicts the cache twice
    for _ in range(2):
        for name in names:
            raw = enp.encode_frame(_name_frame(name))
            assert raw[7] == FrameType.NAME and enp.parse_header(raw) == len(raw)
            back = enp.decode_frame(raw)
            assert (back.name, back.from_id, back.flags, back.order) == (name, 1000, 1, 7)
    with pytest.raises(FrameError, match="name longer than 255 bytes"):
        enp.encode_frame(_name_frame("x" * 256))
    with pytest.raises(FrameError, match="cannot encode"):
        enp.encode_frame(enp.Frame(FrameType.PID, 0, -1, to_id=1, payload=b"\x96" + bytes(8)))


def test_a_large_frame_in_pieces_comes_out_whole_and_a_bad_header_fails_at_once() -> None:
    raw = enp.encode_frame(_name_frame("big", b"\x8d" + bytes(2) + bytes(200_000)))
    small = enp.encode_frame(_name_frame("small"))
    reader = enp.FrameReader()
    got: list[bytes] = []
    stream = small + raw + small
    for i in range(0, len(stream), 1000):
        got += reader.feed(stream[i : i + 1000])
    assert got == [small, raw, small] and reader.buffered == 0
    # a header over the limit, given 3 bytes at a time, fails as soon as its length is in
    limited = enp.FrameReader(max_size=1000)
    assert limited.feed(raw[:3]) == []
    with pytest.raises(FrameError, match="exceeds the limit of 1000"):
        limited.feed(raw[3:6])
    # a wrong magic after a partial frame fails at once too
    bad = enp.FrameReader()
    assert bad.feed(b"\x00\x01") == []
    with pytest.raises(FrameError, match="not an ENP frame"):
        bad.feed(b"\x00\x00\x10\x00")


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63), 12345])
def test_int_fast_path_writes_what_the_general_encoder_writes(value: int) -> None:
    general = bytearray()
    edf.encode_into(general, value)
    assert edf.encode(value) == bytes(general) and edf.decode(edf.encode(value)) == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_int_out_of_int64_is_refused_as_before(value: int) -> None:
    with pytest.raises(edf.EncodeError):
        edf.encode(value)


# ---- a plain send written straight to bytes ---------------------------------------------

_ID = st.integers(0, 2**64 - 1)
_NAMES = st.text(min_size=0, max_size=40).filter(lambda n: len(n.encode()) <= 255)


@given(
    kind=st.sampled_from([FrameType.PID, FrameType.NAME, FrameType.ALIAS]),
    from_id=_ID,
    to_id=_ID,
    alias=st.tuples(_ID, _ID, _ID),
    name=_NAMES,
    cached=st.booleans(),
    flags=st.integers(0, 255),
    payload=st.binary(min_size=1, max_size=64),
)
def test_a_plain_send_straight_to_bytes_is_what_the_frame_encoder_writes(
    kind: FrameType,
    from_id: int,
    to_id: int,
    alias: tuple[int, int, int],
    name: str,
    cached: bool,
    flags: int,
    payload: bytes,
) -> None:
    atom_ids = {name: 300} if cached else {"other": 301}
    frame = enp.Frame(kind, 0, from_id, to_id=to_id, flags=flags, alias_id=alias, name=name, payload=payload)
    frame.order = enp.default_order(frame)
    if kind == FrameType.PID:
        t, field = FrameType.PID, enp.pid_field(to_id)
    elif kind == FrameType.ALIAS:
        t, field = FrameType.ALIAS, enp.alias_field(alias)
    else:
        t, field = enp.name_field(name, atom_ids)
    assert enp.encode_message(t, frame.order, from_id, flags, field, payload) == enp.encode_frame(frame, atom_ids)


def test_a_plain_send_out_of_its_widths_is_refused_as_the_frame_encoder_refuses() -> None:
    with pytest.raises(FrameError, match="cannot encode PID frame"):
        enp.pid_field(2**64)
    with pytest.raises(FrameError, match="cannot encode ALIAS frame"):
        enp.alias_field((1, -1, 2))
    with pytest.raises(FrameError, match="name longer than 255 bytes"):
        enp.name_field("é" * 128)
    with pytest.raises(FrameError, match="cannot encode NAME frame"):
        enp.encode_message(FrameType.NAME, 1, -1, 0, b"\x00", b"\x96")
    with pytest.raises(FrameError, match="cannot encode PID frame"):
        enp.encode_message(FrameType.PID, 1, 1, 256, enp.pid_field(1), b"\x96")


@given(
    kind=st.sampled_from([FrameType.PID, FrameType.NAME, FrameType.ALIAS]),
    from_id=_ID,
    to_id=_ID,
    ref=st.tuples(_ID, _ID, _ID),
    alias=st.tuples(_ID, _ID, _ID),
    name=_NAMES,
    cached=st.booleans(),
    flags=st.integers(0, 255),
    payload=st.binary(min_size=1, max_size=64),
)
def test_a_call_request_and_its_answer_straight_to_bytes_are_what_the_frame_encoder_writes(
    kind: FrameType,
    from_id: int,
    to_id: int,
    ref: tuple[int, int, int],
    alias: tuple[int, int, int],
    name: str,
    cached: bool,
    flags: int,
    payload: bytes,
) -> None:
    atom_ids = {name: 300} if cached else {}
    request_type = enp.REQUEST_OF[kind]
    frame = enp.Frame(
        request_type, 0, from_id, to_id=to_id, flags=flags, ref_id=ref, alias_id=alias, name=name, payload=payload
    )
    frame.order = enp.default_order(frame)
    if kind == FrameType.PID:
        t, field = kind, enp.pid_field(to_id)
    elif kind == FrameType.ALIAS:
        t, field = kind, enp.alias_field(alias)
    else:
        t, field = enp.name_field(name, atom_ids)
    written = enp.encode_request(enp.REQUEST_OF[t], frame.order, from_id, flags, ref, field, payload)
    assert written == enp.encode_frame(frame, atom_ids)
    answer = enp.Frame(FrameType.RESPONSE, to_id % 255, from_id, to_id=to_id, flags=flags, ref_id=ref, payload=payload)
    assert enp.encode_response(to_id % 255, from_id, flags, to_id, ref, payload) == enp.encode_frame(answer)


def test_a_call_request_or_answer_out_of_its_widths_is_refused() -> None:
    with pytest.raises(FrameError, match="cannot encode REQUEST_PID frame"):
        enp.encode_request(FrameType.REQUEST_PID, 1, 1, 0, (1, 2, 2**64), enp.pid_field(1), b"\x96")
    with pytest.raises(FrameError, match="cannot encode RESPONSE frame"):
        enp.encode_response(1, 1, 0, -5, (1, 2, 3), b"\x96")
