"""The AlpaGasus prompt is the paper's, and scores are read only when they are unambiguous."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curation.raters.parse import parse_answer
from curation.raters.prompt import build_messages, check_dimension

PAPER_SYSTEM = (
    "We would like to request your feedback on the performance of AI assistant in response to the instruction and "
    "the given input displayed following.\n\nInstruction: {instruction}\nInput: {input}\nResponse: {output}"
)
PAPER_USER = (
    "Please rate according to the {dimension} of the response to the instruction and the input. Each assistant "
    "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the {dimension}. Please "
    "first output a single line containing the value indicating the scores. In the subsequent line, please provide "
    "a comprehensive explanation of your evaluation, avoiding any potential bias."
)


def test_prompt_is_the_papers_wording_with_the_example_and_dimension_substituted() -> None:
    messages = build_messages("Add {x} and 2", "x = 3", "5", dimension="helpfulness")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == PAPER_SYSTEM.format(instruction="Add {x} and 2", input="x = 3", output="5")
    assert messages[1]["content"] == PAPER_USER.format(dimension="helpfulness")
    assert build_messages("a", "", "b")[1]["content"] == PAPER_USER.format(dimension="accuracy")


def test_input_line_is_present_even_when_the_input_is_empty() -> None:
    system = build_messages("Name a colour", "", "Blue")[0]["content"]
    assert system.endswith("Instruction: Name a colour\nInput: \nResponse: Blue")


@pytest.mark.parametrize("bad", ["", "   ", "two\nlines", "x" * 65])
def test_a_dimension_must_be_a_short_phrase_on_one_line(bad: str) -> None:
    with pytest.raises(ValueError, match="dimension"):
        check_dimension(bad)


@pytest.mark.parametrize(
    "text, score",
    [
        ("4.5\nClear and correct.", 4.5),
        ("Score: 4.5\nClear and correct.", 4.5),
        ("4.5/5\nClear and correct.", 4.5),
        ("4.5 out of 5\nClear and correct.", 4.5),
        ("**4.5**\nClear and correct.", 4.5),
        ("**Score:** 4/5\nClear and correct.", 4.0),
        ("The score is 3.\nClear and correct.", 3.0),
        ("Rating = 2.0 / 5.0\nClear and correct.", 2.0),
        ("\n\n  5  \nClear and correct.", 5.0),
        ("0\nClear and correct.", 0.0),
        ("5.\nClear and correct.", 5.0),
    ],
)
def test_tolerated_score_lines(text: str, score: float) -> None:
    parsed = parse_answer(text)
    assert (parsed.status, parsed.score, parsed.explanation) == ("ok", score, "Clear and correct.")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("5.5\nToo generous.", "outside 0-5"),
        ("7\nToo generous.", "outside 0-5"),
        ("-1\nNegative.", "outside 0-5"),
        ("4.5/10\nOther scale.", "not a score"),
        ("4 or 5\nUndecided.", "not a score"),
        ("I would rate it 4.\nHedged.", "not a score"),
        ("Great answer!\n4", "not a score"),
        ("4 3\nTwo numbers.", "not a score"),
        ("", "empty"),
        ("   \n  ", "empty"),
        (None, "empty"),
    ],
)
def test_unreadable_or_out_of_range_answers_are_unparsed_and_never_a_number(text: str | None, reason: str) -> None:
    parsed = parse_answer(text)
    assert parsed.status == "unparsed"
    assert parsed.score is None and parsed.explanation is None
    assert reason in (parsed.reason or "")


def test_the_explanation_is_the_rest_of_the_text_and_may_be_absent() -> None:
    assert parse_answer("3\nFirst line.\n\nSecond paragraph.").explanation == "First line.\n\nSecond paragraph."
    only_score = parse_answer("3")
    assert (only_score.status, only_score.score, only_score.explanation) == ("ok", 3.0, None)


@given(
    value=st.integers(min_value=0, max_value=50).map(lambda tenths: tenths / 10),
    form=st.sampled_from(["{v}", "Score: {v}", "{v}/5", "{v} out of 5", "**{v}**", "Rating: **{v}/5**"]),
    explanation=st.text(min_size=1).filter(lambda s: s.strip()),
)
def test_every_tolerated_form_of_an_in_range_score_reads_back_exactly(
    value: float, form: str, explanation: str
) -> None:
    parsed = parse_answer(form.format(v=value) + "\n" + explanation)
    assert parsed.status == "ok"
    assert parsed.score == value
    assert parsed.explanation == explanation.strip()


@given(st.text())
def test_any_text_gives_ok_with_a_score_in_range_or_unparsed_without_one(text: str) -> None:
    parsed = parse_answer(text)
    if parsed.status == "ok":
        assert parsed.score is not None and 0.0 <= parsed.score <= 5.0
    else:
        assert parsed.status == "unparsed" and parsed.score is None
