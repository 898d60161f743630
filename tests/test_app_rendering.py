"""User strings (flag and override reasons, example text and labels, names in messages) render as text.

A reason holding ``![x](http://127.0.0.1:PORT/x.png)`` must never become a markdown image: if it did, every
viewer's browser would fetch that URL. AppTest shows what each element is: markdown-rendering elements
(markdown, caption, info, …) must never hold the string unescaped; it shows up in text/code/table cells.
"""

from __future__ import annotations

import pytest
from studio_helpers import point_studio_at, studio, table_with

from curation.records import Record
from curation.store import FlagRow

IMAGE = "![x](http://127.0.0.1:9/x.png)"
MARKDOWN_ELEMENTS = ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title", "header")


@pytest.fixture
def studio_env(monkeypatch, settings, store):
    """The studio on SQLite and on PostgreSQL (the ``store`` fixture runs both)."""
    point_studio_at(monkeypatch, settings, store)
    return store


def rendered_as_markdown(app) -> list[str]:
    values = []
    for kind in MARKDOWN_ELEMENTS:
        for element in getattr(app, kind, []):
            values.append(str(element.value))
        for element in getattr(app.sidebar, kind, []):
            values.append(str(element.value))
    return [v for v in values if IMAGE in v]


def test_flag_and_override_reasons_and_example_labels_show_as_text(studio_env):
    records = [Record(f"Question {IMAGE}", "", f"Answer {IMAGE}", category=IMAGE, source=IMAGE)]
    info = studio_env.datasets.create("hostile", records, created_by="tests")
    record_id = records[0].id
    studio_env.flags.replace(info.id, ["short_output"], [FlagRow(record_id, "short_output", f"quotes {IMAGE}")])
    studio_env.overrides.add(info.id, record_id, "keep", user="ann", reason=f"because {IMAGE}")
    app = studio("explore", person=("ann", "annotator"))
    app.text_input(key="explore_open_id").input(record_id).run()
    assert not app.exception
    assert rendered_as_markdown(app) == []
    assert f"quotes {IMAGE}" in table_with(app, "flag")["reason"].tolist()
    texts = [t.value for t in app.text]
    assert f"In force: keep by ann — because {IMAGE}" in texts
    assert f"category: {IMAGE} · source: {IMAGE}" in texts
    assert f"Question {IMAGE}" in [c.value for c in app.code]


def test_an_id_typed_into_the_open_box_is_not_markdown(studio_env):
    studio_env.datasets.create("plain", [Record("Q", "", "A")], created_by="tests")
    app = studio("explore")
    app.text_input(key="explore_open_id").input(IMAGE).run()
    assert not app.exception and rendered_as_markdown(app) == []
    assert app.warning  # "No example … in 'plain'", escaped


def test_an_upload_named_like_markdown_is_stored_under_a_safe_name(studio_env, settings):
    studio_env.datasets.create("existing", [], created_by="tests")
    studio_env.users.create("ann", "pass-1234", "annotator")
    app = studio("data", person=("ann", "annotator"))
    app.file_uploader(key="import_upload").set_value((f"{IMAGE}.jsonl", b"{broken\n", "application/octet-stream"))
    app.run()
    app.button(key="import_validate").click().run()
    assert not app.exception and rendered_as_markdown(app) == []
    uploads = list((settings.workspace / "uploads").rglob("*.jsonl"))
    assert len(uploads) == 1 and all(c.isalnum() or c in "._-" for c in uploads[0].name)
