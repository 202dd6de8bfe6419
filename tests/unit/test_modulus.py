"""Tests for bankaccounts.modulus: the specification's test cases, input normalisation,
table loading and the guarantee that results never carry the bank details."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankaccounts.modulus import (
    REASONS,
    InvalidBankDetails,
    ModulusResult,
    ModulusTables,
    TableFormatError,
    check,
    default_tables,
    load_tables,
    normalise,
    tables_info,
)

CASES_FILE = Path(__file__).parents[1] / "fixtures" / "modulus" / "uk_modulus_spec_test_cases.csv"
WEIGHT_ROW = "089000 089999 MOD10  0  0  0  0  0  0  7  1  3  7  1  3  7  1"


def _spec_cases() -> list[pytest.param]:
    with CASES_FILE.open(newline="", encoding="utf-8") as handle:
        return [
            pytest.param(
                row["sort_code"],
                row["account_number"],
                row["expected_valid"] == "Y",
                id=f"case-{int(row['no']):02d}",
            )
            for row in csv.DictReader(handle)
        ]


SPEC_CASES = _spec_cases()


def test_fixture_holds_all_34_official_cases() -> None:
    assert len(SPEC_CASES) == 34


@pytest.mark.parametrize(("sort_code", "account_number", "expected"), SPEC_CASES)
def test_specification_cases(sort_code: str, account_number: str, expected: bool) -> None:
    result = check(sort_code, account_number)
    assert result.valid is expected, result.reason


# --- results ---------------------------------------------------------------------------------


def test_failure_reasons_name_the_check() -> None:
    assert check("107999", "88837493").reason == "failed MOD11 check"
    assert check("089999", "66374959").reason == "failed MOD10 check"
    assert check("938063", "15764273").reason == "failed double alternate check (exception 5)"
    assert check("118765", "64371388").reason == "failed double alternate check (exception 1)"


def test_passing_result_lists_the_checks_run() -> None:
    result = check("202959", "63748472")
    assert result == ModulusResult(
        valid=True, reason="passed", checks=("MOD11 (exception 6)", "DBLAL (exception 6)")
    )


def test_exception_14_reports_its_second_check() -> None:
    assert check("180002", "00000190").checks == (
        "MOD11 (exception 14)",
        "MOD11 (exception 14, second check)",
    )
    # h = 7 is not 0, 1 or 9: no second check, not a valid Coutts account number.
    result = check("180002", "00000197")
    assert not result.valid
    assert result.checks == ("MOD11 (exception 14)",)


def test_either_check_pairs_fail_only_when_both_fail() -> None:
    result = check("871427", "46238511")
    assert not result.valid
    assert result.reason == "failed both checks (exceptions 10 and 11)"
    assert result.checks == ("MOD11 (exception 10)", "MOD11 (exception 11)")


def test_sort_code_missing_from_table_is_treated_as_valid() -> None:
    result = check("999999", "12345678")
    assert result.valid
    assert result.reason == (
        "sort code is not in the modulus table: cannot be checked, treated as valid"
    )
    assert result.checks == ()


def test_format_errors_give_invalid_results_not_exceptions() -> None:
    assert check("", "12345678") == ModulusResult(False, "sort code is required")
    assert check("089999", "6637495x") == ModulusResult(
        False, "account number must contain only digits"
    )
    assert check("١٢٣٤٥٦", "66374958").reason == "sort code must contain only digits"
    assert check("089999", "6" * 10_000_000).reason == "account number must be 6 to 10 digits"


def test_explicit_tables_are_used() -> None:
    tables = default_tables()
    assert check("08-99-99", "66374958", tables=tables).valid


def test_exception_8_substitutes_sort_code(tmp_path: Path) -> None:
    # In the shipped table exception 8's substitute gives the same weighted total as the
    # real sort code, so a table that tells them apart is used: weight 1 on z only.
    # Sort code 111111 with substitute 090126 contributes 6 instead of 1; 222222 (no
    # exception) contributes its own 2.
    weights = tmp_path / "valacdos-v0-01.txt"
    weights.write_text(
        "111111 111111 MOD10  0  0  0  0  0  1  0  0  0  0  0  0  0  1  8\n"
        "222222 222222 MOD10  0  0  0  0  0  1  0  0  0  0  0  0  0  1\n"
    )
    subs = tmp_path / "scsubtab.txt"
    subs.write_text("")
    tables = load_tables(weights, subs)
    assert check("111111", "00000004", tables).valid  # 6 + 4 with the substitute
    assert not check("111111", "00000009", tables).valid
    assert check("222222", "00000008", tables).valid  # 2 + 8 without exception 8


# --- normalise -------------------------------------------------------------------------------


@pytest.mark.parametrize("sort_code", ["08-99-99", "08 99 99", " 089999 ", "08 - 99 - 99"])
def test_normalise_removes_spaces_and_dashes(sort_code: str) -> None:
    assert normalise(sort_code, "6637-4958") == ("089999", "66374958")


@pytest.mark.parametrize(
    ("sort_code", "account_number", "reason"),
    [
        ("089999", "", "account number is required"),
        ("089999", " - ", "account number is required"),
        ("", "66374958", "sort code is required"),
        ("089999", "66374a58", "account number must contain only digits"),
        ("08999a", "66374958", "sort code must contain only digits"),
        ("089999", "١٢٣٤٥٦٧٨", "account number must contain only digits"),
        ("089999", "12345", "account number must be 6 to 10 digits"),
        ("089999", "12345678901", "account number must be 6 to 10 digits"),
        ("0899990", "66374958", "sort code must be 6 digits"),
        ("08999", "66374958", "sort code must be 6 digits"),
    ],
)
def test_normalise_rejects_bad_input(sort_code: str, account_number: str, reason: str) -> None:
    with pytest.raises(InvalidBankDetails) as caught:
        normalise(sort_code, account_number)
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_normalise_pads_6_and_7_digit_account_numbers() -> None:
    assert normalise("089999", "123456") == ("089999", "00123456")
    assert normalise("089999", "1234567") == ("089999", "01234567")


def test_normalise_9_digit_santander_moves_first_digit_into_sort_code() -> None:
    assert normalise("090013", "712345678") == ("090017", "12345678")


def test_normalise_10_digit_natwest_uses_last_8_digits() -> None:
    assert normalise("600001", "0123456789") == ("600001", "23456789")


def test_normalise_10_digit_co_operative_uses_first_8_digits() -> None:
    assert normalise("089999", "0123456789") == ("089999", "01234567")


def test_normalise_rejects_non_text() -> None:
    with pytest.raises(InvalidBankDetails):
        normalise(123456, "66374958")  # type: ignore[arg-type]


# --- confidentiality -------------------------------------------------------------------------


@given(sort_code=st.text(), account_number=st.text())
def test_check_never_raises_and_never_echoes_the_account_number(
    sort_code: str, account_number: str
) -> None:
    result = check(sort_code, account_number)
    assert isinstance(result, ModulusResult)
    # Reasons come from a fixed vocabulary, so they cannot carry the input. (Text that happens
    # to be part of that vocabulary, such as "number", is excluded from the second assertion.)
    assert result.reason in REASONS
    if len(account_number) >= 6 and not any(account_number in known for known in REASONS):
        assert account_number not in result.reason


@given(
    sort_code=st.from_regex(r"[0-9]{2}-?[0-9]{2}-?[0-9]{2}", fullmatch=True),
    account_number=st.from_regex(r"[0-9]{6,10}", fullmatch=True),
)
def test_digits_never_appear_in_results(sort_code: str, account_number: str) -> None:
    result = check(sort_code, account_number)
    for text in (result.reason, repr(result), *result.checks):
        assert account_number not in text
        assert sort_code.replace("-", "") not in text


def test_invalid_details_message_omits_the_input() -> None:
    with pytest.raises(InvalidBankDetails) as caught:
        normalise("089999", "66374958123")
    assert "66374958123" not in str(caught.value)
    assert "66374958123" not in repr(caught.value)


# --- tables ----------------------------------------------------------------------------------


def test_shipped_tables_load() -> None:
    tables = load_tables()
    assert tables.version == "8.50"
    assert len(tables.rows) > 1000
    assert tables.substitutions["938600"] == "938611"
    info = tables_info(tables)
    assert info["version"] == "8.50"
    assert info["row_count"] == len(tables.rows)
    assert info["substitution_count"] == 21
    assert str(info["source"]).endswith("valacdos-v8-50.txt")


def test_rows_keep_file_order() -> None:
    rows = load_tables().rows_for("309070")
    assert [row.exception for row in rows] == [2, 9]
    rows = load_tables().rows_for("074456")
    assert [(row.method, row.exception) for row in rows] == [("MOD11", 12), ("MOD10", 13)]


def test_default_tables_is_cached() -> None:
    assert default_tables() is default_tables()
    assert repr(default_tables()) == "ModulusTables(version='8.50', rows=1151, substitutions=21)"


def test_explicit_version_overrides_file_name(tmp_path: Path) -> None:
    weights = tmp_path / "weights.txt"
    weights.write_text(WEIGHT_ROW + "\r\n")
    tables = load_tables(weights, version="9.00")
    assert isinstance(tables, ModulusTables)
    assert tables.version == "9.00"
    assert load_tables(weights).version == "unknown"
    assert tables.source == str(weights)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "valacdos-v9-99.txt"
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("089000 089999 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7", "expected 17 or 18 columns, found 16"),
        ("089000 089999 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7 x", "weights must be whole numbers"),
        ("089000 089999 MOD12 0 0 0 0 0 0 7 1 3 7 1 3 7 1", "method must be MOD10, MOD11 or DBLAL"),
        ("089999 089000 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7 1", "sort code range starts after it ends"),
        (
            "08900 089999 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7 1",
            "sort code range bounds must be 6 digits",
        ),
        ("089000 089999 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7 1 15", "exception must be a number"),
    ],
)
def test_malformed_weight_table_names_the_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    path = _write(tmp_path, [WEIGHT_ROW, WEIGHT_ROW, bad_line])
    with pytest.raises(TableFormatError) as caught:
        load_tables(path)
    assert caught.value.line == 3
    assert problem in caught.value.problem
    assert "line 3" in str(caught.value)
    assert "089" not in str(caught.value)  # content is never echoed


def test_unpaired_exception_rows_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [WEIGHT_ROW, WEIGHT_ROW.replace("089000", "089001") + "  10"])
    with pytest.raises(TableFormatError) as caught:
        load_tables(path)
    assert caught.value.line == 2


def test_second_of_a_pair_without_its_first_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [WEIGHT_ROW, WEIGHT_ROW + "  9"])
    with pytest.raises(TableFormatError, match="must follow an exception 2 row") as caught:
        load_tables(path)
    assert caught.value.line == 2


def test_more_than_two_rows_for_a_range_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [WEIGHT_ROW, WEIGHT_ROW, WEIGHT_ROW])
    with pytest.raises(TableFormatError) as caught:
        load_tables(path)
    assert caught.value.line == 3


def test_empty_weight_table_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [""])
    with pytest.raises(TableFormatError, match="no weight rows"):
        load_tables(path)


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ("938173 938017\n938289\n", 2, "expected 2 columns, found 1"),
        ("938173 938017\n938289 93806x\n", 2, "sort codes must be 6 digits"),
        ("938173 938017\n\n938173 938068\n", 3, "sort code listed more than once"),
        ("938173 938017\n\xe9\n", 2, "contains non-ASCII characters"),
    ],
)
def test_malformed_substitution_table_names_the_line(
    tmp_path: Path, content: str, line: int, problem: str
) -> None:
    path = tmp_path / "scsubtab.txt"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(TableFormatError) as caught:
        load_tables(substitutions_path=path)
    assert (caught.value.line, caught.value.problem) == (line, problem)
