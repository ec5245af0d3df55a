"""What two busy Python processes get out of this machine, against one: its own ceiling for "2 nodes vs 1 node".

A virtual machine's two CPUs may be two hyperthreads of one physical core, or
share it with other guests: then two processes that each keep a CPU busy get
less than twice the work of one, whatever they run. This measures that ceiling
with no I/O at all: a pure-Python loop (the interpreter's own work, the kind a
node does) for ``seconds``, first one process alone, then one process per CPU at
once, each pinned to its CPU; the ratio is the work the pair did over the work
one did. Issue 11's node ratios are printed beside it (``ws_echo.py --part nodes``,
``chat_fanout.py --part throughput``), and it runs on its own:

    python benchmarks/cpu_scaling.py          # 3 rounds of 1 s, median

Every run is bounded: each child stops after ``seconds`` and is killed after 30 s more.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_LOOP = """
import sys, time
end = time.perf_counter() + float(sys.argv[1])
n = 0
d = {}
while time.perf_counter() < end:
    for i in range(1000):
        d[i & 63] = n + i
    n += 1
print(n)
"""


def _work(cpus: list[int | None], seconds: float) -> list[int]:
    """Run one loop per entry of ``cpus`` at once (pinned to it when not None); their counts."""
    procs = []
    for cpu in cpus:
        pin = (lambda c=cpu: os.sched_setaffinity(0, {c})) if cpu is not None else None
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _LOOP, str(seconds)], stdout=subprocess.PIPE, text=True, preexec_fn=pin
            )
        )
    counts = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise RuntimeError("a CPU loop did not finish") from None
        counts.append(int(out))
    return counts


def measure(seconds: float = 1.0, rounds: int = 3) -> tuple[float, float] | None:
    """(median ratio of the pair's work to one process's, the lowest ratio) over ``rounds``; None
    with fewer than two usable CPUs. Raises RuntimeError when a loop does not finish."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    a, b = cpus[0], cpus[1]
    ratios = []
    for _ in range(rounds):
        one = _work([a], seconds)[0]
        two = sum(_work([a, b], seconds))
        ratios.append(two / max(one, 1))
    return statistics.median(ratios), min(ratios)


def line(seconds: float = 1.0, rounds: int = 3, quick: bool = False) -> str:
    """One printable line: the machine's 2-process ceiling (never raises: a failure is said).
    ``quick`` (a benchmark's ``--quick``): one round of 0.3 s instead."""
    if quick:
        seconds, rounds = 0.3, 1
    try:
        m = measure(seconds, rounds)
    except (RuntimeError, OSError, ValueError) as e:
        return f"this machine's ceiling for 2 processes vs 1: not measured ({e})"
    if m is None:
        return "this machine's ceiling for 2 processes vs 1: not measured (fewer than two CPUs)"
    return (
        f"this machine's ceiling for 2 processes vs 1 (two CPU-bound Python loops, one per CPU, against one "
        f"alone; no I/O): {m[0]:.2f}x (lowest of {rounds}: {m[1]:.2f}x)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="length of each loop (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, median kept (default 3)")
    args = ap.parse_args()
    print(line(args.seconds, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
