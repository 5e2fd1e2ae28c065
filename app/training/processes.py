"""Work spread over worker processes, for the training side's drawing and rendering."""

import multiprocessing
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def mapped(
    function: Callable[[Item], Result], items: Sequence[Item], workers: int, chunksize: int = 1
) -> list[Result]:
    """`function` of every item, in order: here with one worker, else in `workers` processes
    (`function` must be importable by them)."""
    if workers <= 1:
        return [function(item) for item in items]
    # Spawned, not forked: the parent may already hold TensorFlow's threads.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(function, items, chunksize=chunksize)
