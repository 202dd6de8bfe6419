"""Where the time goes: pyinstrument profiles of the two hot paths, for the README.

- a burst RQ worker draining Contacts through the API queue (gateway call, link, history,
  batched write-back), run as its own process under ``pyinstrument``, one gateway call at
  a time (``GATEWAY_CONCURRENCY=1``) so that the profiled thread does all the work;
- webhook intake: signed 100-event batches posted to the Flask app in this process.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from app.runtime import Runtime
from app.supervisor import PY
from app.web import create_app
from bench.intake import PATH, bodies
from bench.stack import Stack
from bench.workload import create_contacts, trigger_idle

PROFILER = ("-m", "pyinstrument", "-r", "text", "--no-color", "-o")


def worker(stack: Stack, records: int) -> str:
    stack.reset()
    stack.gw_sim("POST", "/webhooks/faults", json={"pause": True})
    web = stack.start_web()
    out = stack.home / "worker-profile.txt"
    try:
        create_contacts(stack, records, prefix="P")
        trigger_idle(stack)
        # One gateway call at a time, in the job's own thread: pyinstrument samples only
        # that thread, and the lanes' threads would show as one wait.
        env = {**stack.env, "GATEWAY_CONCURRENCY": "1"}
        subprocess.run([PY, *PROFILER, str(out),
                        "-m", "app.cli", "worker", "--burst"], env=env, check=True,
                       cwd=stack.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=900)
    finally:
        stack.stop([web])
        stack.gw_sim("POST", "/webhooks/faults", json={"pause": False})
    return Path(out).read_text()


def intake(stack: Stack, batches: int, mode: str = "batch") -> str:
    """``mode``: WEBHOOK_MODE, batch (the default: jobs of up to JOB_BATCH_SIZE events of
    one delivery) or event (one RQ job per event)."""
    from pyinstrument import Profiler

    stack.reset()
    rt = Runtime(replace(stack.settings, webhook_mode=mode))
    client = create_app(runtime=rt).test_client()
    signed = bodies(batches + 5, 100, stack.settings.webhook_secret)
    for body, headers in signed[:5]:
        client.post(PATH, data=body, headers=headers)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for body, headers in signed[5:]:
        assert client.post(PATH, data=body, headers=headers).status_code == 204
    profiler.stop()
    rt.db.dispose()
    return str(profiler.output_text(unicode=True, color=False))
