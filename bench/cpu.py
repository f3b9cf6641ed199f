"""CPU time from /proc: of a process, of the whole machine, of every process of a user (the
database and broker servers), for the benchmarks that say what a phase cost besides how fast
it went."""

import os
import pwd
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    total = sum(ticks[:8])
    idle = ticks[3] + ticks[4]
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


def cpu_by_owner(owners: tuple[str, ...]) -> dict[str, dict[int, float]]:
    """CPU seconds of every live process of each of these users (PostgreSQL, RabbitMQ)."""
    uids = {}
    for owner in owners:
        try:
            uids[pwd.getpwnam(owner).pw_uid] = owner
        except KeyError:
            continue
    found: dict[str, dict[int, float]] = {owner: {} for owner in owners}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid in uids:
                found[uids[entry.stat().st_uid]][int(entry.name)] = cpu_seconds(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return found
