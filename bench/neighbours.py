"""CPU time that other work took on a shared machine while a measurement ran.

    python -m bench.neighbours SCRIPT_PID CONTAINER_ID...   # full ids: docker ps --no-trunc

prints the CPU seconds the machine has been busy so far (the hypervisor's steal
included), less what belongs to the
measurement: the given Docker containers (their control groups count processes that have
ended too), Docker's own daemons and proxies, and the children that the measuring script
(SCRIPT_PID) has waited for, such as wrk. The difference of two readings, divided by the
time between them, is how many cores other work used meanwhile: a scaling figure measured
while neighbours took a core says more about them than about the service.
"""

import os
import sys
from pathlib import Path

from bench.processes import stat_fields

# Docker's processes on the host: the daemon, containerd and its shims, the port proxies.
DOCKER_COMMANDS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")
DOCKER_PROXY = "docker-proxy"
# Where a container's CPU time is kept, for cgroup v1 and v2 (cgroupfs or systemd driver).
CONTAINER_CPU_FILES = (
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", 1e-9),
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", 1e-6),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", 1e-6),
)
TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time of all cores that was neither idle nor waiting: spent here, or taken by the
    hypervisor for other machines (steal), which is work of others too."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def container_cpu_seconds(container_id: str) -> float:
    for pattern, unit in CONTAINER_CPU_FILES:
        path = Path(pattern.format(id=container_id))
        if path.exists():
            text = path.read_text()
            if path.name == "cpu.stat":  # "usage_usec N" on its first line
                text = text.split()[1]
            return int(text) * unit
    raise FileNotFoundError(f"no CPU accounting found for container {container_id}")


def docker_daemons_cpu_seconds() -> float:
    total = 0
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            command = (process / "comm").read_text().strip()
        except OSError:
            continue
        if command in DOCKER_COMMANDS or command == DOCKER_PROXY:
            fields = stat_fields(int(process.name))
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # user and system time
    return total / TICKS


def waited_children_cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return (int(fields[13]) + int(fields[14])) / TICKS  # children's user and system time


def others_cpu_seconds(script_pid: int, container_ids: list[str]) -> float:
    ours = (
        sum(container_cpu_seconds(container) for container in container_ids)
        + docker_daemons_cpu_seconds()
        + waited_children_cpu_seconds(script_pid)
    )
    return machine_busy_seconds() - ours


if __name__ == "__main__":
    script, *containers = sys.argv[1:]  # containers by their full ids
    print(f"{others_cpu_seconds(int(script), containers):.3f}")
