"""Map page: empty state with the map job, the scatter from the cached map, box/lasso selection listed,
n1/n2 sizing CaR's selection live (the same ids select_car keeps), and the cluster list."""

from __future__ import annotations

import numpy as np
import pytest
from studio_helpers import point_studio_at, rated_dataset, studio, table_with, toy_records

from curation import explore, jobs
from curation.cluster import build_map
from curation.config import load_settings
from curation.select import make_pool, select_car
from curation.store import Store
from curation.studio_auth import Person

N = 18  # below UMAP's minimum: the map is a PCA projection, so this file needs no numba warm-up


@pytest.fixture(scope="module")
def mapped_workspace(tmp_path_factory):
    """One workspace for the module: a rated dataset whose map was built once (real embeddings)."""
    workspace = tmp_path_factory.mktemp("map") / "workspace"
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)})
    store = Store.open(settings)
    info = rated_dataset(store, "mapped", n=N)
    store.datasets.create("unmapped", toy_records(5, seed=3), created_by="tests")
    the_map = build_map(store.datasets.records(info.id), settings)
    yield settings, store, info, the_map
    store.close()


@pytest.fixture
def studio_env(monkeypatch, mapped_workspace):
    settings, store, _, _ = mapped_workspace
    point_studio_at(monkeypatch, settings, store)
    return mapped_workspace


def open_map(dataset: str = "mapped", person=None):
    app = studio("map", person=person)
    app.selectbox(key="dataset_map").select(dataset).run()
    assert not app.exception, app.exception
    return app


def slider_key(app, prefix: str) -> str:
    return next(k for k in app.session_state if str(k).startswith(prefix))


def test_without_a_map_the_page_offers_to_compute_it(studio_env):
    settings, store, _, _ = studio_env
    app = open_map("unmapped", person=("ann", "annotator"))
    assert "No map yet for 'unmapped'" in app.info[0].value
    app.button(key="map_compute").click().run()
    [job] = [j for j in jobs.all_jobs(store, settings, kind="map") if j.params.get("dataset") == "unmapped"]
    jobs.cancel(store, settings, job.id, by=Person("ann", "annotator"))
    assert job.created_by == "ann"
    # The worker it started stops at its next progress report (or never claims the cancelled job).
    assert jobs.wait(store, settings, job.id, timeout_s=240).status in ("cancelled", "done")


def test_the_map_shows_every_point_and_the_clusters(studio_env):
    the_map = studio_env[3]
    app = open_map()
    chart = app.get("plotly_chart")[0]
    assert f"{N:,} of {N:,} examples on the map" in app.caption[-1].value or any(
        f"{N:,} of {N:,} examples on the map" in c.value for c in app.caption)
    clusters = table_with(app, "mean_score")
    assert clusters["size"].sum() == N and set(clusters["name"]) == set(the_map["cluster_name"])
    assert chart.proto.spec  # the figure was sent


def test_a_lasso_selection_lists_the_selected_examples(studio_env):
    _, store, info, _ = studio_env
    app = open_map()
    app.session_state["map_chart"] = {"selection": {"points": [
        {"curve_number": 0, "point_index": 2}, {"curve_number": 0, "point_index": 5},
        {"curve_number": 1, "point_index": 0}],  # the highlight trace: not a selection of examples
        "point_indices": [2, 5], "box": [], "lasso": [{"x": [0, 1, 1], "y": [0, 0, 1]}]}}
    app.run()
    listed = table_with(app, "cluster")
    ids = store.datasets.frame(info.id, with_text=False)["id"].tolist()
    assert list(listed["id"]) == [ids[2], ids[5]]
    assert "**2 examples selected on the map**" in [m.value for m in app.markdown]


def test_n1_n2_size_the_car_selection_exactly_as_select_car_keeps(studio_env):
    _, store, info, the_map = studio_env
    app = open_map()
    app.slider(key=slider_key(app, f"car_n1_{info.id}")).set_value(3).run()
    app.slider(key=slider_key(app, f"car_n2_{info.id}")).set_value(1).run()
    shown = int(next(m.value for m in app.metric if m.label == "CaR selection").replace(",", ""))
    records = store.datasets.records(info.id)
    scores = np.array([i / 10 for i in range(N)])
    pool = make_pool(records, scores)
    pool["cluster"], pool["cluster_name"] = the_map["cluster"].to_numpy(), the_map["cluster_name"].to_numpy()
    assert shown == int(select_car(pool, 3, 1)["keep"].sum())
    assert table_with(app, "mean_score")["selected"].sum() == shown
    assert app.session_state["studio_car"]["n1"] == 3


def test_car_ranks_match_select_car_for_any_n1_n2():
    rng = np.random.default_rng(1)
    ids = np.array([f"{i:04x}" for i in range(300)], dtype=object)
    aligned = __import__("pandas").DataFrame({"id": ids, "cluster": rng.integers(0, 7, 300),
                                              "cluster_name": "c", "position": np.arange(300)})
    scores = rng.normal(size=300).round(1)  # ties on purpose: broken by id
    scores[::17] = np.nan
    ranks = explore.car_ranks(aligned, scores)
    pool = aligned[["id", "cluster", "cluster_name"]].assign(score=scores)
    for n1, n2 in [(0, 0), (10, 0), (0, 3), (25, 2), (300, 0)]:
        assert (ranks.keep(n1, n2) == select_car(pool, n1, n2)["keep"].to_numpy()).all()


def test_export_takes_n1_n2_from_the_map_and_writes_a_car_manifest(studio_env):
    settings, _, info, _ = studio_env
    app = open_map(person=("ann", "annotator"))  # writing an export needs an account
    app.slider(key=slider_key(app, f"car_n1_{info.id}")).set_value(4).run()
    app.slider(key=slider_key(app, f"car_n2_{info.id}")).set_value(1).run()
    on_map = next(m.value for m in app.metric if m.label == "CaR selection")
    app.switch_page("pages/export.py").run()
    assert not app.exception
    assert app.radio(key="export_method").value == "car"
    assert (app.number_input(key="export_n1").value, app.number_input(key="export_n2").value) == (4, 1)
    assert next(m.value for m in app.metric if m.label == "Kept") == on_map
    app.button(key="export_write").click().run()
    manifest_path = next((settings.workspace / "exports").glob("mapped-car-*.manifest.json"))
    manifest = __import__("json").loads(manifest_path.read_text())
    assert manifest["method"] == "car" and manifest["params"] == {"n1": 4, "n2": 1}
    assert manifest["counts"]["kept"] == int(on_map) and "clustering" in manifest


def lasso(app, points: list[int]):
    app.session_state["map_chart"] = {"selection": {
        "points": [{"curve_number": 0, "point_index": i} for i in points], "point_indices": points,
        "box": [], "lasso": [{"x": [0, 1, 1], "y": [0, 0, 1]}]}}
    return app.run()


def test_a_lasso_selection_is_dropped_with_one_reason_and_each_row_audited(studio_env):
    _, store, info, _ = studio_env
    ids = store.datasets.frame(info.id, with_text=False)["id"].tolist()
    viewer = lasso(open_map(), [1, 4, 7])
    assert next(b for b in viewer.get("form_submit_button")).disabled  # overriding needs an account
    app = lasso(open_map(person=("ann", "annotator")), [1, 4, 7])
    app.radio(key="map_override_decision").set_value("drop")
    app.text_input(key="map_override_reason").input("duplicated template answers")
    next(b for b in app.get("form_submit_button") if b.label.startswith("Record for all")).click().run()
    assert not app.exception
    entries = [e for e in store.overrides.history(info.id) if e.reason == "duplicated template answers"]
    assert sorted(e.record_id for e in entries) == sorted(ids[i] for i in (1, 4, 7))
    assert {(e.decision, e.user) for e in entries} == {("drop", "ann")}
    assert "Recorded 'drop' for 3 examples by ann." in [s.value for s in app.success]
    for entry in entries:  # back to the machine for the other tests of this module
        store.overrides.add(info.id, entry.record_id, "clear", user="tests")


def test_a_lasso_selection_is_exported_or_saved_as_a_named_subset(studio_env):
    settings, store, info, _ = studio_env
    ids = store.datasets.frame(info.id, with_text=False)["id"].tolist()
    app = lasso(open_map(person=("ann", "annotator")), [0, 3])
    app.button(key="map_export").click().run()
    data = next((settings.workspace / "exports").glob("mapped-map-*.jsonl"))
    rows = [__import__("json").loads(line) for line in data.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted([ids[0], ids[3]])
    app.text_input(key="map_subset_name").input("two-odd-ones")
    app.button(key="map_subset_save").click().run()
    saved = store.selections.find(info.id, "two-odd-ones")
    assert (saved.method, saved.n_kept, saved.created_by) == ("ids", 2, "ann")
    from curation.select import rebuild_saved

    rebuilt = rebuild_saved(store, settings, saved.id)
    assert sorted(rebuilt.selection.loc[rebuilt.selection["keep"], "id"]) == sorted([ids[0], ids[3]])


def test_the_map_names_clusters_on_hover_and_in_a_legend_with_visible_points(studio_env):
    the_map = studio_env[3]
    app = open_map()
    app.radio(key="map_colour").set_value("cluster").run()
    spec = __import__("json").loads(app.get("plotly_chart")[0].proto.spec)
    points = spec["data"][0]
    assert set(points["hovertext"]) == set(the_map["cluster_name"])
    legend = {t["name"] for t in spec["data"][1:] if t.get("x") == [None]}
    assert legend == set(the_map["cluster_name"])
    assert points["marker"]["size"] >= 8  # 18 points: big enough to see


def test_the_time_estimate_grows_with_the_count():
    from curation.cluster import describe_seconds, estimate_map_seconds

    assert estimate_map_seconds(51) < estimate_map_seconds(997) < estimate_map_seconds(52_000)
    assert describe_seconds(estimate_map_seconds(51)) != describe_seconds(estimate_map_seconds(997))
