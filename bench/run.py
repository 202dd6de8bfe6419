"""`.venv/bin/python bench/run.py [--quick]`: run the benchmark suite (see bench/main.py)."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as `python -m bench.run` would.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
