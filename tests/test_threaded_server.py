"""The browser tests' server stops in order: nothing it ran writes anywhere once it has stopped."""

import os
import threading
import time
import urllib.request

from flask import Flask

from tests.threaded_server import serve_in_thread


def test_a_request_still_running_at_the_stop_writes_into_no_file_opened_after_it(tmp_path):
    app = Flask(__name__)
    started = threading.Event()

    @app.get("/slow")
    def slow():
        started.set()
        time.sleep(0.5)
        return "done"

    answers = []

    def ask(url):
        with urllib.request.urlopen(url + "/slow", timeout=10) as answer:
            answers.append(answer.read())

    before = {t.name for t in threading.enumerate()}
    with serve_in_thread(app, threads=2) as url:
        asking = threading.Thread(target=ask, args=(url,))
        asking.start()
        assert started.wait(10)
    # files opened at once take the lowest free descriptors, those the server's pipe had
    files = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT) for i in range(4)]
    try:
        for fd in files:
            os.pwrite(fd, b"SQLite format 3\0", 0)
        asking.join(10)
        time.sleep(0.5)
        # the request running at the stop was answered, wrote into none of them, and no thread is left
        assert answers == [b"done"]
        for fd in files:
            assert os.pread(fd, 32, 0) == b"SQLite format 3\0"
        assert not [t.name for t in threading.enumerate() if t.name not in before and t.is_alive()]
    finally:
        for fd in files:
            os.close(fd)
