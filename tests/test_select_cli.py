"""``python -m curation select`` and ``map``: rated files and workspace datasets, export, manifests, rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from curation.cli import main
from curation.config import Settings
from curation.records import Record
from curation.store import RatingRow, Store

TOPICS = ("python code", "poem writing", "soup recipe")


def rated_rows(n: int = 30) -> list[dict]:
    rows = []
    for i in range(n):
        topic = TOPICS[i % 3]
        rows.append(
            {
                "instruction": f"Question {i} about {topic}",
                "input": "",
                "output": f"An answer on {topic}, number {i}.",
                "category": ["open_qa", "brainstorming"][i % 2],
                "score": round((i * 7 % 10) / 2, 1),
                "rater": "llm",
                "rater_version": "gpt-4:accuracy:v1",
            }
        )
    rows[5]["score"] = None  # an unparsed rating: no score
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(settings: Settings, *args: str) -> int:
    return main(["--workspace", str(settings.workspace), *args])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_threshold_writes_the_kept_rows_with_reasons_and_a_manifest(tmp_path: Path, settings: Settings, capsys) -> None:
    rated = write_jsonl(tmp_path / "rated.jsonl", rated_rows())
    out = tmp_path / "kept.jsonl"
    assert cli(settings, "select", str(rated), "--method", "threshold", "--tau", "3.5", "--out", str(out)) == 0
    rows = read_jsonl(out)
    expected = [r for r in rated_rows() if r["score"] is not None and r["score"] >= 3.5]
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in expected]
    assert all(r["keep"] is True and r["reason"] == f"score {r['score']:g} ≥ τ 3.5" for r in rows)
    manifest = json.loads((tmp_path / "kept.jsonl.manifest.json").read_text())
    assert manifest["rater"] == {"rater": "llm", "rater_version": "gpt-4:accuracy:v1", "field": "score"}
    assert manifest["counts"]["kept"] == len(expected) and manifest["export"]["rows"] == len(expected)
    printed = capsys.readouterr().out
    assert f"threshold (tau=3.5): kept {len(expected)} of 30" in printed and "open_qa" in printed


def test_all_writes_every_row_and_random_is_seeded(tmp_path: Path, settings: Settings) -> None:
    rated = write_jsonl(tmp_path / "rated.jsonl", rated_rows())
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        assert (
            cli(
                settings,
                "select",
                str(rated),
                "--method",
                "random",
                "--size",
                "7",
                "--seed",
                "11",
                "--out",
                str(out),
                "--all",
            )
            == 0
        )
    rows = read_jsonl(first)
    assert len(rows) == 30 and sum(r["keep"] for r in rows) == 7
    assert [r["keep"] for r in rows] == [r["keep"] for r in read_jsonl(second)]
    assert rows[0]["reason"].endswith("random sample of 7 (seed 11)")


def test_rebuild_from_the_manifest_gives_the_same_rows(tmp_path: Path, settings: Settings, capsys) -> None:
    rated = write_jsonl(tmp_path / "rated.jsonl", rated_rows())
    out, again = tmp_path / "kept.parquet", tmp_path / "again.json"
    cli(settings, "select", str(rated), "--method", "quota", "--quota", "open_qa=3,brainstorming=2", "--out", str(out))
    manifest = tmp_path / "kept.parquet.manifest.json"
    assert cli(settings, "select", str(rated), "--rebuild", str(manifest), "--out", str(again)) == 0
    first = pd.read_parquet(out)
    second = json.loads(again.read_text())
    assert first["id"].tolist() == [r["id"] for r in second] and len(second) == 5
    other = write_jsonl(tmp_path / "other.jsonl", rated_rows()[:-1])
    capsys.readouterr()
    assert cli(settings, "select", str(other), "--rebuild", str(manifest)) == 1
    assert "not the data the selection was made from" in capsys.readouterr().err


def test_mistakes_are_one_sentence_and_exit_1(tmp_path: Path, settings: Settings, capsys) -> None:
    unrated = write_jsonl(tmp_path / "plain.jsonl", [{"instruction": "a", "output": "b"}])
    assert cli(settings, "select", str(unrated), "--method", "threshold", "--tau", "3") == 1
    assert "no row has a numeric 'score' field; rate it first" in capsys.readouterr().err
    rated = write_jsonl(tmp_path / "rated.jsonl", rated_rows())
    assert cli(settings, "select", str(rated), "--method", "car", "--n1", "3") == 1
    assert "the car method needs n2" in capsys.readouterr().err
    assert cli(settings, "select", str(rated), "--method", "quota", "--quota", "open_qa=many") == 1
    assert "must look like CATEGORY=N" in capsys.readouterr().err
    assert (
        cli(settings, "select", str(rated), "--method", "random", "--size", "3", "--out", str(tmp_path / "x.txt")) == 1
    )
    assert "cannot tell the export format" in capsys.readouterr().err


def test_a_workspace_dataset_uses_stored_ratings_and_overrides_and_saves_the_selection(
    tmp_path: Path, store: Store, settings: Settings, capsys
) -> None:
    records = [Record(r["instruction"], "", r["output"], r["category"]) for r in rated_rows()]
    info = store.datasets.create("pool", records)
    store.ratings.save(
        [
            RatingRow(rec.id, "llm", "v2", "ok", row["score"])
            for rec, row in zip(records, rated_rows())
            if row["score"] is not None
        ]
    )
    store.overrides.add(info.id, records[1].id, "keep", "alice", "rare skill")
    out = tmp_path / "kept.jsonl"
    args = [
        "select",
        "--dataset",
        "pool",
        "--rater",
        "llm",
        "--method",
        "threshold",
        "--tau",
        "4",
        "--out",
        str(out),
        "--save",
        "tau-4",
        "--user",
        "alice",
    ]
    if store.db.dialect == "postgresql":
        args = ["--database-url", store.url, *args]
    assert cli(settings, *args) == 0
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert rows[records[1].id]["reason"] == "kept by alice: rare skill" and rows[records[1].id]["decided_by"] == "alice"
    [saved] = store.selections.all(info.id)
    assert saved.name == "tau-4" and saved.created_by == "alice" and saved.n_kept == len(rows)
    assert saved.manifest["rater"]["rater_version"] == "v2" and saved.manifest["overrides"][0]["user"] == "alice"
    assert "1 human overrides applied" in capsys.readouterr().out


@pytest.mark.slow
def test_car_and_map_embed_cluster_and_agree(tmp_path: Path, settings: Settings) -> None:
    rated = write_jsonl(tmp_path / "rated.jsonl", rated_rows())
    out, the_map = tmp_path / "car.jsonl", tmp_path / "map.parquet"
    assert (
        cli(settings, "select", str(rated), "--method", "car", "--n1", "4", "--n2", "1", "--out", str(out), "--all")
        == 0
    )
    rows = read_jsonl(out)
    assert len(rows) == 30 and {"keep", "reason", "cluster", "cluster_name"} <= set(rows[0])
    kept = [r for r in rows if r["keep"]]
    clusters = {r["cluster"] for r in rows}
    assert len(clusters) == 3  # k = ⌊√(30/2)⌋
    assert {r["cluster"] for r in kept if "of cluster" in r["reason"]} == clusters, "every cluster's best is kept"
    assert sum("top-" in r["reason"] and "by score" in r["reason"] for r in kept) == 4
    assert cli(settings, "map", str(rated), "--out", str(the_map)) == 0
    frame = pd.read_parquet(the_map)
    assert list(frame.columns) == ["id", "x", "y", "cluster", "cluster_name"] and len(frame) == 30
    by_id = {r["id"]: r["cluster"] for r in rows}
    assert all(by_id[i] == c for i, c in zip(frame["id"], frame["cluster"])), "map and CaR share the clusters"


def test_tau_uses_the_0_5_scale_of_the_studio_and_raw_on_request(settings: Settings, tmp_path: Path, capsys):
    rows = [{"instruction": f"Question {i}", "input": "", "output": f"Answer {i}", "score": float(i - 10),
             "score_0_5": (i - 10 + 10) / 4, "rater": "iqs", "rater_version": "v1"} for i in range(20)]
    rated = write_jsonl(tmp_path / "iqs.jsonl", rows)
    assert cli(settings, "select", str(rated), "--method", "threshold", "--tau", "4.5") == 0
    assert "kept 2 of 20" in capsys.readouterr().out  # 0–5 scores 4.5 and 4.75
    assert cli(settings, "select", str(rated), "--method", "threshold", "--tau", "4.5", "--raw") == 0
    assert "kept 5 of 20" in capsys.readouterr().out  # raw scores 5 … 9
