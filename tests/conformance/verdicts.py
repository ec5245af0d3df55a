#!/usr/bin/env python3
"""Judges an Autobahn|Testsuite report (the ``index.json`` wstest writes).

    python tests/conformance/verdicts.py reports/autobahn/server/index.json

Prints, per agent, one line per case group (``1.*``, ``12.*``...) with the count of each
verdict, then every case whose verdict is not OK. A case fails when its behaviour or its
close behaviour is FAILED; NON-STRICT and INFORMATIONAL are allowed (RFC 6455 permits
them, and timing can flip a case such as 4.1.5 between OK and NON-STRICT). wstest itself
exits 0 whatever the verdicts, so this is the judge: exit status 1 when any case failed.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    """One case's verdicts as the report gives them."""

    id: str
    behavior: str
    close: str
    close_code: int | None

    @property
    def failed(self) -> bool:
        return "FAILED" in (self.behavior, self.close)

    @property
    def group(self) -> str:
        return self.id.split(".")[0] + ".*"

    def order(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.id.split("."))


def read(index: Path) -> dict[str, list[Case]]:
    """Cases per agent, in case order. Raises OSError / ValueError on an unreadable report."""
    data: dict[str, dict[str, Any]] = json.loads(index.read_text())
    agents = {}
    for agent, results in data.items():
        cases = [Case(cid, r["behavior"], r["behaviorClose"], r.get("remoteCloseCode")) for cid, r in results.items()]
        agents[agent] = sorted(cases, key=Case.order)
    return agents


def report(agents: dict[str, list[Case]]) -> list[str]:
    """The summary's lines."""
    lines = []
    for agent, cases in agents.items():
        lines.append(f"agent {agent}: {len(cases)} cases")
        groups: dict[str, list[Case]] = {}
        for case in cases:
            groups.setdefault(case.group, []).append(case)
        for group, members in groups.items():
            counts = Counter(c.behavior for c in members)
            verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            lines.append(f"  {group:>5} {verdicts}")
            for c in members:
                if c.behavior != "OK" or c.close != "OK":
                    lines.append(f"        {c.id}: {c.behavior}, close {c.close} (code {c.close_code})")
    failed = [c for cases in agents.values() for c in cases if c.failed]
    lines.append(f"{len(failed)} failed" + (": " + " ".join(c.id for c in failed) if failed else ""))
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        agents = read(Path(argv[1]))
    except (OSError, ValueError, KeyError) as e:
        print(f"verdicts: cannot read {argv[1]}: {e}", file=sys.stderr)
        return 2
    print("\n".join(report(agents)))
    return 1 if any(c.failed for cases in agents.values() for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
