"""``python -m training iqs --folds K``: the grouped split, and the whole command on a tiny slice of the real pairs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from test_training_iqs import POOL_RECORDS, _run, _write_slice

from curation import explain
from training.iqs.data import DATA, POOL, Pair, load_pairs
from training.iqs.folds import group_folds, summarize


def real_pairs() -> list[Pair]:
    return load_pairs(DATA / "APE_train_pairs.csv") + load_pairs(DATA / "APE_valid_pairs.csv")


def test_a_pair_and_its_instruction_never_straddle_folds() -> None:
    pairs = real_pairs()
    # Repeat some instructions with another revision: the grouping must keep each instruction in one fold.
    pairs += [Pair(p.prompt, p.neg, p.pos) for p in pairs[:40]]
    fold_of = group_folds(pairs, 5, seed=42)
    assert set(fold_of) == set(range(5))
    for fold in range(5):
        test = {(p.prompt, p.pos, p.neg) for p, f in zip(pairs, fold_of) if f == fold}
        train = [p for p, f in zip(pairs, fold_of) if f != fold]
        train_prompts = {p.prompt for p in train}
        train_texts = {(p.prompt, side) for p in train for side in (p.pos, p.neg)}
        assert not any(prompt in train_prompts for prompt, _, _ in test)
        assert not any((prompt, side) in train_texts for prompt, pos, neg in test for side in (pos, neg))
    sizes = np.bincount(fold_of)
    assert sizes.max() - sizes.min() <= 2  # balanced
    assert list(group_folds(pairs, 5, seed=42)) == list(fold_of)  # reproducible from the seed
    assert list(group_folds(pairs, 5, seed=7)) != list(fold_of)


def test_fold_arguments_are_checked() -> None:
    pairs = real_pairs()[:3]
    with pytest.raises(ValueError, match="at least 2"):
        group_folds(pairs, 1, seed=0)
    with pytest.raises(ValueError, match="only 3 distinct instructions"):
        group_folds(pairs, 4, seed=0)


def test_summary_is_mean_and_sample_sd() -> None:
    folds = [{"valid_acc": a, "valid_acc_not_longer": 0.5, "valid_acc_balanced": 0.6, "length_baseline_acc": 0.8,
              "length_baseline_acc_not_longer": 0.2} for a in (0.8, 0.9)]
    summary = summarize(folds)
    assert summary["valid_acc"]["mean"] == pytest.approx(0.85)
    assert summary["valid_acc"]["sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))


@pytest.fixture(scope="module")
def tiny_cv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-fold CV on a tiny slice of the real pairs (trains two tiny MiniLM folds)."""
    tmp = tmp_path_factory.mktemp("iqs_cv")
    _write_slice(DATA / "APE_train_pairs.csv", tmp / "train.csv", n_longer=4, n_not_longer=3)
    _write_slice(DATA / "APE_valid_pairs.csv", tmp / "valid.csv", n_longer=3, n_not_longer=3)
    pool = json.loads(POOL.read_text(encoding="utf-8"))[:POOL_RECORDS]
    (tmp / "pool.json").write_text(json.dumps(pool), encoding="utf-8")
    data = ["--train", str(tmp / "train.csv"), "--valid", str(tmp / "valid.csv"), "--pool", str(tmp / "pool.json"),
            "--epochs", "1", "--batch-pairs", "3", "--max-length", "96", "--threads", "1"]
    out = tmp / "cv"
    result = _run("iqs", "--folds", "2", "--out", str(out), *data, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"tmp": tmp, "out": out, "data": data, "stdout": result.stdout}


@pytest.mark.slow
def test_cross_validation_runs_end_to_end_on_a_tiny_slice(tiny_cv: dict[str, Any]) -> None:
    out = tiny_cv["out"]
    cv = json.loads((out / "cv.json").read_text(encoding="utf-8"))
    assert cv["k"] == 2 and cv["pairs"] == 15 and [f["fold"] for f in cv["folds"]] == [1, 2]
    assert sum(f["n_test"] for f in cv["folds"]) == 15  # every pair tested exactly once
    for fold in cv["folds"]:
        assert 0.0 <= fold["valid_acc"] <= 1.0 and 0.0 <= fold["length_baseline_acc"] <= 1.0
    for key in ("valid_acc", "valid_acc_not_longer", "length_baseline_acc"):
        assert set(cv["summary"][key]) == {"mean", "sd"}
    assert cv["by_step"] and "| mean ± sd |" in tiny_cv["stdout"]
    oof = cv["out_of_fold"]  # each pair scored once, by the model of the fold that held it out
    assert oof["fold"].count(1) == cv["folds"][0]["n_test"] and len(oof["expert_0_5"]) == 15
    assert all(0.0 <= v <= 5.0 for v in oof["expert_0_5"] + oof["original_0_5"])
    first = [i for i, f in enumerate(oof["fold"]) if f == 1]
    wins = [0.5 if oof["identical"][i] else float(oof["expert_raw"][i] > oof["original_raw"][i]) for i in first]
    assert sum(wins) / len(first) == pytest.approx(cv["folds"][0]["valid_acc"])  # the same model, same batches
    assert [t["tau"] for t in cv["thresholds"]] == [3.5, 4.0, 4.5]
    plain = next(r for r in cv["length_term"] if r["coef"] == 0.0)  # no length term: the CV's own accuracy
    assert plain["valid_acc"] == pytest.approx(sum(f["valid_acc"] * f["n_test"] for f in cv["folds"]) / 15)
    assert {p.name for p in out.iterdir()} == {"cv.json"}  # cross-validation exports no model


@pytest.mark.slow
def test_the_shipped_model_trains_on_all_pairs_and_says_what_tau_means_from_the_cv(tiny_cv: dict[str, Any]) -> None:
    out = tiny_cv["tmp"] / "shipped"
    result = _run("iqs", "--all-pairs", "--cv", str(tiny_cv["out"] / "cv.json"), "--out", str(out),
                  *tiny_cv["data"], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_pairs"] == 13 and metrics["train_pairs_dropped_identical"] == 2  # 15 minus one per split
    assert metrics["valid_in_training"] is True
    assert metrics["checkpoint"]["step"] == metrics["history"][-1]["step"]  # the last step, not a chosen one
    meaning = json.loads((out / "meaning.json").read_text(encoding="utf-8"))
    cv = json.loads((out / "cv.json").read_text(encoding="utf-8"))  # copied beside the weights
    assert meaning["pairs"] == 15 and meaning["thresholds"] == cv["thresholds"]
    assert sorted(meaning["expert_0_5"]) == sorted(cv["out_of_fold"]["expert_0_5"])
    text = explain.threshold_meaning(out, 4.5)
    share = cv["thresholds"][2]["expert_share"]
    assert text is not None and f"{share:.0%} of expert-revised" in text and "never saw it" in text
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Trained on all 13 distinct pairs" in card and "in-sample" in card
    assert "## Cross-validation" in card and "| mean ± sd |" in card and "{" not in card.split("## Files")[0]


@pytest.mark.slow
def test_only_some_folds_can_be_run_on_the_same_split(tiny_cv: dict[str, Any]) -> None:
    out = tiny_cv["tmp"] / "fold2"
    result = _run("iqs", "--folds", "2", "--only-folds", "2", "--out", str(out), *tiny_cv["data"], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    part = json.loads((out / "cv.json").read_text(encoding="utf-8"))
    whole = json.loads((tiny_cv["out"] / "cv.json").read_text(encoding="utf-8"))
    assert [f["fold"] for f in part["folds"]] == [2]
    assert part["folds"][0]["n_test"] == whole["folds"][1]["n_test"] == part["tested_pairs"]  # the same split
    assert set(part["out_of_fold"]["fold"]) == {2} and len(part["out_of_fold"]["expert_raw"]) == part["tested_pairs"]
    refused = _run("iqs", "--all-pairs", "--cv", str(out / "cv.json"), "--out", str(tiny_cv["tmp"] / "no"),
                   *tiny_cv["data"], timeout=600)
    assert refused.returncode != 0 and "use a cross-validation over every fold" in refused.stderr
