"""Grounded arguments: numbers in the calculator's expression must come from the question or a tool result."""

from engine.agents.grounding import COMMON_CONSTANTS, numbers_in, ungrounded_numbers


def test_numbers_in_reads_thousands_separators_and_decimals():
    assert numbers_in("1,234 곱하기 1.99, 그리고 2**10") == {1234.0, 1.99, 2.0, 10.0}
    assert numbers_in("") == set() and numbers_in(None) == set()


def test_made_up_numbers_are_reported_in_order_once():
    # the 1.5B's first turn on dev task d14 ("the president's term plus a member's term")
    args = {"expression": "(2019 - 1975) + (2023 - 1975)"}
    assert ungrounded_numbers(args, ["expression"], ["헌법상 대통령 임기와 국회의원 임기를 더하면 몇 년인가요?"]) == [
        "2019",
        "1975",
        "2023",
    ]


def test_numbers_from_the_question_a_result_or_everyday_constants_are_grounded():
    question, result = "Chinook 데이터베이스의 고객 수에 3을 곱하면 얼마인가요?", "COUNT(*)\n59"
    assert ungrounded_numbers({"expression": "59 * 3"}, ["expression"], [question, result]) == []
    assert ungrounded_numbers({"expression": "4 * 12"}, ["expression"], ["임기는 4년"]) == []  # months a year
    assert ungrounded_numbers({"expression": "1,234 + 1"}, ["expression"], ["1234"]) == []
    assert {0, 12, 24, 60, 100, 1000} <= COMMON_CONSTANTS and 13 not in COMMON_CONSTANTS


def test_only_the_named_string_fields_are_checked():
    assert ungrounded_numbers({"expression": "777", "note": "888"}, ["note"], []) == ["888"]
    assert ungrounded_numbers({"expression": 777}, ["expression"], []) == []  # not a string: the schema's business
    assert ungrounded_numbers("777", ["expression"], []) == []
