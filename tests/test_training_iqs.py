"""``python -m training iqs`` end to end on a tiny slice of the real data, in a subprocess.

The slice keeps pairs of every kind the metrics split on (expert longer, expert not longer, identical
once normalised) so each reported accuracy has pairs behind it; one epoch on a few pairs with one
thread keeps the run around ten seconds. It checks the command's wiring and its output directory,
not the model's quality (tests/test_iqs.py and benchmarks/iqs_accuracy.py do that on the shipped weights).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.iqs.data import DATA, POOL, load_pairs

REPO = Path(__file__).resolve().parent.parent
POOL_RECORDS = 24
ACCURACY_KEYS = (
    "valid_acc",
    "valid_acc_not_longer",
    "valid_acc_longer",
    "valid_acc_balanced",
    "valid_acc_not_longer_distinct",
)


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        check=False,  # the tests assert on the return code and show the output
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write_slice(src: Path, dst: Path, n_longer: int, n_not_longer: int) -> int:
    """Copy raw rows of a pairs CSV: the first longer, not-longer-distinct and identical pairs."""
    pairs = load_pairs(src)
    with src.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    longer = [i for i, p in enumerate(pairs) if not p.expert_not_longer][:n_longer]
    not_longer = [i for i, p in enumerate(pairs) if p.expert_not_longer and not p.identical][:n_not_longer]
    identical = [i for i, p in enumerate(pairs) if p.identical][:1]
    keep = sorted(longer + not_longer + identical)
    assert len(keep) == n_longer + n_not_longer + 1, "the real data should have pairs of every kind"
    with dst.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["src", "pos", "neg"])
        writer.writeheader()
        writer.writerows(rows[i] for i in keep)
    return len(keep)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("iqs_train")
    n_train = _write_slice(DATA / "APE_train_pairs.csv", tmp / "train.csv", n_longer=4, n_not_longer=3)
    n_valid = _write_slice(DATA / "APE_valid_pairs.csv", tmp / "valid.csv", n_longer=3, n_not_longer=3)
    # The full 9k pool would take minutes to score; the calibration only needs a median and a 10th percentile.
    pool = json.loads(POOL.read_text(encoding="utf-8"))[:POOL_RECORDS]
    (tmp / "pool.json").write_text(json.dumps(pool), encoding="utf-8")
    out = tmp / "out"
    # --limit 6 of the 7 train pairs left after the identical one is dropped; --batch-pairs 3 -> 2 steps.
    args = ["iqs", "--out", str(out), "--train", str(tmp / "train.csv"), "--valid", str(tmp / "valid.csv")]
    args += ["--pool", str(tmp / "pool.json"), "--epochs", "1", "--batch-pairs", "3", "--limit", "6"]
    args += ["--max-length", "128", "--threads", "1"]
    result = _run(*args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"out": out, "n_train": n_train, "n_valid": n_valid, "stdout": result.stdout}


def test_training_help_exits_zero() -> None:
    top = _run("--help", timeout=60)
    assert top.returncode == 0, top.stderr
    assert "iqs" in top.stdout
    command = _run("iqs", "--help", timeout=60)
    assert command.returncode == 0, command.stderr
    for option in ("--out", "--limit", "--epochs", "--threads", "--pool"):
        assert option in command.stdout


@pytest.mark.slow  # trains for a few steps and loads MiniLM three times
def test_writes_every_output_file(run: dict[str, Any]) -> None:
    names = {p.name for p in run["out"].iterdir()}
    assert names == {"iqs.safetensors", "config.json", "calibration.json", "metrics.json", "meaning.json", "README.md"}
    config = json.loads((run["out"] / "config.json").read_text(encoding="utf-8"))
    assert config["format"] == "iqs-minilm/1" and config["max_length"] == 128 and config["num_layers"] == 6


@pytest.mark.slow
def test_metrics_are_plausible(run: dict[str, Any]) -> None:
    metrics = json.loads((run["out"] / "metrics.json").read_text(encoding="utf-8"))
    shipped = metrics["shipped"]
    for key in ACCURACY_KEYS:
        assert 0.0 <= shipped[key] <= 1.0, key
    assert shipped["n_valid"] == run["n_valid"]
    assert shipped["n_identical"] == 1 and shipped["n_not_longer"] == 4  # 3 distinct + the identical pair
    assert 0.0 <= shipped["length_baseline_acc"] <= 1.0
    assert -1.0 <= shipped["spearman_score_vs_words_alpaca_pool"] <= 1.0
    quantiles = list(shipped["alpaca_pool_0_5_quantiles"].values())
    assert all(0.0 <= q <= 5.0 for q in quantiles) and quantiles == sorted(quantiles)
    assert metrics["train_pairs"] == 6 and metrics["train_pairs_dropped_identical"] == 1
    assert metrics["history"] and all(h["epoch"] == 1 and 0.0 <= h["valid_acc"] <= 1.0 for h in metrics["history"])
    assert metrics["checkpoint"]["epoch"] == 1
    assert metrics["command"].startswith("python -m training iqs --out ")


@pytest.mark.slow
def test_calibration_is_fitted_on_the_pool(run: dict[str, Any]) -> None:
    calibration = json.loads((run["out"] / "calibration.json").read_text(encoding="utf-8"))
    assert calibration["method"] == "score_0_5 = 5 * sigmoid((raw - a) / b)"
    assert math.isfinite(calibration["params"]["a"]) and calibration["params"]["b"] > 0
    assert calibration["fitted"]["records"] == POOL_RECORDS


@pytest.mark.slow
def test_model_card_is_filled_in(run: dict[str, Any]) -> None:
    card = (run["out"] / "README.md").read_text(encoding="utf-8")
    assert card.startswith("# IQS scorer")
    assert f"pairwise accuracy, {run['n_valid']} pairs" in card
    assert "python -m training iqs --out " in card
    assert "| `iqs.safetensors` |" in card
    assert not re.search(r"\{[a-z_0-9]+(:[^}]*)?\}", card), "unfilled placeholder in the card"


@pytest.mark.slow
def test_output_loads_as_a_scorer(run: dict[str, Any]) -> None:
    from curation.raters.iqs import IQSScorer

    scorer = IQSScorer.load(weights_dir=run["out"])
    raw = scorer.score(
        ["Name three primary colours.", "Translate to French.", "What is 12 times 7?"],
        ["", "Good morning", ""],
        ["Red, yellow and blue.", "Bonjour.", "84"],
    )
    assert raw.shape == (3,) and raw.dtype == np.float64 and np.all(np.isfinite(raw))
    scaled = scorer.to_0_5(raw)
    assert np.all((scaled >= 0.0) & (scaled <= 5.0))
    assert scorer.version.startswith("iqs-minilm-")
