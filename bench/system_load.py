"""What the machine was doing while a benchmark measured (shared by the scripts in bench/): its CPU, and
how many cores the benchmark's own processes and everything else kept busy, from /proc (Linux).

Not a script: `bench/real_stage.py` and `bench/node_rate.py` import it.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict:
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version()}


def process_ticks(pid: int | str) -> int:
    """User + system CPU clock ticks of a process so far (all its threads); 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def system_ticks() -> tuple[int, int]:
    """Busy and total CPU clock ticks of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuMeter:
    """Cores kept busy between `start()` and `stop()`: by each process named, and by every other one."""

    def __init__(self, pids: dict[str, int | str]) -> None:
        self.pids = pids
        self.loadavg: list[float] = []

    def _sample(self) -> tuple[int, int, dict[str, int]]:
        busy, total = system_ticks()
        return busy, total, {name: process_ticks(pid) for name, pid in self.pids.items()}

    def start(self) -> None:
        self.first = self._sample()
        self.started = time.monotonic()
        self.tick()

    def tick(self) -> None:
        self.loadavg.append(round(os.getloadavg()[0], 2))

    def stop(self) -> dict:
        self.tick()
        busy, total, ours = self._sample()
        busy -= self.first[0]
        total = max(total - self.first[1], 1)
        cores = os.cpu_count() or 1
        mine = {name: (ticks - self.first[2][name]) / total * cores for name, ticks in ours.items()}
        return {
            "seconds": round(time.monotonic() - self.started, 1),
            "cores_busy_total": round(busy / total * cores, 2),
            "cores_busy_by": {name: round(value, 2) for name, value in mine.items()},
            "cores_busy_other_processes": round(max(busy / total * cores - sum(mine.values()), 0.0), 2),
            "loadavg_1min": {"min": min(self.loadavg), "max": max(self.loadavg), "samples": self.loadavg},
        }
