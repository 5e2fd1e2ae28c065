"""Preprocessing of untrusted images in fresh processes, under limits the kernel enforces.

A decoder runs in C: a thread cannot be stopped in the middle of one, and a thread's memory
is the server's. So every image that is not known to be cheap (see app.serving.image_files)
is preprocessed in a process of its own, forked from a server that has the preprocessing
modules loaded already (multiprocessing's forkserver: about 20 ms per image), limited to
`cpu_seconds` of CPU time (RLIMIT_CPU: the kernel stops it) and to `memory_mb` of address
space (RLIMIT_AS: allocations beyond fail). The process ends with the image, and its memory
with it. At most `slots` run at once; `queue` more requests may wait for one, for at most
QUEUE_WAIT_SECONDS; beyond that, 503 with Retry-After.
"""

import asyncio
import multiprocessing
import os
import resource
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from multiprocessing.connection import wait
from typing import TypeVar

from app.serving.image_files import png_header
from app.serving.preprocessing import (
    CostlyDecodingError,
    ImageTooLargeError,
    Limits,
    check_format,
)

T = TypeVar("T")
# Canvas exports up to this many pixels (the page's 560x560 pad, its 1120x400 number pad)
# are processed on the event loop.
INLINE_MAX_PIXELS = 1280 * 480
QUEUE_WAIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 1


class ServiceBusyError(Exception):
    """Every slot is taken and the queue is full: the client should retry shortly (503)."""

    status_code = 503
    retry_after = RETRY_AFTER_SECONDS
    reason = "busy"


def limit_this_process(cpu_seconds: int, memory_mb: int) -> None:
    """In the fresh process, before the image: the limits its work runs under, and an end
    with the server process that asked for it (killed, it could not tell it to stop)."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    threading.Thread(target=exit_with_server, daemon=True).start()


def exit_with_server() -> None:
    """Wait for the server process to end, then end this one: an idle process waiting for
    its image would otherwise wait forever, and keep the fork server alive with it."""
    wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def within_memory_limit(function: Callable[..., T], *arguments: object) -> T:
    """`function(*arguments)`, its running out of the allowed memory a client error."""
    try:
        return function(*arguments)
    except MemoryError:
        raise ImageTooLargeError("the image needs more memory to decode than allowed") from None


def runs_inline(data: bytes) -> bool:
    """Whether `IsolatedPreprocessing.process` works on `data` on the event loop: a canvas
    export, whose decoding costs what its size says."""
    header = png_header(data)
    return header is not None and header.is_canvas_export(INLINE_MAX_PIXELS)


class IsolatedPreprocessing:
    """`await run(function, image, limits)` in a fresh limited process per image."""

    def __init__(self, slots: int, queue: int, cpu_seconds: int, memory_mb: int) -> None:
        self.context = multiprocessing.get_context("forkserver")
        # Imported once by the fork server, not once per image; the fork server itself is
        # started now, beside the server's start-up, not by the first photo (0.5 s).
        self.context.set_forkserver_preload(["app.serving.isolation", "app.serving.segmentation"])
        threading.Thread(target=forkserver.ensure_running, daemon=True).start()
        self.limits = (cpu_seconds, memory_mb)
        self.queue_limit = queue
        self.waiting = 0
        self.idle: asyncio.Queue[ProcessPoolExecutor] = asyncio.Queue()
        for _ in range(slots):
            self.idle.put_nowait(self.new_slot())

    def new_slot(self) -> ProcessPoolExecutor:
        # One process per executor: a process the kernel stops breaks its executor, and
        # with one per slot nothing else fails with it.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=self.context,
            initializer=limit_this_process,
            initargs=self.limits,
            max_tasks_per_child=1,
        )

    async def process(self, work: Callable[[bytes, Limits], T], data: bytes, limits: Limits) -> T:
        """`work(data, limits)`: on the event loop for a canvas export (a millisecond or two,
        less than a process costs), in a fresh limited process for anything else."""
        check_format(data)  # bytes of no image format are refused here, without a process
        if runs_inline(data):
            return work(data, limits)
        return await self.run(work, data, limits)

    async def run(self, function: Callable[..., T], *arguments: object) -> T:
        """`function(*arguments)` in a fresh limited process; a CostlyDecodingError if the
        kernel had to stop it."""
        slot = await self.take_slot()
        try:
            # Submitting may start the slot's process (a round trip to the fork server): not
            # on the event loop.
            submitted = await asyncio.to_thread(
                slot.submit, within_memory_limit, function, *arguments
            )
            return await asyncio.wrap_future(submitted)
        except BrokenProcessPool:
            slot.shutdown(wait=False)
            slot = self.new_slot()
            cpu_seconds, memory_mb = self.limits
            raise CostlyDecodingError(
                f"the image could not be decoded within {cpu_seconds} s of CPU time and "
                f"{memory_mb} MB of memory"
            ) from None
        finally:
            self.idle.put_nowait(slot)

    async def take_slot(self) -> ProcessPoolExecutor:
        if self.idle.empty() and self.waiting >= self.queue_limit:
            raise ServiceBusyError("the server is busy decoding other images; retry shortly")
        self.waiting += 1
        try:
            async with asyncio.timeout(QUEUE_WAIT_SECONDS):
                return await self.idle.get()
        except TimeoutError:
            raise ServiceBusyError(
                "the server is busy decoding other images; retry shortly"
            ) from None
        finally:
            self.waiting -= 1

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().shutdown()
