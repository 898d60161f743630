"""Data page: the dataset list, importing an uploaded or server-side file with its report, a dataset's make-up."""

from __future__ import annotations

import json

import pytest
from studio_helpers import point_studio_at, studio, table_with

GOOD = {"instruction": "Name a colour.", "input": "", "output": "Blue.", "category": "open_qa"}


def jsonl(rows: list) -> bytes:
    return "".join((json.dumps(r) if not isinstance(r, str) else r) + "\n" for r in rows).encode()


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    store = sqlite_store
    point_studio_at(monkeypatch, settings, store)
    store.datasets.create("existing", [], created_by="tests")  # not empty: no demo build
    store.users.create("ann", "pass-1234", "annotator")
    store.users.create("lea", "pass-1234", "lead")
    return store


def upload_file(app, name: str, content: bytes, dataset: str):
    app.file_uploader(key="import_upload").set_value((name, content, "application/octet-stream"))
    app.run()
    app.text_input(key="import_name").input(dataset)
    return app


def test_upload_import_shows_the_report_and_keeps_the_rejected_rows(studio_env):
    rows = [GOOD, {**GOOD, "output": "Red."}, "{not json", {"instruction": "", "output": "x"}, GOOD]
    app = upload_file(studio("data", person=("ann", "annotator")), "colours.jsonl", jsonl(rows), "colours")
    app.button(key="import_go").click().run()
    assert not app.exception and not app.error
    info = studio_env.datasets.get("colours")
    assert (info.n_examples, info.n_rejected, info.created_by) == (2, 3, "ann")
    assert "Imported 'colours': 2 examples, 3 rejected rows." in [t.value for t in app.text]
    report = table_with(app, "reason")
    assert len(report) == 3 and any("duplicate" in r for r in report["reason"])
    downloads = [d.label for d in app.get("download_button")]
    assert "Download the 3 rejected rows (CSV)" in downloads
    # The new dataset is the one shown below, with its make-up.
    assert app.selectbox(key="dataset_data").value == "colours"
    assert [m.value for m in app.metric][:2] == ["2", "3"]
    # ... and on every other page too.
    app.switch_page("pages/explore.py").run()
    assert app.selectbox(key="dataset_explore").value == "colours"


def test_validate_only_reports_without_importing(studio_env):
    app = upload_file(studio("data", person=("ann", "annotator")), "colours.jsonl", jsonl([GOOD, "{bad"]), "colours")
    app.button(key="import_validate").click().run()
    assert any("1 loadable, 1 rejected" in t.value for t in app.text)
    assert [d.name for d in studio_env.datasets.all()] == ["existing"]


def test_a_lead_imports_a_server_path_and_a_name_clash_is_one_sentence(studio_env, tmp_path):
    path = tmp_path / "more.jsonl"
    path.write_bytes(jsonl([GOOD]))
    app = studio("data", person=("lea", "lead"))
    app.text_input(key="import_path").input(str(path))
    app.text_input(key="import_name").input("existing")
    app.button(key="import_go").click().run()
    assert "a dataset named" in app.error[0].value and "existing" in app.error[0].value
    app.checkbox(key="import_replace").check()
    app.button(key="import_go").click().run()
    assert studio_env.datasets.get("existing").n_examples == 1


def test_an_unreadable_file_is_one_sentence_not_a_traceback(studio_env, tmp_path):
    app = studio("data", person=("lea", "lead"))
    app.text_input(key="import_path").input(str(tmp_path / "missing.jsonl"))
    app.button(key="import_go").click().run()
    assert not app.exception
    assert "missing.jsonl does not exist" in app.error[0].value


def _keys(widgets) -> list:
    return [w.key for w in widgets]


def test_viewing_needs_no_account_but_uploading_validating_and_importing_do(studio_env):
    app = studio("data")
    assert app.button(key="import_go").disabled and app.button(key="import_validate").disabled
    assert "Sign in (sidebar) to upload and import a file." in [c.value for c in app.caption]
    assert list(table_with(app, "dataset")["dataset"]) == ["existing"]
    assert "import_path" not in _keys(app.text_input)  # reading a server path is a lead's action


@pytest.mark.parametrize("person", [None, ("ann", "annotator")])  # a voter sees only the Vote page
def test_only_a_lead_is_offered_a_server_path(studio_env, person):
    app = studio("data", person=person)
    assert "import_path" not in _keys(app.text_input)
    assert "import_path" in _keys(studio("data", person=("lea", "lead")).text_input)


def test_a_dataset_shows_its_size_sources_categories_and_rejections(studio_env, tmp_path):
    path = tmp_path / "mix.jsonl"
    path.write_bytes(jsonl([GOOD, {**GOOD, "output": "Green.", "category": "brainstorming", "source": "web"}, "{oops"]))
    from curation.formats import read_file

    result = read_file(path)
    studio_env.datasets.create("mix", result.records, result.rejections, fmt=result.format, created_by="tests")
    app = studio("data")
    app.selectbox(key="dataset_data").select("mix").run()
    assert [m.value for m in app.metric][:3] == ["2", "1", "jsonl"]
    sources = table_with(app, "source")
    assert dict(zip(sources["source"], sources["examples"])) == {"mix.jsonl": 1, "web": 1} or len(sources) == 2
    rejected = table_with(app, "location")
    assert "invalid JSON" in rejected["reason"][0]


def test_each_import_shows_in_the_datasets_table_at_once(studio_env):
    app = studio("data", person=("ann", "annotator"))
    for name, colour in (("first", "Blue."), ("second", "Red.")):
        upload_file(app, f"{name}.jsonl", jsonl([{**GOOD, "output": colour}]), name)
        app.button(key="import_go").click().run()
        assert name in list(table_with(app, "dataset")["dataset"])
    assert sorted(table_with(app, "dataset")["dataset"]) == ["existing", "first", "second"]


def test_a_sharegpt_import_is_recorded_and_shown_as_sharegpt(studio_env):
    rows = [{"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]},
            {"conversations": [{"from": "human", "value": "Name a fruit."}, {"from": "gpt", "value": "A pear."}]}]
    app = upload_file(studio("data", person=("ann", "annotator")), "chat.json",
                      json.dumps(rows).encode(), "chat")
    app.button(key="import_go").click().run()
    assert studio_env.datasets.get("chat").format == "sharegpt"
    table = table_with(app, "dataset")
    assert table.loc[table["dataset"] == "chat", "format"].iloc[0] == "sharegpt"


def report_texts(app) -> list[str]:
    return [t.value for t in app.text if "loadable" in t.value]


def test_the_validation_report_goes_when_the_file_or_the_person_changes(studio_env):
    app = upload_file(studio("data", person=("ann", "annotator")), "a.jsonl", jsonl([GOOD, "{bad"]), "a")
    app.button(key="import_validate").click().run()
    assert [t.startswith("a.jsonl: 1 loadable") for t in report_texts(app)] == [True]
    upload_file(app, "b.jsonl", jsonl([GOOD]), "b").run()
    assert report_texts(app) == []  # the report was about a.jsonl
    upload_file(app, "a.jsonl", jsonl([GOOD, "{bad"]), "a")
    app.button(key="import_validate").click().run()
    assert len(report_texts(app)) == 1
    app.session_state["studio_person"] = {"name": "lea", "role": "lead", "via": "local"}
    app.run()
    assert report_texts(app) == []  # another person does not see ann's report
    del app.session_state["studio_person"]
    app.run()
    assert report_texts(app) == []


def test_an_unsafe_dataset_name_is_refused_in_one_sentence(studio_env, tmp_path):
    app = upload_file(studio("data", person=("ann", "annotator")), "colours.jsonl", jsonl([GOOD]), "../../x")
    app.button(key="import_go").click().run()
    assert not app.exception
    assert "may hold only letters, digits" in app.error[0].value
    assert [d.name for d in studio_env.datasets.all()] == ["existing"]


def test_a_file_with_nothing_loadable_creates_no_dataset(studio_env):
    app = upload_file(studio("data", person=("ann", "annotator")), "empty.csv", b"instruction,input,output\n", "empty")
    app.button(key="import_go").click().run()
    assert "holds no rows" in app.error[0].value
    assert [d.name for d in studio_env.datasets.all()] == ["existing"]


def test_the_eight_bundled_test_sets_are_listed(studio_env):
    from curation.testsets import BUILTIN, BUILTIN_DIR, read_testset

    for spec in BUILTIN:
        studio_env.testsets.create(spec.name, read_testset(BUILTIN_DIR / spec.path, spec.category_field),
                                   source_path=f"bundled:{spec.path}", category_field=spec.category_field)
    app = studio("data")
    listed = table_with(app, "test set")
    assert len(BUILTIN) == 8 and sorted(listed["test set"]) == sorted(s.name for s in BUILTIN)
    assert (listed["items"] > 0).all()
