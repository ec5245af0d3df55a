"""EDF codec micro benchmark: encode+decode per second, beside pickle and json in the same run.

Cases (each a full round trip: ``encode`` then ``decode`` of the result):

* ``struct``: a small registered struct, Go ``#bench/Chat{Room, Text string; N int64}``
  (pickle: the same dataclass; json: the same fields as a dict);
* ``string``: a 16-byte string at top level;
* ``pid msg``: a registered struct holding a PID, an int64 and a string (what a remote
  send of a small message costs), with the connection caches in use.

Prints ops/s per codec and the ratio EDF / pickle. Usage::

    python benchmarks/edf_codec.py            # about 1 s per measurement, best of 3
    python benchmarks/edf_codec.py --quick    # a fraction of a second, for CI

Every loop is bounded by ``--n`` iterations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ergopy import gen, net
from ergopy.net import edf


@net.register("#bench/Chat")
@dataclasses.dataclass
class Chat:
    room: str
    text: str
    n: net.Int64


@net.register("#bench/Send")
@dataclasses.dataclass
class Send:
    to: gen.PID
    seq: net.Int64
    body: str


def rate(fn: Callable[[], Any], n: int, repeat: int) -> float:
    """Best ops/s of ``repeat`` runs of ``n`` calls."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="iterations per measurement")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20,000 iterations, one run")
    a = ap.parse_args()
    n, repeat = (20_000, 1) if a.quick else (a.n, a.repeat)

    chat = Chat("lobby", "hello there", net.Int64(7))
    chat_dict = dataclasses.asdict(chat)
    text = "0123456789abcdef"
    node = "node@localhost"
    send = Send(gen.PID(node, 1001, 1700000000), net.Int64(42), "ping")
    enc_c = edf.EncodeCaches.for_node(node)
    dec_c = edf.DecodeCaches(atoms=enc_c.atoms, types=enc_c.types, errors=enc_c.errors)
    dumps, loads = pickle.dumps, pickle.loads
    jdumps, jloads = json.dumps, json.loads
    encode, decode = edf.encode, edf.decode

    cases: list[tuple[str, dict[str, Callable[[], Any]]]] = [
        (
            "struct",
            {
                "edf": lambda: decode(encode(chat)),
                "pickle": lambda: loads(dumps(chat)),
                "json": lambda: jloads(jdumps(chat_dict)),
            },
        ),
        (
            "string",
            {
                "edf": lambda: decode(encode(text)),
                "pickle": lambda: loads(dumps(text)),
                "json": lambda: jloads(jdumps(text)),
            },
        ),
        (
            "pid msg (caches)",
            {
                "edf": lambda: decode(encode(send, enc_c), dec_c),
                "pickle": lambda: loads(dumps(send)),
            },
        ),
    ]
    print(f"EDF codec round trips (encode+decode), best of {repeat} x {n:,}, python {sys.version.split()[0]}")
    print(f"{'case':<18} {'edf ops/s':>12} {'pickle ops/s':>13} {'json ops/s':>11} {'edf/pickle':>11}")
    for name, fns in cases:
        r = {k: rate(f, n, repeat) for k, f in fns.items()}
        js = f"{r['json']:>11,.0f}" if "json" in r else f"{'-':>11}"
        print(f"{name:<18} {r['edf']:>12,.0f} {r['pickle']:>13,.0f} {js} {r['edf'] / r['pickle']:>10.2f}x")
    sizes = {"struct": len(encode(chat)), "pid msg (caches)": len(encode(send, enc_c))}
    print(
        "encoded sizes: " + ", ".join(f"{k} {v} B" for k, v in sizes.items()) + f"; pickle struct {len(dumps(chat))} B"
    )


if __name__ == "__main__":
    main()
