"""Reading verdicts out of real and odd review texts; an unreadable review is unparsed, never a draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.judges.parse import parse_pandalm, parse_scores, parse_verdict

DATA = Path(__file__).parent / "data" / "judge_reviews"


def cherry_reviews() -> list[tuple[str, list[float]]]:
    data = json.loads((DATA / "koala_sample_wrap_reviews_gpt4.json").read_text(encoding="utf-8"))["data"]
    pairs = []
    for item in data:
        pairs.append((item["review"], json.loads(item["scores"])))
        pairs.append((item["review_reverse"], json.loads(item["scores_reverse"])))
    return pairs


def test_every_published_gpt4_review_parses_to_the_published_scores() -> None:
    reviews = cherry_reviews()
    assert len(reviews) == 48
    for text, (first, second) in reviews:
        parsed = parse_scores(text)
        assert parsed.status == "ok", text[:80]
        assert (parsed.score_1, parsed.score_2) == (first, second)
        assert parsed.winner == ("1" if first > second else "2" if second > first else "tie")
        assert parsed.reason and not parsed.reason.startswith(f"{first:g}")


def test_fastchat_reviews_parse_to_their_scores() -> None:
    lines = (DATA / "fastchat_review_alpaca-13b_vicuna-13b.sample.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        row = json.loads(line)
        parsed = parse_scores(row["text"])
        assert [parsed.score_1, parsed.score_2] == row["score"]


@pytest.mark.parametrize(
    ("text", "scores", "winner"),
    [
        ("8 7\nAssistant 1 was more precise.", (8, 7), "1"),
        ("8.5 9\nBoth fine.", (8.5, 9), "2"),
        ("7 7", (7, 7), "tie"),
        ("9, 6\nreason", (9, 6), "1"),
        ("**8** **9**\nreason", (8, 9), "2"),
        ("8/10 6/10\nreason", (8, 6), "1"),
        ("Scores: 4 9\nreason", (4, 9), "2"),
        ("\n\n 3 5 \nleading blank lines", (3, 5), "2"),
        ("Assistant 1: 8\nAssistant 2: 6\nAssistant 1 gave more detail.", (8, 6), "1"),
        ("Assistant 1 receives a score of 5 out of 10.\nAssistant 2 receives a 9.", (5, 9), "2"),
        ("Both are good.\nScore for Assistant 1 - 7\nScore for Assistant 2 - 7", (7, 7), "tie"),
    ],
)
def test_score_shapes(text: str, scores: tuple[float, float], winner: str) -> None:
    parsed = parse_scores(text)
    assert parsed.status == "ok"
    assert (parsed.score_1, parsed.score_2) == scores
    assert parsed.winner == winner


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "Both answers are helpful, but the first is more detailed than the second.",
        "-1 -1\nI could not evaluate.",  # FastChat's own marker of a failed review
        "8 11\nout of range",
        "8\nonly one score",
        "Assistant 1: 8\nnothing for the other",
    ],
)
def test_scores_that_cannot_be_read_are_unparsed(text: str | None) -> None:
    parsed = parse_scores(text)
    assert parsed.status == "unparsed"
    assert parsed.winner is None and parsed.problem


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ("Assistant A explains more clearly.\n\n[[A]]", "1"),
        ("B is better. Final verdict: [[B]]", "2"),
        ("Both are equally good. [[C]]", "tie"),
        ("The appendix format: [A]", "1"),
        ("Second one wins.\n[B]", "2"),
        ('I must output "[[A]]" if A is better... After comparing: [[B]]', "2"),
        ("Both responses are equally accurate.\nTie", "tie"),
        ("Final verdict: tie", "tie"),
        ("[[tie]]", "tie"),
    ],
)
def test_verdict_shapes(text: str, winner: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.status == "ok" and parsed.winner == winner


@pytest.mark.parametrize("text", ["", "Both responses have strengths and weaknesses.", "8 7\nscores, no verdict"])
def test_verdicts_that_cannot_be_read_are_unparsed(text: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.status == "unparsed" and parsed.winner is None


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ("1\n\n### Reason: Response 1 is accurate.\n\n### Reference: Paris.</s>", "1"),
        ("\n2\n### Reason: more complete\n### Reference: An answer.", "2"),
        (" Tie\n\n### Reason: both equally good.\n\n### Reference: x", "tie"),
        ("Response 2\n### Reason: better", "2"),
    ],
)
def test_pandalm_shapes(text: str, winner: str) -> None:
    parsed = parse_pandalm(text)
    assert parsed.status == "ok" and parsed.winner == winner


def test_pandalm_keeps_reason_and_reference() -> None:
    parsed = parse_pandalm("1\n\n### Reason: Response 1 names the capital.\n\n### Reference: Paris is the capital.</s>")
    assert parsed.reason == "Response 1 names the capital."
    assert parsed.reference == "Paris is the capital."


@pytest.mark.parametrize("text", ["", "### Reason: no verdict first", "Both responses are good."])
def test_pandalm_without_a_verdict_is_unparsed(text: str) -> None:
    assert parse_pandalm(text).status == "unparsed"
