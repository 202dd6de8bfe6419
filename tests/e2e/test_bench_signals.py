"""The bench ends every process it started however it is stopped: SIGTERM mid-run here."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from app.supervisor import PY
from bench.stack import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_mid_run_leaves_no_process_behind(database_url: str, redis_url: str,
                                                  tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the bench runs on PostgreSQL, like production")
    log = tmp_path / "bench.log"
    with open(log, "wb") as out:
        bench = subprocess.Popen(  # noqa: S603 - our own fixed argv
            [PY, "bench/run.py", "--quick", "--only", "latency", "--database-url",
             database_url, "--redis-url", redis_url], cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    started: list[psutil.Process] = []
    try:
        root = psutil.Process(bench.pid)
        # Mid-run: the emulators, the web app (a gunicorn master and its workers), workers
        # and the clock are up, each in a session of its own.
        wait_until(lambda: "bench: latency" in log.read_text()
                   and len(root.children(recursive=True)) >= 6, 180,
                   "the bench's processes", explain=log.read_text)
        time.sleep(1)
        started = root.children(recursive=True)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()
        _, alive = psutil.wait_procs(started, timeout=10)
        assert alive == [], [(p.pid, p.cmdline()) for p in alive]
        assert "stopped by signal" in log.read_text()
    finally:  # a failed run must not leave its processes to the next test
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for proc in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
