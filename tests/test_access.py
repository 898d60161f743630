"""Who may do what, enforced in the library calls the pages and the CLI make (not only by hidden buttons)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from curation.config import Settings
from curation.dataset_io import NothingToLoad, export_dataset, import_dataset, read_source, save_upload
from curation.formats import read_file
from curation.overrides import record_override
from curation.select.manifest import UnsafeExportPath, export_path, export_to_workspace
from curation.store import AlreadyExists, InvalidName, Store
from curation.studio_auth import Forbidden, Person, cli_person, create_account

LEAD = Person("lea", "lead")
ANNOTATOR = Person("ann", "annotator")
VOTER = Person("vic", "voter")
NOT_LEADS = [None, ANNOTATOR, VOTER]
GOOD = {"instruction": "Name a colour", "input": "", "output": "Blue"}


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file on the server that is not an upload: its lines must never reach a non-lead."""
    path = tmp_path / "server-secret.jsonl"
    path.write_text("root:x:0:0:the secret line\n" + json.dumps(GOOD) + "\n")
    return path


@pytest.mark.parametrize("person", NOT_LEADS, ids=["signed-out", "annotator", "voter"])
def test_only_a_lead_reads_a_server_path(settings: Settings, secret_file: Path, person: Person | None) -> None:
    with pytest.raises(Forbidden) as refused:
        read_source(settings, person, secret_file)
    assert "secret" not in str(refused.value)


def test_a_lead_reads_a_server_path_and_the_cli_acts_as_a_local_lead(settings: Settings, secret_file: Path) -> None:
    for someone in (LEAD, cli_person()):
        result = read_source(settings, someone, secret_file)
        assert len(result.records) == 1 and result.rejections[0].location == "server-secret.jsonl:1"


@pytest.mark.parametrize("person", [None, VOTER], ids=["signed-out", "voter"])
def test_uploads_need_an_account_that_may_import(settings: Settings, person: Person | None) -> None:
    with pytest.raises(Forbidden):
        save_upload(settings, person, "data.jsonl", b"{}")
    assert not (settings.workspace / "uploads").exists()


def test_an_annotator_uploads_and_reads_only_their_upload(settings: Settings, secret_file: Path) -> None:
    path = save_upload(settings, ANNOTATOR, "../../evil name.jsonl", (json.dumps(GOOD) + "\n").encode())
    assert path.is_relative_to(settings.workspace / "uploads") and path.name == "evil_name.jsonl"
    assert len(read_source(settings, ANNOTATOR, path).records) == 1
    # A path that merely starts in the uploads folder but climbs out of it is a server path.
    climbing = settings.workspace / "uploads" / ".." / ".." / secret_file.name
    with pytest.raises(Forbidden):
        read_source(settings, ANNOTATOR, climbing)
    # A symlink planted in the uploads folder resolves to where it points.
    link = settings.workspace / "uploads" / "link.jsonl"
    link.symlink_to(secret_file)
    with pytest.raises(Forbidden):
        read_source(settings, ANNOTATOR, link)


@pytest.mark.parametrize("person", [None, VOTER], ids=["signed-out", "voter"])
def test_import_needs_the_import_role(store: Store, tmp_path: Path, person: Person | None) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    with pytest.raises(Forbidden):
        import_dataset(store, person, read_file(path), "ok")
    assert store.datasets.all() == []


def test_import_records_who_and_creates_nothing_when_nothing_loads(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    info = import_dataset(store, ANNOTATOR, read_file(path), "ok")
    assert info.created_by == "ann" and info.n_examples == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(NothingToLoad, match="empty.jsonl"):
        import_dataset(store, ANNOTATOR, read_file(empty), "empty")
    assert [d.name for d in store.datasets.all()] == ["ok"]


@pytest.mark.parametrize("person", NOT_LEADS[::2], ids=["signed-out", "voter"])
def test_export_and_override_need_their_roles(store: Store, settings: Settings, tmp_path: Path, person) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    info = import_dataset(store, LEAD, read_file(path), "ok")
    record = store.datasets.records(info.id)[0]
    with pytest.raises(Forbidden):
        export_dataset(store, settings, person, "ok", "jsonl")
    with pytest.raises(Forbidden):
        export_to_workspace(settings.workspace, person, [record], pd.DataFrame({"id": [record.id], "keep": [True]}),
                            "x.jsonl", {})
    with pytest.raises(Forbidden):
        record_override(store, person, info.id, record.id, "keep", "good")
    assert not (settings.workspace / "exports").exists()
    assert store.overrides.history(info.id) == []
    entry = record_override(store, ANNOTATOR, info.id, record.id, "drop", "off topic")
    assert (entry.user, entry.decision) == ("ann", "drop")


@pytest.mark.parametrize("person", NOT_LEADS, ids=["signed-out", "annotator", "voter"])
def test_only_a_lead_creates_accounts(store: Store, person: Person | None) -> None:
    with pytest.raises(Forbidden):
        create_account(store, person, "new", "long-enough-1", "lead")
    assert store.users.all() == []


def test_exports_stay_inside_the_workspace_export_folder(settings: Settings) -> None:
    inside = export_path(settings.workspace, "ok.jsonl")
    assert inside.parent == (settings.workspace / "exports").resolve()
    for name in ("../x.jsonl", "../../x.jsonl", "/tmp/x.jsonl", "sub/x.jsonl", "", "."):
        with pytest.raises(UnsafeExportPath):
            export_path(settings.workspace, name)


@pytest.mark.parametrize("name", ["", " ", "../../x", "a/b", "a\\b", ".hidden", "-rf", "x" * 65, "naïve", "a b",
                                  "![x](http://127.0.0.1/x.png)"])
def test_dataset_names_are_validated_in_the_store(store: Store, name: str) -> None:
    with pytest.raises(InvalidName):
        store.datasets.create(name, [])
    assert store.datasets.all() == []


def test_dataset_names_are_unique_ignoring_case(store: Store) -> None:
    store.datasets.create("Alpaca_9k.v2", [])
    with pytest.raises(AlreadyExists):
        store.datasets.create("alpaca_9k.V2", [])
    with pytest.raises(AlreadyExists):
        store.datasets.create("alpaca_9k.V2", [], replace=True)  # replace means the same name, exactly
    store.datasets.create("Alpaca_9k.v2", [], replace=True)
    assert [d.name for d in store.datasets.all()] == ["Alpaca_9k.v2"]
