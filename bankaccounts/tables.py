"""Which modulus tables Paybridge checks against: the shipped copy, or newer files from settings.

Vocalink publishes new tables several times a year. MODULUS_WEIGHTS_PATH and
MODULUS_SUBSTITUTIONS_PATH name newer files (either may be left empty to keep the shipped
one); they are read once per process, so a replaced file takes effect at the next restart.
A malformed file is refused when the web app starts, not at the first bank account.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from app.config import Settings
from bankaccounts.modulus import ModulusTables, default_tables, load_tables, tables_info
from bankaccounts.modulus_tables import DEFAULT_SUBSTITUTIONS_FILE


@cache
def _load(weights_path: str, substitutions_path: str) -> ModulusTables:
    if not weights_path and not substitutions_path:
        return default_tables()
    return load_tables(weights_path or None, substitutions_path or None)


def tables_for(settings: Settings) -> ModulusTables:
    """The tables in use; raises TableFormatError / OSError if a configured file is bad."""
    return _load(settings.modulus_weights_path, settings.modulus_substitutions_path)


def info(settings: Settings) -> dict[str, Any]:
    """Version, files and sizes of the tables in use, and whether settings chose them."""
    tables = tables_for(settings)
    return {
        **tables_info(tables),
        "substitutions_source": settings.modulus_substitutions_path
        or str(DEFAULT_SUBSTITUTIONS_FILE),
        "origin": "configured" if (settings.modulus_weights_path
                                   or settings.modulus_substitutions_path) else "shipped",
    }
