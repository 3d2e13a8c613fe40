"""CPU time and memory of processes, read from /proc (Linux)."""

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the state on (field 3)


def cpu_s(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of `pid` (all its threads); with `reaped`, plus the CPU of
    the children it has waited for."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` (a server: one process, its threads included)."""
    return cpu_s(pid)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


@dataclass(frozen=True)
class ProcessCpu:
    """A PostgreSQL server: its postmaster, the backends alive now and those it reaped."""

    postmaster: int

    @classmethod
    def of_postgres(cls, data_dir: Path) -> "ProcessCpu":
        pid_file = data_dir / "postgres" / "postmaster.pid"
        return cls(int(pid_file.read_text().splitlines()[0]))

    def cpu_s(self) -> float:
        total = cpu_s(self.postmaster, reaped=True)
        for child in children(self.postmaster):
            try:
                total += cpu_s(child)
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited meanwhile: counted in the postmaster's reaped time
        return total

    def rss_mb(self) -> float:
        """Sum of RSS of every process (shared buffers are counted once per process that
        touched them: an upper bound)."""
        total = rss_mb(self.postmaster)
        for child in children(self.postmaster):
            try:
                total += rss_mb(child)
            except (FileNotFoundError, ProcessLookupError):
                continue
        return total
