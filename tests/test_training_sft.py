"""Fine-tuning: a real SFTTrainer + PEFT run on a tiny random-initialised llama (fast on a CPU).

The tiny model and its tokenizer are built from a config into a temporary folder (training.sft.tiny); the
64 examples are the first ones of the bundled Alpaca pool. What is checked: the loss falls, the adapter
saves and loads, the registry row says what happened, the loss mask check refuses a run that cannot
learn, and the template puts the loss on the response only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.alpaca import render_prompt
from curation.formats import read_file
from curation.store import Store
from training.sft import data as sft_data
from training.sft.files import read_json, read_metrics
from training.sft.run import RunConfig, train
from training.sft.tiny import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"


def first_records(n: int) -> list:
    return read_file(POOL).records[:n]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base model folder, a 64-example JSONL file)."""
    folder = tmp_path_factory.mktemp("tiny")
    records = first_records(64)
    build_tiny_model(folder / "model", [render_prompt(r.instruction, r.input) + r.output for r in records])
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n"
                            for r in records), encoding="utf-8")
    return folder / "model", data


@pytest.fixture
def workspace_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The run records into this workspace's store, as the CLI does with CURATION_WORKSPACE."""
    workspace = tmp_path / "workspace"
    monkeypatch.setenv("CURATION_WORKSPACE", str(workspace))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CURATION_CONFIG", raising=False)
    return workspace


def open_store(workspace: Path) -> Store:
    return Store(f"sqlite:///{(workspace / 'studio.db').resolve()}")


def test_the_prompt_is_masked_and_the_response_and_eos_carry_the_loss(tiny: tuple[Path, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny[0])
    record = next(r for r in first_records(64) if r.input)
    row = sft_data.tokenize_example(record, tokenizer, max_length=512)
    labelled = [t for t in row["labels"] if t != sft_data.IGNORE]
    assert labelled[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(labelled[:-1]) == record.output
    prompt_len = row["labels"].index(labelled[0])
    assert tokenizer.decode(row["input_ids"][:prompt_len]) == render_prompt(record.instruction, record.input)
    assert row["length"] == len(row["input_ids"]) == len(row["labels"])


@pytest.mark.slow
def test_a_run_on_64_examples_lowers_the_loss_saves_a_loadable_adapter_and_records_it(
    tiny: tuple[Path, Path], workspace_env: Path, tmp_path: Path
) -> None:
    base, data = tiny
    out = tmp_path / "run"
    overrides = {"learning_rate": 5e-3, "epochs": 3, "global_batch": 8, "per_device_batch": 8, "max_length": 160}
    result = train(RunConfig(data=str(data), out_dir=str(out), base_model=str(base), overrides=overrides, role="file"))

    rows = [row for row in read_metrics(out) if "loss" in row]
    assert result.status == "done" and len(rows) == result.steps == 3 * 8  # 61 train examples / 8 = 8 steps
    first, last = sum(r["loss"] for r in rows[:4]) / 4, sum(r["loss"] for r in rows[-4:]) / 4
    assert last < first - 0.05, (first, last)
    assert all({"step", "loss", "learning_rate", "epoch", "tokens_seen", "eta_s", "time"} <= set(r) for r in rows)
    assert rows[-1]["tokens_seen"] > rows[0]["tokens_seen"] > 0
    assert any("eval_loss" in row for row in read_metrics(out))

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out / "adapter")
    plain = AutoModelForCausalLM.from_pretrained(base)
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, plain(ids).logits)

    store = open_store(workspace_env)
    [model] = store.models.all()
    assert (model.status, model.method, model.preset, model.role) == ("done", "lora", "local", "file")
    assert (model.base_model, model.adapter_path, model.out_dir) == (str(base), str(out / "adapter"), str(out))
    assert model.n_examples == 64 and model.steps == 24 and model.global_batch == 8
    assert model.overrides == overrides and model.final_loss == pytest.approx(rows[-1]["loss"])
    assert model.eval_loss is not None and model.tokens_seen == rows[-1]["tokens_seen"]
    assert model.duration_s > 0 and "process" in model.machine and model.finished_at is not None
    assert model.data_hash == sft_data.data_hash(read_file(data).records, None)
    assert read_json(out / "result.json")["model_id"] == model.id
    store.close()


def test_a_template_that_leaves_no_response_token_is_refused_before_the_first_step(
    tiny: tuple[Path, Path], workspace_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.__main__ import main

    out = tmp_path / "run"
    # The Alpaca preamble alone is longer than 16 tokens: no response token survives the cut.
    code = main(["sft", "--data", str(tiny[1]), "--base-model", str(tiny[0]), "--out", str(out), "--max-length", "16"])
    error = capsys.readouterr().err
    assert code == 2
    assert "Refusing to train: batch 1 has no response token carrying loss" in error and "--max-length" in error
    assert not (out / "metrics.jsonl").exists() and not (out / "adapter").exists()
    store = open_store(workspace_env)
    [model] = store.models.all()
    assert model.status == "failed" and "LossMaskError" in model.details["error"]
    store.close()


def test_the_loss_mask_check_names_the_batch_without_response_tokens(tiny: tuple[Path, Path]) -> None:
    import torch

    ok = {"labels": torch.tensor([[-100, 5, 6]])}
    empty = {"labels": torch.full((2, 3), -100)}
    assert sft_data.check_loss_mask([ok, ok], 512) == 2
    with pytest.raises(sft_data.LossMaskError, match="batch 2 has no response token"):
        sft_data.check_loss_mask([ok, empty, ok], 512)


def test_a_template_putting_the_response_in_the_prompt_leaves_nothing_to_learn(tiny: tuple[Path, Path]) -> None:
    """A wrong template (the answer rendered into a long prompt) pushes the response past max_length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny[0])
    records = first_records(8)
    def wrong(instruction: str, input: str) -> str:
        return render_prompt(instruction, input) * 20

    dataset = sft_data.tokenize_records(records, tokenizer, 128, render=wrong)
    assert sft_data.response_free_ids(dataset) == [r.id for r in records]


def test_a_selection_export_is_read_with_its_manifest_and_rows_marked_dropped_are_not_trained(tmp_path: Path) -> None:
    from curation.config import load_settings
    from curation.select import export_selection, select_records

    records = first_records(30)
    run = select_records(records, "random", {"size": 10, "seed": 3}, load_settings(env={}), dataset_name="alpaca")
    exported = export_selection(records, run.selection, tmp_path / "kept.jsonl", run.manifest, include_dropped=True)
    loaded = sft_data.load_training_data(exported.path)
    assert loaded.manifest["method"] == "random" and len(loaded.records) == 10
    assert {r.id for r in loaded.records} == set(run.kept_ids)
    assert "20 rows marked keep=false" in loaded.notes[0] and "random selection of alpaca" in loaded.source
    again = sft_data.load_training_data(export_selection(records, run.selection, tmp_path / "k2.jsonl", run.manifest).path)
    assert again.data_hash == loaded.data_hash  # the same selection, whatever the export's details


def test_a_missing_or_empty_file_gets_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        sft_data.load_training_data(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="no usable example"):
        sft_data.load_training_data(tmp_path / "empty.jsonl")
