"""What the stack test counts as other work on a shared machine: the machine's busy time
less the children the test waited for (wrk), its containers and Docker's daemons."""

import os
import subprocess
import sys

import pytest

from bench.neighbours import (
    container_cpu_seconds,
    machine_busy_seconds,
    others_cpu_seconds,
    waited_children_cpu_seconds,
)

BURN_SECONDS = 0.3
BURN = f"import time\nend = time.process_time() + {BURN_SECONDS}\n" + (
    "while time.process_time() < end:\n    pass\n"
)


def test_a_child_waited_for_counts_as_the_measurements_own() -> None:
    before = waited_children_cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", BURN], check=True)
    # Clock ticks are hundredths of a second.
    assert waited_children_cpu_seconds(os.getpid()) - before >= BURN_SECONDS - 0.01


def test_other_work_is_the_rest_of_the_machines_busy_time() -> None:
    assert 0 <= others_cpu_seconds(os.getpid(), []) <= machine_busy_seconds()


def test_an_unknown_container_is_an_error() -> None:
    with pytest.raises(FileNotFoundError, match="no CPU accounting"):
        container_cpu_seconds("0" * 64)
