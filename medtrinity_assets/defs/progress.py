"""Progress of long steps in the run log (and so on the console of `medtrinity demo`)."""

from __future__ import annotations

import time
from typing import Any

PROGRESS_PREFIX = "progress "  # `medtrinity demo` prints run-log lines that start with this


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressLog:
    """`progress(done, total)` callback writing 'progress <what>: done/total <unit> (pct), rate/s, ETA'
    to a Dagster logger at most every `every_s` seconds, and always at the end."""

    def __init__(self, log: Any, what: str, unit: str = "chunks", every_s: float = 5.0) -> None:
        self.log, self.what, self.unit, self.every_s = log, what, unit, every_s
        self.start = time.perf_counter()
        self.last = float("-inf")

    def message(self, done: int, total: int, now: float) -> str:
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        pct = 100.0 * done / total if total else 100.0
        tail = f"ETA {duration(eta)}" if done < total else f"done in {duration(elapsed)}"
        return f"{PROGRESS_PREFIX}{self.what}: {done:,}/{total:,} {self.unit} ({pct:.0f}%), {rate:,.0f} {self.unit}/s, {tail}"

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done >= total or now - self.last >= self.every_s:
            self.last = now
            self.log.info(self.message(done, total, now))
