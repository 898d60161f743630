"""The study's entry points: create from answer files, who may do what, results and export, the CLI."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from curation import studies
from curation.cli import main as cli
from curation.studies.interface import full_text
from curation.studio_auth import Forbidden, Person

METHODS = Path(__file__).resolve().parent.parent.parent.parent / "shared" / "METHODS.md"
LEAD, VOTER = Person("lea", "lead"), Person("vic", "voter")
METHODS_BLOCK = METHODS if METHODS.exists() else Path("/work/shared/METHODS.md")


def answers_file(path: Path, model: str, n: int, testset: str = "vicuna", skip: int | None = None) -> Path:
    rows = [{"id": f"v{i}", "instruction": f"Question {i}?", "input": "", "output": f"{model} says {i}",
             "category": "writing" if i % 2 else "math", "testset": testset if i < n - 2 else "koala"}
            for i in range(n) if i != skip]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def study_on(store, tmp_path: Path, **kwargs):
    model = studies.read_answers(answers_file(tmp_path / "curated.jsonl", "curated", 10))
    baseline = studies.read_answers(answers_file(tmp_path / "full.jsonl", "full", 10, skip=3))
    return studies.create_study(store, LEAD, "s", model, baseline, **kwargs)


def test_the_interface_text_is_methods_section_3():
    if not METHODS_BLOCK.exists():
        pytest.skip("the shared METHODS.md is not on this machine")
    text = METHODS_BLOCK.read_text()
    block = text.split("The interface text shown to each annotator:")[1].split("```")[1].strip("\n")
    assert full_text("<QUESTION>", "<ANSWER A>", "<ANSWER B>") == block


def test_a_study_pairs_the_items_both_models_answered_and_says_what_it_left_out(store, tmp_path):
    info, pairing = study_on(store, tmp_path, testsets=["vicuna"])
    assert info.n_items == 7  # 10 items, v3 missing on one side, v8/v9 on another test set
    assert pairing.only_model == ["v3"] and pairing.filtered_out == 2
    assert (info.model, info.baseline, info.votes_per_item) == ("curated", "full", 3)


def test_only_a_lead_creates_and_only_listed_voters_vote(store, tmp_path):
    model = studies.read_answers(answers_file(tmp_path / "a.jsonl", "a", 4))
    baseline = studies.read_answers(answers_file(tmp_path / "b.jsonl", "b", 4))
    with pytest.raises(Forbidden):
        studies.create_study(store, VOTER, "s", model, baseline)
    info, _ = studies.create_study(store, LEAD, "s", model, baseline, voters=["vic"])
    assert studies.next_item(store, VOTER, info) is not None
    with pytest.raises(Forbidden, match="not among"):
        studies.next_item(store, Person("zoe", "voter"), info)
    with pytest.raises(Forbidden):
        studies.export_votes(store, VOTER, info)
    assert studies.studies_for(store, Person("zoe", "voter")) == []


def test_a_bad_answers_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "instruction": "q", "output": "a"}\n{"id": "2", "instruction": "q"}\n')
    with pytest.raises(studies.StudyError, match=r"bad.jsonl:2: missing output"):
        studies.read_answers(path)


def vote_all(store, info, voters=("ann", "bob", "cid"), seed=0):
    rng = random.Random(seed)
    for name in voters:
        person = Person(name, "voter")
        while (shown := studies.next_item(store, person, info, rng)) is not None:
            # Everyone prefers the curated model's answer, wherever it is shown.
            studies.submit_vote(store, person, info, shown, shown.model_shown_as, comment="clearer")


def test_results_and_export_after_everyone_voted(store, tmp_path):
    info, _ = study_on(store, tmp_path, repeat_share=0.0)
    vote_all(store, info)
    found = studies.results(store, store.studies.get(info.id), {"judge-x": {"v0": "win", "v1": "lose"}}, n_boot=200)
    assert (found.wtl.win, found.wtl.tie, found.wtl.lose) == (9, 0, 0)
    assert found.overall.set_index("score").at["WS", "value"] == 2.0
    assert found.complete_items == 9 and found.kappa_items == 9
    assert set(found.per_category["category"]) == {"math", "writing"}
    assert found.voters.set_index("voter")["agreement"].eq(1.0).all()
    judge = found.judges.iloc[0]
    assert judge["agreement (with ties)"] == 0.5
    rows = list(csv.DictReader(io.StringIO(studies.export_votes(store, LEAD, info, "csv"))))
    assert len(rows) == 27 and {r["voter"] for r in rows} == {"ann", "bob", "cid"}
    first = rows[0]
    assert first["answer_a_model"] == ("curated" if first["model_shown_as"] == "A" else "full")
    assert first["shown_at"] and first["voted_at"] and first["comment"] == "clearer"
    lines = studies.export_votes(store, LEAD, info, "jsonl").splitlines()
    assert len(lines) == 27 and json.loads(lines[0])["voter"] == first["voter"]


def test_the_cli_creates_exports_and_reports(tmp_path, capsys):
    workspace = ["--workspace", str(tmp_path / "ws")]
    model = answers_file(tmp_path / "curated.jsonl", "curated", 6)
    baseline = answers_file(tmp_path / "full.jsonl", "full", 6)
    assert cli([*workspace, "study", "create", "cli-study", "--model", str(model), "--baseline", str(baseline),
                "--votes-per-item", "1", "--repeat-share", "0"]) == 0
    assert "6 items × 1 votes" in capsys.readouterr().out
    assert cli([*workspace, "study", "create", "cli-study", "--model", str(model), "--baseline", str(baseline)]) == 1
    assert "exists already" in capsys.readouterr().err
    from curation.config import load_settings
    from curation.store import Store

    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(tmp_path / "ws")}))
    vote_all(store, store.studies.get("cli-study"), voters=("ann",))
    judgments = tmp_path / "judge.jsonl"
    judgments.write_text("".join(json.dumps({"id": f"v{i}", "verdict": "A", "judge": "gpt-4"}) + "\n" for i in range(6)))
    out = tmp_path / "results.json"
    assert cli([*workspace, "study", "results", "cli-study", "--judgments", str(judgments), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "W/T/L from curated's side: 6/0/0" in printed and "gpt-4" in printed
    assert json.loads(out.read_text())["judges"][0]["agreement (with ties)"] == 1.0
    assert cli([*workspace, "study", "export", "cli-study", "--format", "jsonl", "--out", str(tmp_path / "v.jsonl")]) == 0
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 6
    store.close()


def test_results_compare_with_judge_runs_of_the_same_models_from_the_store(store, tmp_path):
    from curation.store.judgments import JudgmentRow, RunSpec

    info, _ = study_on(store, tmp_path, repeat_share=0.0)  # curated (studied) vs full, items v0..v9 minus v3
    vote_all(store, info)  # the humans prefer curated everywhere: majority win on every item

    def judged(key: str, model_a: str, model_b: str, winner: str) -> None:
        run = store.judgments.find_or_create_run(RunSpec(key, key, "vicuna", "gpt-4", "1", model_a, model_b, "vicuna"))
        store.judgments.save(run.id, [JudgmentRow(f"v{i}", order, i, "math", "q", "", "x", "y", "ok", winner=winner)
                                      for i in (0, 1, 2) for order in ("ab", "ba")])

    judged("same-way", "curated", "full", "a")  # A = curated wins: agrees with the humans
    judged("other-way", "full", "curated", "a")  # A = full wins: from curated's side a loss
    judged("unrelated", "x", "y", "a")  # other models: not compared
    table = studies.results(store, store.studies.get(info.id), n_boot=50).judges.set_index("judge")
    assert len(table) == 2
    same = table[table.index.str.startswith("#1 ")].iloc[0]
    other = table[table.index.str.startswith("#2 ")].iloc[0]
    assert (same["items"], same["agreement (with ties)"]) == (3, 1.0)
    assert (other["items"], other["agreement (with ties)"], other["agreement (without ties)"]) == (3, 0.0, 0.0)


def test_the_cli_takes_workspace_models_on_chosen_test_sets(tmp_path, capsys):
    workspace = tmp_path / "ws"
    for model in ("curated", "full"):
        for testset, n in (("vicuna", 4), ("koala", 2)):
            folder = workspace / "answers" / model
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{testset}.jsonl").write_text("".join(json.dumps(
                {"id": f"{testset}{i}", "instruction": f"Q{i}", "input": "", "output": f"{model} {i}"}) + "\n"
                for i in range(n)))
    assert cli(["--workspace", str(workspace), "study", "create", "ws", "--model", "curated", "--baseline", "full",
                "--testset", "koala"]) == 0
    assert "2 items × 3 votes, curated (studied) vs full" in capsys.readouterr().out
    assert cli(["--workspace", str(workspace), "study", "create", "none", "--model", "nobody", "--baseline", "full"]) == 1
    assert "no answers of 'nobody'" in capsys.readouterr().err


def test_a_study_from_the_answers_store_takes_the_test_set_questions(store):
    from curation.answers.items import answer_items
    from curation.store.answers import AnswerRow

    items = answer_items(store, ["vicuna80"])[:5]
    for model in ("curated", "full"):
        store.answers.save([AnswerRow(model, "vicuna80", item.item_id, "d1", f"{model} on {item.item_id}", "stop")
                            for item in items])
    store.answers.save([AnswerRow("full", "vicuna80", items[0].item_id, "d2", "other decoding", "stop")])
    assert studies.inputs.store_models(store) == {"curated": ["vicuna80"], "full": ["vicuna80"]}
    model = studies.answers_in_store(store, "curated", ["vicuna80"])
    baseline = studies.answers_in_store(store, "full")
    info, pairing = studies.create_study(store, LEAD, "from-store", model, baseline)
    assert info.n_items == 5 and not pairing.only_model
    frame = store.studies.items_frame(info.id, with_text=True).set_index("item_key")
    first = frame.loc[items[0].item_id]
    assert (first["instruction"], first["input"]) == (items[0].instruction, items[0].input)
    assert first["baseline_answer"] == f"full on {items[0].item_id}"  # the decoding with the most answers
    assert first["category"] == (items[0].category or "") and first["testset"] == "vicuna80"
    with pytest.raises(studies.StudyError, match="no answers of 'nobody'"):
        studies.answers_in_store(store, "nobody")
