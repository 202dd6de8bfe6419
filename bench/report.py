"""Figures, the printed table and the JSON results file."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    """One measured figure next to the ceiling it is compared with, measured in the same run.

    ``passed`` is None when the figure has no target of its own (a ceiling, a breakdown).
    """

    key: str
    label: str
    value: float | None
    unit: str
    ceiling: float | None = None
    ceiling_label: str = ""
    ceiling_unit: str | None = None  # when it differs from the value's
    target: str = ""
    passed: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def machine() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    return {"cpus": os.cpu_count(), "load": [round(load1, 2), round(load5, 2), round(load15, 2)],
            "python": platform.python_version(), "platform": platform.platform()}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f} %"
    if abs(value) >= 100 or value == int(value):
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _row(f: Figure) -> tuple[str, str, str, str, str]:
    unit = f.unit if f.ceiling_unit is None else f.ceiling_unit
    ceiling = (f"{_number(f.ceiling, unit)} {f.ceiling_label}".strip()
               if f.ceiling is not None else f.ceiling_label)
    mark = {True: "ok", False: "MISSED", None: ""}[f.passed]
    return (f.label, _number(f.value, f.unit), ceiling, f.target, mark)


def line(f: Figure) -> str:
    """One figure on one line, printed the moment it is measured."""
    label, value, ceiling, target, mark = _row(f)
    parts = [f"{label}: {value}", f"vs {ceiling}" if ceiling else "", target, mark]
    return "  ".join(p for p in parts if p)


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "compared with (same run)", "target", "")]
    rows += [_row(f) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_path(quick: bool) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return RESULTS / f"bench-{stamp}{'-quick' if quick else ''}.json"


def write_json(figures: list[Figure], meta: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(exist_ok=True)
    body = {**meta, "figures": [asdict(f) for f in figures]}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path
