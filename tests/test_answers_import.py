"""Published answer files (real excerpts in tests/data/answers) map onto the bundled test-set item ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.answers import import_answers
from curation.answers.importers import AnswerFileError
from curation.store import Store
from curation.studio_auth import Forbidden, Person

DATA = Path(__file__).resolve().parent / "data" / "answers"
REPO = Path(__file__).resolve().parent.parent
LEAD = Person("lena", "lead")

# file, test set, column, the model stored, the item ids expected in file order, the format detected
CASES = [
    ("fastchat_vicuna80_gpt35.jsonl", "vicuna80", None, "gpt-3.5-turbo:20230327", ["1", "2", "3", "4", "5"], "fastchat"),
    ("fastchat_mtbench80_alpaca1k.jsonl", "mtbench80", None, "llama-2-alpaca-1k-score-15-epoch", ["81", "82", "83"],
     "fastchat"),
    # AlpaGasus numbers Koala from 1 ("koala_1"), the bundled set from 0: the text decides, not the id.
    ("alpagasus_koala180.json", "koala180", "alpagasus2", "alpagasus2", [f"koala_{i}" for i in range(5)], "alpagasus"),
    ("alpagasus_selfinstruct252.json", "selfinstruct252", "alpaca2", "alpaca2",
     [f"user_oriented_task_{i}" for i in range(3)], "alpagasus"),
    ("cherry_vicuna_wrap.json", "vicuna80", "Answer1", "cherry-5pct", ["1", "2", "3", "4", "5"], "cherry"),
    # Cherry's Self-Instruct file keeps the instruction without its input.
    ("cherry_sinstruct_wrap.json", "selfinstruct252", "Answer2", "alpaca-7b",
     [f"user_oriented_task_{i}" for i in range(3)], "cherry"),
    ("alpaca_eval_vicuna80_alpaca13b.json", "vicuna80", None, "alpaca-13b", ["1", "2", "3", "4"], "alpaca_eval"),
    ("selfinstruct252_davinci003_predictions.jsonl", "selfinstruct252", None, "text-davinci-003",
     [f"user_oriented_task_{i}" for i in range(3)], "self-instruct"),
]


@pytest.mark.parametrize(("name", "testset", "column", "model", "ids", "fmt"), CASES, ids=[c[0] for c in CASES])
def test_each_format_maps_to_the_test_set_ids(store: Store, name: str, testset: str, column: str | None, model: str,
                                              ids: list[str], fmt: str) -> None:
    given_model = None if model.startswith(("gpt-3.5", "llama-2", "alpagasus2", "alpaca2", "alpaca-13b")) else model
    summary = import_answers(DATA / name, store, LEAD, testset, model=given_model, column=column)
    assert (summary.format, summary.model_id, summary.matched, summary.added) == (fmt, model, len(ids), len(ids))
    stored = store.answers.of(model, testset)
    assert [a.item_id for a in stored] == ids
    expected_first = _first_answer(DATA / name, column)
    assert stored[0].output == expected_first.strip()
    assert {a.finish_reason for a in stored} == {"unknown"} and stored[0].source == f"imported:{name}"
    # The same file again adds nothing and loses nothing.
    assert import_answers(DATA / name, store, LEAD, testset, model=given_model, column=column).added == 0


def _first_answer(path: Path, column: str | None) -> str:
    text = path.read_text()
    if path.suffix == ".jsonl":
        row = json.loads(text.splitlines()[0])
        return row.get("text") or (row["choices"][0]["turns"][0] if "choices" in row else row["response"])
    data = json.loads(text)
    rows = data["data"] if isinstance(data, dict) else data
    return rows[0][column] if column else rows[0]["output"]


def test_mt_bench_keeps_the_second_turn(sqlite_store: Store) -> None:
    import_answers(DATA / "fastchat_mtbench80_alpaca1k.jsonl", sqlite_store, LEAD, "mtbench80")
    first = sqlite_store.answers.of("llama-2-alpaca-1k-score-15-epoch", "mtbench80")[0]
    assert len(first.meta["turns"]) == 2 and first.meta["turns"][0] == first.output


def test_files_that_do_not_fit_are_refused_with_the_reason(sqlite_store: Store, tmp_path: Path) -> None:
    with pytest.raises(AnswerFileError, match=r"--column \(Answer1, Answer2\)"):
        import_answers(DATA / "cherry_vicuna_wrap.json", sqlite_store, LEAD, "vicuna80", model="x")
    with pytest.raises(AnswerFileError, match="5 of 5 answers match no item of koala180"):
        import_answers(DATA / "cherry_vicuna_wrap.json", sqlite_store, LEAD, "koala180", model="x", column="Answer1")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question_id": 1, "text": "fine"}\n{"question_id": 2, "text": \n')
    with pytest.raises(AnswerFileError, match="broken.jsonl:2: invalid JSON"):
        import_answers(broken, sqlite_store, LEAD, "vicuna80", model="x")
    with pytest.raises(Forbidden):
        import_answers(DATA / "fastchat_vicuna80_gpt35.jsonl", sqlite_store, Person("v", "voter"), "vicuna80")
    assert sqlite_store.answers.sets() == []  # nothing half-imported


def test_unmatched_rows_are_reported_when_allowed(sqlite_store: Store, tmp_path: Path) -> None:
    rows = json.loads((DATA / "alpaca_eval_vicuna80_alpaca13b.json").read_text())
    rows.append({"instruction": "A question no test set asks", "output": "…", "generator": "alpaca-13b"})
    path = tmp_path / "model_outputs.json"
    path.write_text(json.dumps(rows))
    summary = import_answers(path, sqlite_store, LEAD, "vicuna80", allow_unmatched=True)
    assert (summary.matched, summary.added) == (4, 4)
    assert summary.unmatched == ["model_outputs.json item 4: question 'A question no test set asks' is not in the test set"]


def test_cli_imports_and_lists(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    base = [sys.executable, "-m", "curation", "--workspace", str(workspace)]
    done = subprocess.run(base + ["answers", "import", str(DATA / "cherry_vicuna_wrap.json"), "--testset", "vicuna80",
                                  "--model", "cherry-5pct", "--column", "Answer1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "5 matched to vicuna80 items, 5 stored as model 'cherry-5pct'" in done.stdout
    listed = subprocess.run(base + ["answers", "list"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert "cherry-5pct" in listed.stdout and "imported:cherry_vicuna_wrap.json" in listed.stdout
    refused = subprocess.run(base + ["answers", "import", str(DATA / "cherry_vicuna_wrap.json"), "--testset",
                                     "vicuna80"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 1 and "choose one with --column" in refused.stderr


def test_an_answer_set_exports_to_the_workspace_answer_files(tmp_path: Path) -> None:
    """`answers export` writes <workspace>/answers/<model>/<testset>.jsonl, the files judges and studies read."""
    from curation.judges.pairs import read_answers

    workspace = tmp_path / "workspace"
    base = [sys.executable, "-m", "curation", "--workspace", str(workspace), "answers"]
    for command in (["import", str(DATA / "fastchat_vicuna80_gpt35.jsonl"), "--testset", "vicuna80"],
                    ["export", "gpt-3.5-turbo:20230327", "--testset", "vicuna80"]):
        done = subprocess.run(base + command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    answers = read_answers(workspace / "answers" / "gpt-3.5-turbo-20230327" / "vicuna80.jsonl")
    assert [a.id for a in answers] == ["1", "2", "3", "4", "5"]
    assert answers[0].instruction == "How can I improve my time management skills?"
