"""serve.py: the app under waitress in several processes per core, sharing one listening socket."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import serve
from serve import worker_pids as _children
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_workers_serve_the_app_and_stop_with_the_server(database_url, tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "serve-test"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port), "--workers", "2", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        workers = _children(server.pid)
        assert len(workers) == 2
        # many connections at once: every one answered (each worker has only two threads)
        for _ in range(12):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=30) as answer:
                assert answer.status == 200 and "登录" in answer.read().decode()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "a worker outlived the server"
    finally:
        if server.poll() is None:
            for pid in _children(server.pid):
                os.kill(pid, signal.SIGKILL)
            server.kill()
            server.wait()
        log.close()


def test_a_worker_that_dies_stops_the_server_for_its_manager_to_restart(database_url, tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "serve-test"}
    server = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first, second = _children(server.pid)
        os.kill(first, signal.SIGKILL)
        assert server.wait(timeout=30) != 0
        deadline = time.monotonic() + 10
        while _alive(second) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(second)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_defaults_and_what_the_environment_may_set(monkeypatch):
    monkeypatch.delenv("WEB_WORKERS", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert (serve._default_workers(), serve._default_threads()) == (6, 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert serve._default_workers() == serve.MAX_DEFAULT_WORKERS
    monkeypatch.setenv("WEB_WORKERS", "3")
    monkeypatch.setenv("WEB_THREADS", "4")
    assert (serve._default_workers(), serve._default_threads()) == (3, 4)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("WEB_THREADS", bad)
        with pytest.raises(SystemExit, match="WEB_THREADS 应为正整数"):
            serve._default_threads()
