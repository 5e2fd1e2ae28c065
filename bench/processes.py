"""A server's processes as /proc shows them: its workers, the processes they started, their
memory and CPU time."""

import os
import re
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None once the
    process has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [child for child in pids if (stat_fields(child) or [0, 0])[1] == str(pid)]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants: workers, the decoders' fork server, decoders."""
    tree, unvisited = [], [pid]
    while unvisited:
        process = unvisited.pop()
        tree.append(process)
        unvisited.extend(children(process))
    return tree


def is_multiprocessing_helper(pid: int) -> bool:
    """The fork server that isolated decoding starts, or multiprocessing's resource tracker."""
    try:
        return b"from multiprocessing." in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def server_processes(pid: int) -> list[int]:
    """The processes that serve requests: the server itself, or a supervisor's workers."""
    workers = [child for child in children(pid) if not is_multiprocessing_helper(child)]
    return workers or [pid]


def resident_mb(pid: int) -> float:
    """Resident memory; 0 once the process has ended (a zombie has none)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    resident = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(resident.group(1)) / 1024 if resident else 0.0


def tree_resident_mb(pid: int) -> float:
    """Resident memory of the whole tree (pages shared between processes count each time:
    an upper bound)."""
    return sum(resident_mb(process) for process in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a server and all its descendants."""
    ticks = 0
    for process in process_tree(pid):
        fields = stat_fields(process)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # user and system time
    return ticks / os.sysconf("SC_CLK_TCK")
