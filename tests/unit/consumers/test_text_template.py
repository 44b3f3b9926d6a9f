"""Free-text templates mask what singles a text out; categories name its kind."""

from __future__ import annotations

import pytest

from consumers.text_template import MAX_TEMPLATE_CHARS, MAX_TEMPLATE_LINES, category, template


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("queue depth 729 of 5034", "queue depth <*> of <*>"),
        ("queue depth 12 of 80", "queue depth <*> of <*>"),
        ("battery low: 15%", "battery low: <*>%"),
        ("app updated to 3.8.2", "app updated to <*>"),
        ('For input string: "31.2304,121.4737"', "For input string: <*>"),
        ("value 'alice' rejected", "value <*> rejected"),
        ("fault addr 0x0000007a3c2f1000 in libx.so", "fault addr <*> in libx.so"),
        ("order SO2024123456 paid", "order <*> paid"),
        ("network changed: WIFI -> CELL_4G", "network changed: WIFI -> CELL_4G"),
        ("crash for <EMAIL> at <IMEI>", "crash for <EMAIL> at <IMEI>"),
        ("date 2024-05-03 10:22:01", "date <*> <*>"),
        ("screen off, app moved to background", "screen off, app moved to background"),
    ],
)
def test_numbers_ids_hex_and_quoted_values_are_masked(text: str, expected: str) -> None:
    assert template(text) == expected


def test_a_stack_trace_keeps_its_first_lines_without_line_numbers() -> None:
    trace = "java.lang.IllegalStateException: boom\n" + "".join(
        f"\tat com.example.F{i}.run(F{i}.java:{100 + i})\n" for i in range(20)
    )
    result = template(trace)
    assert result.count("\n") == MAX_TEMPLATE_LINES - 1
    assert ":1" not in result
    assert result.startswith("java.lang.IllegalStateException: boom\n\tat com.example.")


def test_a_long_text_is_cut_to_the_cap_and_says_so() -> None:
    result = template("word " * 10_000)
    assert len(result) == MAX_TEMPLATE_CHARS
    assert result.endswith("...")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("java.lang.NullPointerException: Attempt to invoke <*>", "java.lang.NullPointerException"),
        ("network changed: WIFI -> CELL", "network changed"),
        ("onTrimMemory level=<*>, available <*> MB", "onTrimMemory level=<*>, available"),
        ("screen off", "screen off"),
        (":leading colon", ":leading colon"),
        ("", ""),
    ],
)
def test_the_category_is_the_first_line_up_to_a_colon_or_its_first_words(
    text: str, expected: str
) -> None:
    assert category(text) == expected
