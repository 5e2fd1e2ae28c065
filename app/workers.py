"""Several server processes on one port, each accepting on a listening socket of its own.

uvicorn's supervisor hands one socket to all its workers. Whichever worker wakes first then
accepts every connection waiting, so the keep-alive connections a client opens together all
land on one worker: 8 connections to 2 workers measured 0.91x the throughput of 1 worker.
With a socket per worker (SO_REUSEPORT) the kernel spreads connections over the workers by
a hash of their addresses: 1.75x in the same measurement. The price: connections still
queued at a worker that crashes are reset with it, where a shared socket would keep them.
"""

import logging
import multiprocessing
import signal
import socket
import threading
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger("uvicorn.error")
# A fresh interpreter per worker, as uvicorn's supervisor uses: forking a parent that holds
# threads or sockets is unsafe, and workers load the model themselves anyway.
SPAWN = multiprocessing.get_context("spawn")
# How often the supervisor looks for workers that died.
CHECK_INTERVAL_SECONDS = 0.5
# After SIGTERM, uvicorn's graceful shutdown gets this much beyond its own timeout.
STOP_MARGIN_SECONDS = 5


def address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def worker_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port beside the other workers' sockets, not yet listening.

    uvicorn starts listening on it once the application has started: the kernel sends no
    connection to a worker that is still loading the model, as it would to a socket that
    listened from the start (a replacement worker takes seconds to load TensorFlow).
    """
    # The protocol is named, not left 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the listener says IPPROTO_TCP; without it every keep-alive request waits ~40 ms on
    # the client's delayed ACK (uvicorn #3149).
    bound = socket.socket(address_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bound.bind((host, port))
    except OSError:
        bound.close()
        raise
    return bound


def serve_worker(config: uvicorn.Config) -> None:
    """A worker process: its own socket, then uvicorn's server until SIGTERM or SIGINT."""
    config.configure_logging()
    try:
        bound = worker_socket(config.host, config.port)
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", config.host, config.port, error)
        raise SystemExit(STARTUP_FAILURE) from None
    uvicorn.Server(config).run(sockets=[bound])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port: sockets that share a port with SO_REUSEPORT
    refuse one that does not ask to share, so a server already there is found."""
    with socket.socket(address_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class WorkerPool:
    """Starts `config.workers` worker processes, replaces any that dies, and stops them all
    gracefully on SIGTERM or SIGINT."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.should_exit = threading.Event()

    def start_worker(self) -> multiprocessing.process.BaseProcess:
        worker = SPAWN.Process(target=serve_worker, args=(self.config,), name="worker")
        worker.start()
        return worker

    def handle_exit(self, signum: int, frame: FrameType | None) -> None:
        self.should_exit.set()

    def run(self) -> int:
        """Serve until told to stop; the exit status is uvicorn's for a failed start-up."""
        config = self.config
        if not port_is_free(config.host, config.port):
            logger.error("cannot listen on %s:%d: the address is in use", config.host, config.port)
            return STARTUP_FAILURE
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.handle_exit)
        logger.info(
            "Uvicorn running on http://%s:%d with %d workers (Press CTRL+C to quit)",
            config.host,
            config.port,
            config.workers,
        )
        self.workers = [self.start_worker() for _ in range(config.workers)]
        status = 0
        while not self.should_exit.wait(CHECK_INTERVAL_SECONDS):
            status = self.replace_dead_workers()
        self.stop_workers()
        return status

    def replace_dead_workers(self) -> int:
        """Start a new worker for each that died; a start-up failure stops them all, as the
        next worker would fail the same way."""
        for index, worker in enumerate(self.workers):
            if worker.is_alive():
                continue
            if worker.exitcode == STARTUP_FAILURE:
                logger.error("worker [%d] failed to start; stopping", worker.pid)
                self.should_exit.set()
                return STARTUP_FAILURE
            logger.warning(
                "worker [%d] died (exit code %s); starting another", worker.pid, worker.exitcode
            )
            self.workers[index] = self.start_worker()
        return 0

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        grace = (self.config.timeout_graceful_shutdown or 0) + STOP_MARGIN_SECONDS
        for worker in self.workers:
            worker.join(grace)
            if worker.is_alive():
                logger.warning("worker [%d] did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join()
