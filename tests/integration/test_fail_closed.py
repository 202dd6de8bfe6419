"""The Procfile's processes, started as a platform starts them but without secrets, refuse
to run: one line on stderr naming each variable, and a non-zero exit. (Without this, a
deployment that forgot PAYBRIDGE_ENV ran on the published development secrets.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ROOT
from app.supervisor import free_port

PROCFILE = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                if ": " in line)
CONFIGURATION = ("PAYBRIDGE_", "SECRET_KEY", "GOCARDLESS_", "GATEWAY_", "SALESFORCE_",
                 "DATABASE_", "REDIS_")


@pytest.mark.parametrize("process", ["web", "worker", "clock"])
def test_a_procfile_start_without_secrets_exits_naming_each_variable(process: str,
                                                                     tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIGURATION)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"PORT": str(free_port()), "PAYBRIDGE_HOME": str(tmp_path)})
    done = subprocess.run(["bash", "-c", f"exec {PROCFILE[process]}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if "refusing to start" in ln]
    assert lines, done.stderr[-3000:]
    for name in ("SECRET_KEY", "GOCARDLESS_WEBHOOK_SECRET", "GATEWAY_ACCESS_TOKEN",
                 "SALESFORCE_CLIENT_SECRET"):
        assert name in lines[0]
    # Our refusal is never a traceback. (gunicorn's master may print its own while it halts
    # on the boot-error status, when both workers fail at once: that is gunicorn's, not ours.)
    ours = [f"{ROOT}/app/", "ConfigError"]
    assert not any(mark in done.stderr for mark in ours), done.stderr[-6000:]
