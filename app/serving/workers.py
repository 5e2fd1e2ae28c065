"""Several server processes on one port: gunicorn's arbiter with uvicorn's worker.

Each worker listens on a socket of its own: with `reuse_port`, gunicorn binds the
listening sockets in each worker after the fork (its `Arbiter.spawn_worker`), and the kernel
spreads connections over them by a hash of their addresses. With one shared socket,
whichever worker wakes first accepts every waiting connection, so the keep-alive connections
a client opens together all land on one worker (8 connections to 2 workers measured 0.91x
the throughput of 1 worker; 1.75x with a socket per worker). The price: connections still
queued at a worker that crashes are reset with it.

Gunicorn restarts workers that die, stops when one cannot start (exit status 3), and handles
SIGTERM (graceful stop), SIGINT and SIGQUIT (quick stop), SIGHUP (new workers replace the old
ones gracefully), SIGTTIN and SIGTTOU (one worker more or less). Added here: workers stop
when their supervisor is gone, even killed with SIGKILL, and a worker that keeps dying soon
after it started is restarted after a growing delay instead of at once.

The workers' metrics are added up from files in a fresh directory per start (see
app.serving.metrics); the gauges of a worker that exits leave the sum with it.
"""

import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.workers.base import Worker
from uvicorn.config import STARTUP_FAILURE
from uvicorn_worker import UvicornWorker

from app.serving.connections import (
    GRACEFUL_SHUTDOWN_SECONDS,
    address_family,
    url_host,
    uvicorn_options,
)
from app.serving.json_logs import log_config
from app.serving.settings import Settings

logger = logging.getLogger("uvicorn.error")

# How often a worker checks that its supervisor is still there.
PARENT_CHECK_SECONDS = 0.5
# A worker that dies within this time of its start counts as crash-looping: its replacement
# waits, first the shortest delay, then twice as long each time, up to the longest.
STABLE_WORKER_SECONDS = 10.0
SHORTEST_RESTART_DELAY = 1.0
LONGEST_RESTART_DELAY = 30.0


class ServingWorker(UvicornWorker):
    """uvicorn's worker for gunicorn, configured as `python -m app.serve` runs uvicorn alone,
    which stops when its supervisor is gone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by uvicorn_worker's own __init__ to configure uvicorn.
        self.CONFIG_KWARGS = uvicorn_options(Settings())
        super().__init__(*args, **kwargs)

    def run(self) -> None:
        threading.Thread(target=self.stop_when_orphaned, name="parent-watch", daemon=True).start()
        super().run()

    def handle_exit(self, sig: int, frame: object) -> None:
        """SIGQUIT, the arbiter's quick stop (after SIGINT): gunicorn's own handler only
        marks the worker as ending, and uvicorn would serve on until killed 10 s later."""
        os.kill(os.getpid(), signal.SIGTERM)

    def stop_when_orphaned(self) -> None:
        """SIGTERM to this worker once the supervisor that started it is gone: a killed
        supervisor would otherwise leave its workers serving, holding the port."""
        while os.getppid() == self.ppid:
            time.sleep(PARENT_CHECK_SECONDS)
        logger.warning("the supervisor [%d] is gone; stopping worker [%d]", self.ppid, self.pid)
        os.kill(os.getpid(), signal.SIGTERM)


class BackoffArbiter(Arbiter):
    """Gunicorn's arbiter, waiting longer and longer before replacing workers that keep dying
    soon after they started (a crash loop would otherwise fork a worker every second)."""

    def __init__(self, app: BaseApplication) -> None:
        super().__init__(app)
        self.restart_delay = 0.0
        self.spawn_not_before = 0.0
        self.retired: set[int] = set()  # workers this arbiter told to stop

    def kill_worker(self, pid: int, sig: int) -> None:
        # SIGABRT is the arbiter's timeout killing a hung worker: that one failed.
        if sig != signal.SIGABRT:
            self.retired.add(pid)
        super().kill_worker(pid, sig)

    def spawn_workers(self) -> None:
        if time.monotonic() >= self.spawn_not_before:
            super().spawn_workers()

    def note_start(self, worker: Worker) -> None:
        """Gunicorn's pre_fork hook."""
        worker.started_at = time.monotonic()

    def note_exit(self, worker: Worker) -> None:
        """A short life doubles the wait before the next start."""
        if worker.pid in self.retired:
            self.retired.discard(worker.pid)
            return
        lived = time.monotonic() - worker.started_at
        if lived >= STABLE_WORKER_SECONDS:
            self.restart_delay = 0.0
            return
        self.restart_delay = min(
            LONGEST_RESTART_DELAY, max(SHORTEST_RESTART_DELAY, 2 * self.restart_delay)
        )
        self.spawn_not_before = time.monotonic() + self.restart_delay
        self.log.warning(
            "Worker (pid:%s) died %.1f s after it started; the next start waits %.0f s",
            worker.pid,
            lived,
            self.restart_delay,
        )


def worker_exited(arbiter: BackoffArbiter, worker: Worker) -> None:
    """Gunicorn's child_exit hook."""
    arbiter.note_exit(worker)
    # Imported here, in the supervisor, only once PROMETHEUS_MULTIPROC_DIR is set (see
    # run_workers): prometheus_client decides where values live when it is first imported,
    # and the workers forked after inherit that decision.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)


class WorkerPool(BaseApplication):
    """`settings.workers` processes serving `app.main:app` on one port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        host = url_host(settings.host)
        text_logs = settings.log_format == "text"
        options = {
            "bind": [f"{host}:{port}" for port in settings.ports],
            "workers": settings.workers,
            "worker_class": f"{ServingWorker.__module__}.{ServingWorker.__name__}",
            "reuse_port": True,
            "graceful_timeout": GRACEFUL_SHUTDOWN_SECONDS,
            "loglevel": "debug" if settings.log_level == "trace" else settings.log_level,
            # uvicorn writes one access line per request at log level info, as when alone;
            # with JSON logs, the application writes it (app.serving.request_logs).
            "accesslog": "-"
            if text_logs and settings.log_level in ("info", "debug", "trace")
            else None,
            # gunicorn's own format for text; JSON for its lines and the workers' otherwise.
            "logconfig_dict": {} if text_logs else log_config(settings),
            # No control socket file: this server is run and stopped by signals only.
            "control_socket_disable": True,
            "proc_name": "digit-canvas",
            "pre_fork": lambda arbiter, worker: arbiter.note_start(worker),
            "child_exit": worker_exited,
        }
        for name, value in options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """The application, imported in each worker after the fork."""
        from app.main import app  # noqa: PLC0415 - the supervisor itself serves nothing

        return app

    def run(self) -> None:
        BackoffArbiter(self).run()


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port. (Workers bind with SO_REUSEPORT; a port taken
    by another server would make each of them fail and be restarted, forever.)"""
    with socket.socket(address_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextmanager
def fresh_metrics_directory() -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR for this start (one left by an earlier server would add its
    counts), removed when the supervisor ends. Not when a worker ends: a worker's exit
    unwinds through the supervisor's frames it was forked in, this one included."""
    directory = tempfile.mkdtemp(prefix="digit-canvas-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    supervisor = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == supervisor:
            shutil.rmtree(directory, ignore_errors=True)


def run_workers(settings: Settings) -> int:
    """Serve with several workers until told to stop; the exit status says how it ended."""
    for port in settings.ports:
        if not port_is_free(settings.host, port):
            logger.error("cannot listen on %s:%d: the address is in use", settings.host, port)
            return STARTUP_FAILURE
    try:
        with fresh_metrics_directory():
            WorkerPool(settings).run()
    except SystemExit as stopped:  # gunicorn's arbiter ends with sys.exit(status)
        return stopped.code if isinstance(stopped.code, int) else 1
    except HaltServer as halted:
        # Raised again, out of the arbiter's own shutdown, when a second worker fails to
        # boot while it stops the first: the same failure.
        logger.error("%s", halted.reason)
        return halted.exit_status
    return 0
