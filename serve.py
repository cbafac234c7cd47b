"""Serve 童护 with waitress in several processes per core, all taking connections from one listening socket.

A Python process runs the Python of one request at a time (the interpreter lock), so however many
threads waitress gives it, one process uses one core: under twenty users the requests queued behind
each other on one core while the other stood idle. Here the socket is opened once and each worker
process — forked from one built app, each opening its own database connections — runs waitress on it
with its threads; an idle worker takes the next connection. Everything the app keeps between requests
is in the database — sessions, login lockouts, the alert run's lease, the feedback link's rate
limit — so the workers need nothing from each other.

    python serve.py --host 127.0.0.1 --port 5000 [--workers N] [--threads N]

``--workers`` defaults to ``WEB_WORKERS``, else three per core (at most 12); ``--threads`` to
``WEB_THREADS``, else 2 (see ``WORKERS_PER_CORE`` for why). ``--workers 1`` serves in this process.
When a worker dies the others are stopped and serve.py exits with its status, for the service
manager (systemd's ``Restart=``) to start it again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys


def worker_pids(pid: int) -> list[int]:
    """The worker processes of the serve.py running as ``pid``, as Linux lists them in /proc (the load
    test sums their CPU time; the tests check that none outlives the server)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _app():
    """The app, built once before the workers are forked (they start at once, together: built in each
    worker, the first one ready took every connection waiting in the socket's queue, and a client's
    kept-alive connection stays with the worker that took it). No database connection is left open
    to be shared by the workers."""
    from app import create_app
    from models import db

    app = create_app()
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    return app


def _worker(app, sock: socket.socket, threads: int) -> None:
    from waitress import serve

    serve(app, sockets=[sock], threads=threads)


def _positive_env(name: str, default: int, what: str) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} 应为正整数（{what}），例如 2；现在是 {value!r}")
    return int(value)


# Three processes of two threads per core. Measured with `make loadtest`'s 20 users on two cores
# (page p95, runs of 2026-11-30): 2 processes × 8 threads 246–680 ms, 4 × 2 205–334, 4 × 4 192–235,
# 6 × 2 173–191, 6 × 1 169–250. The threads of one process take turns on the interpreter lock, so a
# heavy page (the 工作台) holds up every light one beside it; with more processes the kernel shares
# the cores between them instead. Two threads, not one, so that a slow client (a phone on a village
# road downloading a photo) does not stop its process answering anyone else.
# Each process takes ~40 MB of its own when idle (the app is built once, before the fork, and shared
# until written) and more under use: at most 12 unless WEB_WORKERS says otherwise.
WORKERS_PER_CORE = 3
MAX_DEFAULT_WORKERS = 12
THREADS = 2


def _default_workers() -> int:
    default = min(MAX_DEFAULT_WORKERS, WORKERS_PER_CORE * (os.cpu_count() or 1))
    return _positive_env("WEB_WORKERS", default, "工作进程数")


def _default_threads() -> int:
    return _positive_env("WEB_THREADS", THREADS, "每个工作进程的线程数")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="童护 under waitress, several processes per core")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=_default_workers())
    parser.add_argument("--threads", type=int, default=_default_threads())
    args = parser.parse_args(argv)
    app = _app()
    sock = socket.create_server((args.host, args.port), backlog=1024)
    if args.workers <= 1:
        _worker(app, sock, args.threads)
        return 0
    children: set[int] = set()
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own app, its own database connections
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _worker(app, sock, args.threads)
            finally:
                os._exit(1)
        children.add(pid)
    print(f"童护: {len(children)} worker processes on http://{args.host}:{args.port}", flush=True)

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:  # a worker died by itself: stop the others, and exit with a failure
            print(f"童护: worker {pid} stopped; stopping the others", file=sys.stderr, flush=True)
            status = 1
            stop(None, None)
    return status


if __name__ == "__main__":
    sys.exit(main())
