"""A progress display on stderr (standard library only): a bar redrawn in place on a terminal, a line
every 10% otherwise, nothing with quiet=True."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self.failed = 0
        self.stream = stream or sys.stderr
        self.quiet = quiet or self.total == 0
        self.tty = self.stream.isatty()
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_decile = -1

    def step(self, what: str = "", ok: bool = True) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if self.quiet:
                return
            if self.tty:
                width = 30
                filled = int(width * self.done / self.total) if self.total else width
                bar = "#" * filled + "." * (width - filled)
                msg = f"\r{self.label} [{bar}] {self.done}/{self.total} {what[:40]:<40}"
                self.stream.write(msg)
                self.stream.flush()
            else:
                decile = self.done * 10 // self.total if self.total else 10
                if decile != self._last_decile:
                    self._last_decile = decile
                    self.stream.write(f"{self.label}: {self.done}/{self.total}\n")

    def close(self) -> None:
        if self.quiet:
            return
        took = time.monotonic() - self._start
        end = "\n" if self.tty else ""
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"{end}{self.label}: {self.done}/{self.total} in {took:.2f} s{failed}\n")
        self.stream.flush()
