"""The benchmarks run (``--quick``) and print their figures; no thresholds, figures are not tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import go_build  # noqa: E402

try:
    import uvloop  # noqa: F401

    LOOPS = ["asyncio", "uvloop"]
except ImportError:
    LOOPS = ["asyncio"]

CAN_HAVE_GO = go_build.find_go(install=False) is not None or (hasattr(os, "geteuid") and os.geteuid() == 0)
needs_go = pytest.mark.skipif(not CAN_HAVE_GO, reason="no Go toolchain and not root to install golang-go")
PY_SERVERS = ("ergopy", "ergopy-direct", "aiohttp", "aiohttp-batched", "picows")


@pytest.mark.parametrize("loop", LOOPS)
def test_local_messaging_quick_runs(loop: str) -> None:
    script = str(ROOT / "benchmarks" / "local_messaging.py")
    out = subprocess.run(
        [sys.executable, script, "--quick", "--no-pykka", "--cpu", "-1", "--loop", loop],
        capture_output=True,
        text=True,
        timeout=120,  # the first run may build (or try to build) benchmarks/go/ergo_local
        check=True,
    ).stdout
    assert f"loop={loop}" in out
    assert "sender -> receiver" in out
    assert "ping-pong (tell)" in out
    assert "targets" in out
    # Ergo beside ergopy: measured when ergo_local was built, else said so with the labelled reference
    if go_build.build("ergo_local").ok:
        assert re.search(r"ergopy / ergo: one-way \d+\.\d\dx, ping-pong \d+\.\d\dx", out), out
    else:
        assert "ergo (Go): not available" in out
        assert "not measured here" in out


@needs_go
def test_go_build_caches_binaries_and_remembers_a_refused_build() -> None:
    first = go_build.build("loadclient")
    assert first.ok, first.note
    again = go_build.build("loadclient")
    assert again.note == "cached" and again.path == first.path
    assert first.path is not None and first.path.parent == ROOT / ".cache" / "go-bin"
    ergo = go_build.build("ergo_echo")
    if not ergo.ok:  # tried once: the failure is cached beside where the binary would be
        assert ergo.note.startswith("not available")
        assert list((ROOT / ".cache" / "go-bin").glob("ergo_echo-*.failed"))
        assert go_build.build("ergo_echo").note == ergo.note


def _section(out: str, title: str) -> str:
    start = out.index(title)
    end = out.find("\n\n", start)
    return out[start : end if end >= 0 else len(out)]


@needs_go
def test_ws_echo_quick_drives_every_server_with_the_go_load_client() -> None:
    script = str(ROOT / "benchmarks" / "ws_echo.py")
    proc = subprocess.run([sys.executable, script, "--quick"], capture_output=True, text=True, timeout=300, check=True)
    out = proc.stdout
    number = r"\s+[\d,]+\s+\d+\.\d\d"  # msgs/s then the ratio to gorilla
    titles = ("50 connections x 16 in flight", "1,000 connections x 1 in flight, 64", "1 connection x 1 in flight",
              "4 KiB binary", "permessage-deflate")  # fmt: skip
    for title in titles:
        table = _section(out, title)
        for server in ("gorilla", *PY_SERVERS):
            if "permessage-deflate" in title and server in ("aiohttp-batched", "picows"):
                assert re.search(rf"^\s+{server}\s+not run", table, re.M), table
                continue
            assert re.search(rf"^\s+{re.escape(server)}{number}", table, re.M), f"{server} in\n{table}"
        if go_build.build("ergo_echo").ok:
            assert re.search(rf"^\s+ergo{number}", table, re.M), table
        else:
            assert re.search(r"^\s+ergo\s+not available: ", table, re.M), table
    # without Ergo built, its figures are the reference, labelled as not measured
    if not go_build.build("ergo_echo").ok:
        assert re.search(r"Ergo \(reference\)\s+[\d,]+\s+0\.93\s+1\.00\s+issue 12's table", out), out
        assert "not measured here" in out
    memory = _section(out, "idle memory per connection, server RSS")
    for server in ("gorilla", *PY_SERVERS):
        assert re.search(rf"^\s+{re.escape(server)}\s+-?\d+\.\d\s+-?\d+\.\d$", memory, re.M), f"{server} in\n{memory}"
    _check_nodes_section(out)


def _check_nodes_section(out: str) -> None:
    """2 nodes vs 1 node: both ergopy rows and gorilla GOMAXPROCS=2 measured, the ratio printed,
    the pinning said, Ergo labelled as not measured when it could not be built, idle memory of both."""
    assert "2 nodes vs 1 node: 1,000 connections x 1 in flight" in out, out
    assert "node 1 on core 0, node 2 on core 1, client not pinned" in out or "nothing pinned" in out, out
    table = out[out.index("nodes round 1/1 done") :]
    # msgs/s, x1 node, xceiling, p50, p99, CPUs, CPU per message
    row = r"\s+[\d,]+\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\s+\d+\s+\d+%\s+\d+%\s+\d+\.\d\s+\d+\.\d"
    assert re.search(rf"^\s+ergopy 1 node{row}$", table, re.M), table
    for how in ("pinned", "unpinned"):
        two = rf"^\s+ergopy 2 nodes {how}{row}\s+fewest connections on one node: \d+%$"
        assert re.search(two, table, re.M), table
        ratio = rf"2 nodes {how} / 1 node: \d+\.\d\dx \(issue 11's target >= 1\.7x: (met|NOT met)\)"
        bound = r"\n    the most two busy cores allow at these costs: 2 x \d+\.\d us \(1 node\) / "
        assert re.search(ratio + bound + r"\(\d+\.\d \+ \d+\.\d us .*\)\) = \d+\.\d\dx", table), table
    assert re.search(rf"^\s+gorilla GOMAXPROCS=2{row}$", table, re.M), table
    if not go_build.build("ergo_echo").ok:
        assert re.search(r"^\s+ergo GOMAXPROCS=2\s+not available: ", table, re.M), table
        assert "GOMAXPROCS=2: no reference figure exists, not measured here" in table
    memory = _section(out, "idle memory per connection, ergopy 1 node vs 2 nodes")
    for label in ("ergopy 1 node", "ergopy 2 nodes"):
        assert re.search(rf"^\s+{label}\s+-?\d+\.\d\s+-?\d+\.\d$", memory, re.M), f"{label} in\n{memory}"


@needs_go
def test_ws_memory_runs_and_prints_the_allocations_per_connection() -> None:
    script = str(ROOT / "benchmarks" / "ws_memory.py")
    out = subprocess.run(
        [sys.executable, script, "100", "--top", "5"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "100 idle connections: traced" in out
    assert "caused by" in out


@pytest.mark.parametrize("loop", LOOPS)
def test_net_messaging_quick_runs_two_node_processes(loop: str) -> None:
    script = str(ROOT / "benchmarks" / "net_messaging.py")
    out = subprocess.run(
        [sys.executable, script, "--quick", "--loop", loop],
        capture_output=True,
        text=True,
        timeout=300,  # the first run may build (or try to build) benchmarks/go/ergo_net
        check=True,
    ).stdout
    assert f"loop={loop}" in out
    row = r"\s+\d+\.\d k/s\s+\d+us\s+\d+us\s+[\d,]+\s+\d\.\d{3}x"  # one-way, p50, p99, calls/s, ratio
    assert re.search(r"py local\s+[\d.]+ [Mk]/s", out), out
    assert re.search(r"py->py" + row, out), out
    assert re.search(r"py->py / py local: one-way \d\.\d{3}x, call p50 [\d.]+x", out), out
    if go_build.build("ergo_net").ok:
        assert re.search(r"ratios to go->go: py->py one-way >= 0\.3x go->go: \d+\.\d\dx", out), out
    else:
        assert "ergo (Go): not available" in out
        assert "ratios to go->go: pending" in out


def test_soak_short_run_loses_nothing_silently() -> None:
    """A 15 s soak with 100 connections and crashing workers: the script's own verdict."""
    script = str(ROOT / "benchmarks" / "soak.py")
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--connections", "100", "--crash", "0.002"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "lost silently: 0" in proc.stdout and "left behind: nothing" in proc.stdout
    assert proc.stdout.rstrip().endswith("PASS")


def test_chat_fanout_throughput_quick_compares_one_node_with_two() -> None:
    """Throughput mode: a sweep of offered rates on 1 node and on 2 nodes (when the chat has its
    cluster), the highest passing lines/s of each and their ratio (or why it is not determined)."""
    from ergopy.examples.chat import ChatOptions

    script = str(ROOT / "benchmarks" / "chat_fanout.py")
    cmd = [sys.executable, script, "--quick", "--part", "throughput"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "N = 200 members" not in out  # the fan-out part is not run
    table = _section(out, "throughput: 300 members in one room")
    assert "p99 of the latency per member (line sent -> read by a member) is <= 500 ms" in table
    # lines/s, frames/s, p50, p99, to-last p99, CPUs, CPU per line
    row = r"\s+\d+\.\d\s+[\d,]+\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\s+\d+%\s+\d+%\s+\d+\.\d\s+\d+\.\d"
    assert re.search(rf"^  1 node {row}", table, re.M), table
    assert re.search(r"^\s+1 node, step 1: .* (ok|FAIL: .+)$", out, re.M), out
    # the 1-node sweep once more after the 2-node one (its ratio is to the mean of the two around it)
    assert re.search(rf"^  1 node, again{row}", table, re.M), table
    assert out.index("1 node, again, step 1:") > out.index("2 nodes unpinned, step 1:"), out
    assert "sweep 3" not in out  # one sweep of several nodes: two 1-node sweeps around it
    assert not re.search(r"^\s+2 nodes pinned", out, re.M)  # --quick: the nodes as the launcher runs them, only
    for how in ("unpinned",):
        label = f"2 nodes {how}"
        if "cluster" in ChatOptions.__dataclass_fields__:
            assert re.search(rf"^  {label}{row}", table, re.M), table
            sockets = rf"{label}: sockets per node \(members, listening and node links\): [\d,]+ / [\d,]+"
            assert re.search(sockets, out), out
            measured = r"\d+\.\d\dx lines/s at p99 <= 500 ms \(issue 11's target >= 1\.6x: (NOT )?met\)"
            if (os.cpu_count() or 1) <= 2:  # 2 nodes share every core with the members: the bound they allow
                measured += (
                    r"\n    the most \d+ busy cores allow at these costs: \d+ x \d+\.\d ms/line "
                    r"\(1 node, the sweeps around it\) / \(\d+\.\d \+ \d+\.\d ms/line "
                    r"\(2 nodes \+ the members on the same cores\)\) = \d+\.\d\dx"
                )
            assert re.search(rf"{label} / 1 node: ({measured}|not determined)", table), table
        else:
            assert re.search(rf"^  {label}\s+not available: ChatOptions has no cluster", table, re.M), table


def test_ws_hop_prints_the_three_sets_and_the_hops_cost() -> None:
    """ws_hop drives the real server code on stand-in transports: every set must echo every
    frame (a round waits for each write, so a lost echo fails the run by its timeout)."""
    script = str(ROOT / "benchmarks" / "ws_hop.py")
    out = subprocess.run(
        [sys.executable, script, "--quick", "--cpu", "-1"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    figures = {}
    for name in ("ergopy", "no actor hop", "engine alone"):
        m = re.search(rf"^  {name} +([0-9.]+) +([0-9.]+)   ", out, re.M)
        assert m is not None, out
        figures[name] = float(m.group(1))
        assert figures[name] > 0, out
    assert re.search(r"the actor hop \(connection -> worker -> send_alias -> connection\): -?[0-9.]+ us", out), out


def test_cpu_scaling_prints_the_ratio_of_two_busy_processes_to_one() -> None:
    """The machine's own 2-process ceiling, printed beside issue 11's node ratios: a ratio when
    there are two CPUs, else why not. Its value is not checked beyond being a positive figure:
    in 0.2 s windows this virtual machine gave anything from 0.98x to 2.57x."""
    script = str(ROOT / "benchmarks" / "cpu_scaling.py")
    out = subprocess.run(
        [sys.executable, script, "--seconds", "0.2", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    if len(os.sched_getaffinity(0)) < 2:
        assert "not measured (fewer than two CPUs)" in out
        return
    m = re.search(r"against one alone; no I/O\): ([0-9.]+)x", out)
    assert m is not None, out
    assert float(m.group(1)) > 0, out


def test_chat_fanout_prints_the_ratio_two_shared_cores_allow(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Beside each 2-node ratio, the most that cores shared with the members allow at the CPU per
    line measured: cores x 1 node's ms/line (the sweeps around it) / (2 nodes' + the members').
    Figures of a clean run (run E): 1 node 64.0 and 58.7 lines/s at one core, 2 nodes 90.5 at 163%
    with the members at 35%: 1.48x measured against 1.49x allowed."""
    import argparse

    import chat_fanout

    def step(rate: float, node_cpu: float, client_cpu: float, ok: bool = True) -> Any:
        return chat_fanout.StepResult(
            rate, 1, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0, node_cpu, client_cpu, "" if ok else "p99 too high"
        )

    def sweep(rate: float, node_cpu: float, client_cpu: float) -> tuple[list[Any], float]:
        return [step(rate, node_cpu, client_cpu), step(rate * 1.1, node_cpu, client_cpu, ok=False)], 0.0

    runs = {
        "1 node": sweep(64.0, 1.00, 0.22),
        "2 nodes pinned": sweep(90.5, 1.63, 0.35),
        "1 node, again": sweep(58.7, 1.00, 0.16),
    }
    monkeypatch.setattr(chat_fanout.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(chat_fanout.cpu_scaling, "line", lambda quick: "ceiling")
    args = argparse.Namespace(
        members=5000,
        senders=10,
        step_seconds=20.0,
        bound=500.0,
        members_binary="x",
        server_cpu=0,
        client_cpu=1,
        quick=False,
    )
    chat_fanout.throughput_report(runs, args)
    out = capsys.readouterr().out
    assert "  2 nodes pinned / 1 node: 1.48x lines/s at p99 <= 500 ms (issue 11's target >= 1.6x: NOT met)\n" in out
    one = (1000 / 64.0 * 1000 / 58.7) ** 0.5  # ms/line of the two 1-node sweeps, geometric mean: 16.3
    allowed = 2 * one / (1.63 / 90.5 * 1e3 + 0.35 / 90.5 * 1e3)
    assert f"{allowed:.2f}" == "1.49"
    assert (
        "    the most 2 busy cores allow at these costs: 2 x 16.3 ms/line (1 node, the sweeps around it) / "
        "(18.0 + 3.9 ms/line (2 nodes + the members on the same cores)) = 1.49x\n"
    ) in out
