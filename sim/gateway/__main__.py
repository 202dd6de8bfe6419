"""``python -m sim.gateway [options]``: run the gateway emulator (see ``config``)."""

from __future__ import annotations

import sys

from .app import serve
from .config import parse_args


def main(argv: list[str] | None = None) -> int:
    serve(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
