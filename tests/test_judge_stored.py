"""Judging stored answers (the Answers store): pairs by item id on a test set, missing answers listed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from judge_server import JudgeServer

from curation.cli import main
from curation.config import Settings
from curation.judges.run import JudgeRequest, JudgeRunError, run_comparison
from curation.store import Store
from curation.store.answers import AnswerRow


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    with JudgeServer() as running:
        yield running


def answer(model: str, item: str, output: str, decoding: str = "d1") -> AnswerRow:
    return AnswerRow(model, "vicuna80", item, decoding, output, "stop")


def test_stored_answers_are_judged_on_the_items_both_answered(settings: Settings, store: Store,
                                                              server: JudgeServer) -> None:
    store.answers.save([answer("curated", str(i), f"@score=9 curated {i}") for i in range(1, 6)])
    store.answers.save([answer("full", str(i), f"@score=4 full {i}") for i in range(1, 5)])
    request = JudgeRequest(judge="vicuna", a="curated", b="full", source="store", testset="vicuna80",
                           model="local-judge", base_url=server.base_url)
    summary = run_comparison(request, settings, store)
    assert (summary["n"], summary["win"]) == (4, 4) and server.calls() == 8
    assert summary["missing"]["b"] == 76 and summary["missing"]["a"] == 75  # vicuna80 has 80 items
    rows = store.judgments.rows(summary["run_id"])
    assert rows[0].instruction == "How can I improve my time management skills?"
    assert {r.category for r in rows} == {"generic"}
    assert summary["model_a"] == "curated" and summary["testset"] == "vicuna80"


def test_two_decodings_must_be_told_apart(settings: Settings, sqlite_store: Store, server: JudgeServer) -> None:
    sqlite_store.answers.save([answer("curated", "1", "x", "d1"), answer("curated", "1", "y", "d2"),
                               answer("full", "1", "z")])
    request = JudgeRequest(a="curated", b="full", source="store", testset="vicuna80", base_url=server.base_url)
    with pytest.raises(JudgeRunError, match="2 decodings"):
        run_comparison(request, settings, sqlite_store)
    request.decoding_a = "d2"
    assert run_comparison(request, settings, sqlite_store)["n"] == 1
    with pytest.raises(JudgeRunError, match="no stored answers of 'nobody'"):
        run_comparison(JudgeRequest(a="nobody", b="full", source="store", testset="vicuna80"), settings, sqlite_store)


def test_cli_from_store(settings: Settings, sqlite_store: Store, server: JudgeServer, tmp_path) -> None:
    sqlite_store.answers.save([answer("curated", "1", "@score=9 a"), answer("full", "1", "@score=2 b")])
    argv = ["--workspace", str(settings.workspace), "judge", "curated", "full", "--from-store", "--testset", "vicuna80",
            "--model", "local-judge", "--base-url", server.base_url, "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert (tmp_path / "out" / "summary.json").is_file()
