"""A child process's stdout read line by line, each read with a timeout (the child may hang: we do not).

Shared by the benchmarks that drive servers and clients in child processes
(``ws_echo.py``, ``chat_fanout.py``).
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any


class Lines:
    """Line reader over ``proc``'s stdout pipe; ``label`` names the child in the errors
    (default: the name of its program)."""

    def __init__(self, proc: subprocess.Popen[Any], label: str | None = None) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.label = label if label is not None else Path(str(proc.args[0])).name  # type: ignore[index]
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def readline(self, timeout: float) -> str:
        """The next line, stripped. Raises ``TimeoutError`` after ``timeout`` seconds without
        one, ``EOFError`` when the child has closed its stdout (it exited)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line from {self.label} in {timeout:g} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError(f"{self.label} exited ({self.proc.wait()})")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()
