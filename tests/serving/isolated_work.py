"""Work for the isolation tests to run in a limited process: importing it costs nothing, so
the limits measure the work alone."""

import time


def burn_cpu(seconds: float) -> str:
    """Busy for `seconds` of CPU time, as a decoder stuck in a costly file would be."""
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass
    return "done"


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))
