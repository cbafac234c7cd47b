"""The app under waitress in a background thread of the test process (browser tests, the desk bench),
and its orderly stop.

waitress's own ``server.close()`` closes the pipe that wakes its loop while the loop and the request
threads still run; a request thread finishing afterwards writes its wake-up byte to the closed
descriptor's number — by then often the next test's freshly opened SQLite file, whose first byte it
overwrote ("file is not a database" in CI). Here the request threads are stopped first, then the loop
closes its own sockets and pipe, from its own thread, and ends; only then does the app let go of its
database."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from waitress import wasyncore
from waitress.server import create_server


@contextmanager
def serve_in_thread(app, threads: int = 8) -> Iterator[str]:
    """Serves ``app`` on a free loopback port; yields its base URL; stops everything on exit."""
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    loop = threading.Thread(target=server.run, name="waitress-loop", daemon=True)
    loop.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop(server, loop)
        if "sqlalchemy" in app.extensions:  # the app's rule runs end, its connections close
            with app.app_context():
                from models import db
                from services.alerts import wait_for_background_runs

                wait_for_background_runs(app)
                db.session.remove()
                db.engine.dispose()


def stop(server, loop: threading.Thread, timeout: float = 30) -> None:
    # 1. no request thread left to pull the wake-up pipe (running requests finish, queued ones are dropped)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
    # 2. the loop closes every socket and the pipe itself, then has nothing left to serve and returns
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
    loop.join(timeout)
    assert not loop.is_alive(), "the test server's loop did not stop"
