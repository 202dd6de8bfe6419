"""ruff over the whole tree, with its security rules (the bandit set, "S") among those
pyproject.toml selects: CI fails on a finding, not only a reviewer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_including_its_security_rules_is_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    selected = (ROOT / "pyproject.toml").read_text()
    assert '"S"' in selected  # the security rules stay selected
