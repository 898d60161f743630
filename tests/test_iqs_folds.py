"""``python -m training iqs --folds K``: the grouped split, and the whole command on a tiny slice of the real pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_training_iqs import _run, _write_slice

from training.iqs.data import DATA, Pair, load_pairs
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


@pytest.mark.slow  # trains two tiny folds on MiniLM
def test_cross_validation_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    _write_slice(DATA / "APE_train_pairs.csv", tmp_path / "train.csv", n_longer=4, n_not_longer=3)
    _write_slice(DATA / "APE_valid_pairs.csv", tmp_path / "valid.csv", n_longer=3, n_not_longer=3)
    out = tmp_path / "cv"
    result = _run("iqs", "--folds", "2", "--out", str(out), "--train", str(tmp_path / "train.csv"),
                  "--valid", str(tmp_path / "valid.csv"), "--epochs", "1", "--batch-pairs", "3",
                  "--max-length", "96", "--threads", "1", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cv = json.loads((out / "cv.json").read_text(encoding="utf-8"))
    assert cv["k"] == 2 and cv["pairs"] == 15 and [f["fold"] for f in cv["folds"]] == [1, 2]
    assert sum(f["n_test"] for f in cv["folds"]) == 15  # every pair tested exactly once
    for fold in cv["folds"]:
        assert 0.0 <= fold["valid_acc"] <= 1.0 and 0.0 <= fold["length_baseline_acc"] <= 1.0
    for key in ("valid_acc", "valid_acc_not_longer", "length_baseline_acc"):
        assert set(cv["summary"][key]) == {"mean", "sd"}
    assert cv["by_step"] and "| mean ± sd |" in result.stdout
    assert {p.name for p in out.iterdir()} == {"cv.json"}  # cross-validation exports no model
