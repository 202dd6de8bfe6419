"""Loading and validating the Vocalink modulus weight and sort code substitution tables.

The weight table (``valacdos-vX-YY.txt``) has one row per sort code range::

    start end METHOD w_u w_v w_w w_x w_y w_z w_a w_b w_c w_d w_e w_f w_g w_h [exception]

where METHOD is MOD10, MOD11 or DBLAL and the weights apply to the 14 digits of the sort code
followed by the 8-digit account number. The substitution table (``scsubtab.txt``) has two
columns: a sort code and the sort code to use in its place for exception 5.

Error messages name the file, the line number and what was wrong, never the line's content,
so that a rejected table can be reported without echoing data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Method = Literal["MOD10", "MOD11", "DBLAL"]

METHODS: frozenset[str] = frozenset({"MOD10", "MOD11", "DBLAL"})

# Exceptions whose meaning is defined by the specification; a table using any other number
# would be checked wrongly, so it is rejected instead.
KNOWN_EXCEPTIONS: frozenset[int] = frozenset(range(1, 15))

# The second row of these pairs only makes sense directly after the first one for the same
# range: the combination rules in the specification are defined per pair.
EXCEPTION_PAIRS: Mapping[int, int] = MappingProxyType({2: 9, 10: 11, 12: 13})

DATA_DIR = Path(__file__).with_name("data")
DEFAULT_WEIGHTS_FILE = DATA_DIR / "valacdos-v8-50.txt"
DEFAULT_SUBSTITUTIONS_FILE = DATA_DIR / "scsubtab.txt"

_SORT_CODE = re.compile(r"[0-9]{6}")
_WEIGHT = re.compile(r"-?[0-9]{1,3}")
_EXCEPTION = re.compile(r"[0-9]{1,2}")
_VERSION_IN_NAME = re.compile(r"valacdos-v([0-9]+)-([0-9]+)\.txt", re.IGNORECASE)


class TableFormatError(ValueError):
    """A modulus table file is malformed.

    ``line`` is the 1-based line number at fault (None when the problem concerns the whole
    file) and ``problem`` says what was wrong. Neither contains the line's content.
    """

    def __init__(self, file_name: str, line: int | None, problem: str) -> None:
        self.file_name = file_name
        self.line = line
        self.problem = problem
        where = f"{file_name}: line {line}" if line is not None else file_name
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class WeightRow:
    """One row of the weight table: an inclusive sort code range and how to check it."""

    start: int
    end: int
    method: Method
    weights: tuple[int, ...]
    exception: int | None

    def covers(self, sort_code: int) -> bool:
        """Whether the (integer) sort code lies inside this row's inclusive range."""
        return self.start <= sort_code <= self.end


@dataclass(frozen=True, eq=False, repr=False)
class ModulusTables:
    """Parsed weight rows (in file order) and the exception 5 substitution map.

    File order is kept because, where two rows cover one sort code, the first is the first
    check and the second the second check.
    """

    rows: tuple[WeightRow, ...]
    substitutions: Mapping[str, str]
    version: str
    source: str

    def rows_for(self, sort_code: str) -> tuple[WeightRow, ...]:
        """The rows covering a 6-digit sort code, in file order (empty if not in the table)."""
        value = int(sort_code)
        # A linear scan is a few microseconds per thousand rows and stays correct even if a
        # future table has overlapping or unsorted ranges.
        return tuple(row for row in self.rows if row.covers(value))

    def __repr__(self) -> str:
        return (
            f"ModulusTables(version={self.version!r}, rows={len(self.rows)}, "
            f"substitutions={len(self.substitutions)})"
        )


def load_tables(
    weights_path: str | Path | None = None,
    substitutions_path: str | Path | None = None,
    version: str | None = None,
) -> ModulusTables:
    """Load and validate a weight table and a substitution table.

    None for a path means the copy shipped in ``bankaccounts/data/``. ``version`` defaults to
    the one in the weight file's name (``valacdos-v8-50.txt`` gives ``"8.50"``), or
    ``"unknown"`` if the name does not carry one. Raises TableFormatError on a malformed file
    and OSError if a file cannot be read.
    """
    weights_file = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS_FILE
    subs_file = (
        Path(substitutions_path) if substitutions_path is not None else DEFAULT_SUBSTITUTIONS_FILE
    )
    rows = _parse_weights(weights_file.name, weights_file.read_bytes())
    substitutions = _parse_substitutions(subs_file.name, subs_file.read_bytes())
    return ModulusTables(
        rows=rows,
        substitutions=MappingProxyType(substitutions),
        version=version if version is not None else _version_from_name(weights_file.name),
        source=str(weights_file),
    )


@cache
def default_tables() -> ModulusTables:
    """The shipped tables, loaded on first use and shared afterwards."""
    return load_tables()


def tables_info(tables: ModulusTables) -> dict[str, str | int]:
    """Which tables are in use: version, source path, row count and substitution count."""
    return {
        "version": tables.version,
        "source": tables.source,
        "row_count": len(tables.rows),
        "substitution_count": len(tables.substitutions),
    }


def _version_from_name(file_name: str) -> str:
    match = _VERSION_IN_NAME.fullmatch(file_name)
    return f"{int(match.group(1))}.{match.group(2)}" if match else "unknown"


def _lines(file_name: str, content: bytes) -> list[tuple[int, list[str]]]:
    """Numbered, whitespace-split, non-blank lines; CRLF and LF are both accepted."""
    result = []
    for number, raw in enumerate(content.splitlines(), start=1):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise TableFormatError(file_name, number, "contains non-ASCII characters") from None
        fields = text.split()
        if fields:
            result.append((number, fields))
    return result


def _parse_weights(file_name: str, content: bytes) -> tuple[WeightRow, ...]:
    rows: list[WeightRow] = []
    line_numbers: list[int] = []
    for number, fields in _lines(file_name, content):
        rows.append(_parse_weight_row(file_name, number, fields))
        line_numbers.append(number)
    if not rows:
        raise TableFormatError(file_name, None, "contains no weight rows")
    _check_pairs(file_name, rows, line_numbers)
    return tuple(rows)


def _parse_weight_row(file_name: str, number: int, fields: list[str]) -> WeightRow:
    def fail(problem: str) -> TableFormatError:
        return TableFormatError(file_name, number, problem)

    if len(fields) not in (17, 18):
        raise fail(f"expected 17 or 18 columns, found {len(fields)}")
    start_text, end_text, method, *rest = fields
    if not (_SORT_CODE.fullmatch(start_text) and _SORT_CODE.fullmatch(end_text)):
        raise fail("sort code range bounds must be 6 digits")
    start, end = int(start_text), int(end_text)
    if start > end:
        raise fail("sort code range starts after it ends")
    if method not in METHODS:
        raise fail("method must be MOD10, MOD11 or DBLAL")
    weight_texts = rest[:14]
    if not all(_WEIGHT.fullmatch(text) for text in weight_texts):
        raise fail("weights must be whole numbers")
    exception: int | None = None
    if len(rest) == 15:
        if not _EXCEPTION.fullmatch(rest[14]) or int(rest[14]) not in KNOWN_EXCEPTIONS:
            raise fail("exception must be a number from 1 to 14")
        exception = int(rest[14])
    return WeightRow(
        start=start,
        end=end,
        method=method,  # type: ignore[arg-type]  # membership in METHODS checked above
        weights=tuple(int(text) for text in weight_texts),
        exception=exception,
    )


def _check_pairs(file_name: str, rows: list[WeightRow], line_numbers: list[int]) -> None:
    """Reject tables whose paired exceptions are not on consecutive rows of one range.

    More than two rows for one range is rejected as well: the specification defines at most
    a first and a second check.
    """
    first_of_pair = {second: first for first, second in EXCEPTION_PAIRS.items()}

    def same_range(i: int, j: int) -> bool:
        return (
            0 <= i < len(rows)
            and 0 <= j < len(rows)
            and ((rows[i].start, rows[i].end) == (rows[j].start, rows[j].end))
        )

    for index, row in enumerate(rows):
        line = line_numbers[index]
        if same_range(index - 2, index) and same_range(index - 1, index):
            raise TableFormatError(file_name, line, "more than two rows for one range")
        if row.exception in EXCEPTION_PAIRS:
            partner = EXCEPTION_PAIRS[row.exception]
            if not (same_range(index, index + 1) and rows[index + 1].exception == partner):
                raise TableFormatError(
                    file_name,
                    line,
                    f"exception {row.exception} row must be followed by an exception "
                    f"{partner} row for the same range",
                )
        if row.exception in first_of_pair:
            partner = first_of_pair[row.exception]
            if not (same_range(index - 1, index) and rows[index - 1].exception == partner):
                raise TableFormatError(
                    file_name,
                    line,
                    f"exception {row.exception} row must follow an exception "
                    f"{partner} row for the same range",
                )


def _parse_substitutions(file_name: str, content: bytes) -> dict[str, str]:
    substitutions: dict[str, str] = {}
    for number, fields in _lines(file_name, content):
        if len(fields) != 2:
            raise TableFormatError(file_name, number, f"expected 2 columns, found {len(fields)}")
        original, replacement = fields
        if not (_SORT_CODE.fullmatch(original) and _SORT_CODE.fullmatch(replacement)):
            raise TableFormatError(file_name, number, "sort codes must be 6 digits")
        if original in substitutions:
            raise TableFormatError(file_name, number, "sort code listed more than once")
        substitutions[original] = replacement
    return substitutions
