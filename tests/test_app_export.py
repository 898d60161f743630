"""Export page: the selection on screen elsewhere (τ from Explore), overrides applied last, balance, the
written file and manifest in the library's formats, and the empty states."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from studio_helpers import point_studio_at, rated_dataset, studio, table_with, toy_records


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    return sqlite_store


def kept(app) -> int:
    return int(next(m.value for m in app.metric if m.label == "Kept").replace(",", ""))


def written_files(settings) -> list:
    return sorted((settings.workspace / "exports").iterdir())


def test_the_tau_chosen_on_explore_is_exported_with_overrides_and_manifest(studio_env, settings):
    info = rated_dataset(studio_env, n=40)  # scores 0.0 … 3.9
    low = studio_env.datasets.records(info.id)[0]
    studio_env.overrides.add(info.id, low.id, "keep", user="ann", reason="worth keeping")
    app = studio("explore", person=("ann", "annotator"))
    tau_key = next(k for k in app.session_state if str(k).startswith("tau_"))
    app.slider(key=tau_key).set_value(3.0).run()
    app.switch_page("pages/export.py").run()
    assert app.number_input(key="export_tau").value == pytest.approx(3.0)
    assert kept(app) == 11  # ten at or above 3.0, plus the override
    assert next(m.value for m in app.metric if m.label == "Overrides applied") == "1"
    balance = table_with(app, "kind")
    assert balance.loc[balance["kind"] == "overall", "kept"].iloc[0] == 11
    app.button(key="export_write").click().run()
    assert not app.exception
    data, manifest_path = written_files(settings)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(rows) == 11 and {r["id"] for r in rows} >= {low.id}
    assert next(r for r in rows if r["id"] == low.id)["reason"] == "kept by ann: worth keeping"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["method"] == "threshold" and manifest["params"] == {"tau": 3.0}
    assert manifest["counts"]["kept"] == 11 and manifest["overrides"][0]["user"] == "ann"
    assert [d.label for d in app.get("download_button")] == [f"Download {data.stem}.zip (data + manifest)"]
    assert manifest["exported_by"] == "ann"


def test_writing_an_export_needs_an_account(studio_env, settings):
    rated_dataset(studio_env, n=12)
    app = studio("export")
    assert app.button(key="export_write").disabled
    assert "Sign in (sidebar) to write an export." in [c.value for c in app.caption]
    assert not (settings.workspace / "exports").exists()


def test_any_library_format_can_be_written(studio_env, settings):
    rated_dataset(studio_env, n=12)
    app = studio("export", person=("ann", "annotator"))
    app.number_input(key="export_tau").set_value(0.5).run()
    app.selectbox(key="export_format").select("parquet").run()
    app.checkbox(key="export_dropped").check().run()
    app.button(key="export_write").click().run()
    data = next(p for p in written_files(settings) if p.suffix == ".parquet")
    frame = pd.read_parquet(data)
    assert len(frame) == 12 and frame["keep"].sum() == 7


def test_without_scores_only_a_random_sample_is_offered(studio_env, settings):
    studio_env.datasets.create("plain", toy_records(20), created_by="tests")
    app = studio("export")
    assert "needs scores" in app.info[0].value
    app.radio(key="export_method").set_value("random").run()
    app.number_input(key="export_size").set_value(5).run()
    assert kept(app) == 5
    app.radio(key="export_method").set_value("car").run()
    assert "needs scores" in app.info[0].value


def test_car_needs_the_map_first(studio_env):
    rated_dataset(studio_env, n=12)
    app = studio("export")
    app.radio(key="export_method").set_value("car").run()
    assert "CaR needs the clusters" in app.info[0].value
    assert not app.get("download_button")


def test_a_second_export_shows_its_own_manifest_and_time(studio_env, settings):
    rated_dataset(studio_env, n=12)
    app = studio("export", person=("ann", "annotator"))
    app.button(key="export_write").click().run()
    first = json.loads(app.json[0].value)
    app.selectbox(key="export_format").select("csv").run()
    import time

    time.sleep(1.1)  # created_at has seconds: the second export is at least a second later
    app.button(key="export_write").click().run()
    second = json.loads(app.json[0].value)
    assert first["export"]["format"] == "jsonl" and second["export"]["format"] == "csv"
    assert second["created_at"] > first["created_at"]
    manifests = [p for p in written_files(settings) if p.name.endswith(".manifest.json")]
    assert len(manifests) == 2
    assert sorted(json.loads(p.read_text())["created_at"] for p in manifests) == [first["created_at"], second["created_at"]]


def test_the_export_page_adds_a_llama_factory_dataset_info_entry(studio_env, settings):
    rated_dataset(studio_env, n=12)
    app = studio("export", person=("ann", "annotator"))
    app.checkbox(key="export_dataset_info").check().run()
    app.button(key="export_write").click().run()
    assert not app.exception
    data = next(p for p in written_files(settings) if p.suffix == ".jsonl")
    info = json.loads((settings.workspace / "exports" / "dataset_info.json").read_text())
    assert info[data.stem]["file_name"] == data.name and info[data.stem]["formatting"] == "alpaca"
    assert any("LLaMA-Factory: dataset" in t.value for t in app.text)


def test_a_rater_without_a_0_5_score_brings_its_tau_to_export(studio_env):
    from curation.store import RatingRow

    records = toy_records(20)
    studio_env.datasets.create("raw-only", records, created_by="tests")
    studio_env.ratings.save([RatingRow(r.id, "iqs", "raw", "ok", score=i / 10) for i, r in enumerate(records)])
    app = studio("explore", person=("ann", "annotator"))
    tau_key = next(k for k in app.session_state if str(k).startswith("tau_"))
    app.slider(key=tau_key).set_value(1.5).run()
    app.switch_page("pages/export.py").run()
    assert app.number_input(key="export_tau").value == pytest.approx(1.5)
    assert kept(app) == 5
