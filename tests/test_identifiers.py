"""Identifiers print, compare and hash exactly as Ergo's do."""

from __future__ import annotations

import pickle

import pytest

from ergopy import gen

NODE = "node@localhost"


def test_crc32_of_node_name_matches_ergo() -> None:
    assert gen.crc32("node@localhost") == "2C323E75"
    assert gen.crc32("t1WebSocketnode@localhost") == "0CEAAB1D"


def test_crc32_of_empty_string_is_empty() -> None:
    assert gen.crc32("") == ""


def test_atom_prints_quoted() -> None:
    assert str(gen.Atom("worker")) == "'worker'"
    assert f"{gen.Atom('worker')}" == "'worker'"


def test_atom_compares_and_hashes_as_its_text() -> None:
    assert gen.Atom("worker") == "worker"
    assert hash(gen.Atom("worker")) == hash("worker")
    assert gen.Atom("worker").text == "worker"


def test_atom_host_is_text_after_at() -> None:
    assert gen.Atom(NODE).host() == "localhost"
    assert gen.Atom("nohost").host() == ""


def test_atom_longer_than_255_bytes_is_refused() -> None:
    gen.Atom("a" * 255)
    with pytest.raises(ValueError, match="too long Atom"):
        gen.Atom("a" * 256)
    with pytest.raises(ValueError, match="too long Atom"):
        gen.Atom("é" * 128)  # 256 bytes in UTF-8


def test_pid_prints_crc_and_signed_halves() -> None:
    assert str(gen.PID(NODE, 1001, 1)) == "<2C323E75.0.1001>"
    assert str(gen.PID(NODE, (1 << 32) | 5, 1)) == "<2C323E75.1.5>"
    assert str(gen.PID(NODE, 0xFFFFFFFF, 1)) == "<2C323E75.0.-1>"


def test_pid_equality_covers_node_id_and_creation() -> None:
    assert gen.PID(NODE, 1001, 7) == gen.PID(NODE, 1001, 7)
    assert hash(gen.PID(NODE, 1001, 7)) == hash(gen.PID(NODE, 1001, 7))
    assert gen.PID(NODE, 1001, 7) != gen.PID(NODE, 1001, 8)
    assert gen.PID(NODE, 1001, 7) != gen.PID(NODE, 1002, 7)
    assert gen.PID(NODE, 1001, 7) != gen.PID("other@localhost", 1001, 7)


def test_process_id_prints_quoted_name() -> None:
    assert str(gen.ProcessID("worker", NODE)) == "<2C323E75.'worker'>"


def test_process_id_equality_covers_name_and_node() -> None:
    assert gen.ProcessID("w", NODE) == gen.ProcessID("w", NODE)
    assert gen.ProcessID("w", NODE) != gen.ProcessID("v", NODE)
    assert gen.ProcessID("w", NODE) != gen.ProcessID("w", "other@localhost")


def test_ref_prints_three_unsigned_parts() -> None:
    assert str(gen.Ref(NODE, 1, (1, 2, 3))) == "Ref#<2C323E75.1.2.3>"


def test_alias_prints_with_alias_prefix() -> None:
    assert str(gen.Alias(NODE, 1, (4, 5, 6))) == "Alias#<2C323E75.4.5.6>"


def test_ref_and_alias_with_equal_fields_are_not_equal() -> None:
    ref = gen.Ref(NODE, 1, (4, 5, 6))
    alias = gen.Alias(NODE, 1, (4, 5, 6))
    assert ref != alias
    assert alias != ref
    assert len({ref, alias}) == 2


def test_alias_equality_covers_all_fields() -> None:
    assert gen.Alias(NODE, 1, (4, 5, 6)) == gen.Alias(NODE, 1, (4, 5, 6))
    assert gen.Alias(NODE, 1, (4, 5, 6)) != gen.Alias(NODE, 2, (4, 5, 6))
    assert gen.Alias(NODE, 1, (4, 5, 6)) != gen.Alias(NODE, 1, (4, 5, 7))


def test_event_prints_quoted_name_after_colon() -> None:
    assert str(gen.Event("ev", NODE)) == "Event#<2C323E75:'ev'>"


def test_event_equality_covers_name_and_node() -> None:
    assert gen.Event("ev", NODE) == gen.Event("ev", NODE)
    assert gen.Event("ev", NODE) != gen.Event("other", NODE)
    assert gen.Event("ev", NODE) != gen.ProcessID("ev", NODE)


@pytest.mark.parametrize(
    "ident",
    [
        gen.PID(NODE, 1001, 1),
        gen.ProcessID("worker", NODE),
        gen.Ref(NODE, 1, (1, 2, 3)),
        gen.Alias(NODE, 1, (1, 2, 3)),
        gen.Event("ev", NODE),
    ],
    ids=lambda i: type(i).__name__,
)
def test_identifiers_are_immutable(ident: object) -> None:
    with pytest.raises(AttributeError):
        ident.node = "x@y"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "ident",
    [
        gen.PID(NODE, 1001, 1),
        gen.ProcessID("worker", NODE),
        gen.Ref(NODE, 1, (1, 2, 3)),
        gen.Alias(NODE, 1, (1, 2, 3)),
        gen.Event("ev", NODE),
    ],
    ids=lambda i: type(i).__name__,
)
def test_identifiers_survive_pickling(ident: object) -> None:
    copy = pickle.loads(pickle.dumps(ident))
    assert copy == ident
    assert type(copy) is type(ident)
    assert hash(copy) == hash(ident)
    assert str(copy) == str(ident)


def test_atom_of_an_atom_is_the_same_name() -> None:
    atom = gen.Atom("worker")
    assert gen.Atom(atom) == "worker"
    assert str(gen.Atom(atom)) == "'worker'"
