"""The headless CLI as a user runs it: separate processes, exit codes, one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
POOLS = REPO / "curation" / "data" / "pools"


def cli(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CURATION_WORKSPACE": str(workspace)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "curation", *args], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def broken_jsonl(tmp_path: Path) -> Path:
    rows = [json.dumps(r) for r in json.loads((POOLS / "alpaca_random_9k.json").read_text()) if r["output"]][:1000]
    rows[9] = '{"instruction": "x", "output": '
    rows[19] = json.dumps({"input": "", "output": "y"})
    rows[29] = json.dumps({"instruction": 42, "input": "", "output": "z"})
    path = tmp_path / "alpaca_1k.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_validate_names_the_three_broken_lines_and_exits_one(tmp_path: Path, broken_jsonl: Path) -> None:
    done = cli(tmp_path / "ws", "validate", str(broken_jsonl), "--report", str(tmp_path / "report.csv"), check=False)
    assert done.returncode == 1  # some rows rejected
    lines = done.stdout.strip().splitlines()
    assert lines[:3] == [
        "alpaca_1k.jsonl:10: invalid JSON: Expecting value at column 32",
        "alpaca_1k.jsonl:20: missing instruction",
        "alpaca_1k.jsonl:30: instruction is a number, expected a string",
    ]
    assert "997 loadable" in lines[3] and "3 rejected" in lines[3]
    assert (tmp_path / "report.csv").read_text().count("alpaca_1k.jsonl:") == 3


def test_unreadable_files_exit_nonzero_with_one_sentence(tmp_path: Path) -> None:
    binary = tmp_path / "model.json"
    binary.write_bytes(bytes(range(256)) * 10)
    for target in (binary, tmp_path / "missing.jsonl"):
        done = cli(tmp_path / "ws", "validate", str(target), check=False)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_import_info_export_reimport_keeps_ids(tmp_path: Path, broken_jsonl: Path) -> None:
    workspace = tmp_path / "ws"
    done = cli(workspace, "import", str(broken_jsonl), "--name", "alpaca-1k", check=False)
    assert done.returncode == 1
    assert "imported 'alpaca-1k': 997 examples, 3 rejected" in done.stdout
    assert "alpaca-1k" in cli(workspace, "info").stdout
    again = cli(workspace, "import", str(broken_jsonl), "--name", "alpaca-1k", check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    for fmt, ext in (("alpaca", "json"), ("sharegpt", "json"), ("parquet", "parquet"), ("csv", "csv"), ("jsonl", "jsonl")):
        out = tmp_path / "exports" / f"subset-{fmt}.{ext}"
        cli(workspace, "export", "alpaca-1k", "--format", fmt, "--out", str(out), "--dataset-info")
        cli(workspace, "import", str(out), "--name", f"back-{fmt}")
    from curation.config import load_settings
    from curation.store import Store

    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    original = store.datasets.get("alpaca-1k").content_hash
    assert {store.datasets.get(f"back-{fmt}").content_hash for fmt in ("alpaca", "sharegpt", "parquet", "csv", "jsonl")} == {original}
    info = json.loads((tmp_path / "exports" / "dataset_info.json").read_text())
    assert info["alpaca-1k"]["formatting"] in ("alpaca", "sharegpt")


def test_every_command_has_help(tmp_path: Path) -> None:
    from curation.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        done = cli(tmp_path, name, "--help")
        assert "usage:" in done.stdout


def _datasets(workspace: Path) -> list[str]:
    from curation.config import load_settings
    from curation.store import Store

    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    try:
        return [d.name for d in store.datasets.all()]
    finally:
        store.close()


GOOD = {"instruction": "Name a colour", "input": "", "output": "Blue"}


def test_exit_codes_are_the_same_for_validate_and_import(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps(GOOD) + "\n")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(GOOD) + "\n{broken\n")
    for command, extra in (("validate", []), ("import", ["--name", "set", "--replace"])):
        workspace = tmp_path / f"ws-{command}"
        assert cli(workspace, command, str(clean), *extra, check=False).returncode == 0
        assert cli(workspace, command, str(mixed), *extra, check=False).returncode == 1
    help_text = cli(tmp_path / "ws", "import", "--help").stdout
    assert "exit status: 0" in help_text and "2 nothing can be loaded" in help_text


NOTHING_LOADABLE = {
    "empty.jsonl": "",
    "header_only.csv": "instruction,input,output\n",
    "wrong_columns.csv": "question_text,reply_text\nWhat?,That.\nWhy?,Because.\n",
}


@pytest.mark.parametrize("file_name", [*NOTHING_LOADABLE, "wrong_schema.parquet"])
def test_nothing_loadable_exits_two_says_why_and_creates_nothing(tmp_path: Path, file_name: str) -> None:
    path = tmp_path / file_name
    if file_name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"title": ["a", "b"], "score": [1, 2]}), path)
    else:
        path.write_text(NOTHING_LOADABLE[file_name])
    workspace = tmp_path / "ws"
    for command, extra in (("validate", []), ("import", ["--name", "nothing"])):
        done = cli(workspace, command, str(path), *extra, check=False)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and file_name in done.stderr
        assert "Traceback" not in done.stderr
    assert _datasets(workspace) == []


def test_format_jsonl_on_a_directory_is_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    done = cli(tmp_path / "ws", "validate", str(folder), "--format", "jsonl", check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is a directory" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["../../x", "", "a/b", ".hidden", "x" * 65, "![x](http://127.0.0.1/x.png)"])
def test_import_refuses_an_unsafe_dataset_name_with_one_sentence(tmp_path: Path, name: str) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    done = cli(tmp_path / "ws", "import", str(path), "--name", name, check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert _datasets(tmp_path / "ws") == []
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_import_then_export_of_a_dotted_name_writes_nothing_outside_the_workspace(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    workspace = tmp_path / "ws" / "inner"
    cli(workspace, "import", str(path), "--name", "../../x", check=False)
    done = cli(workspace, "export", "../../x", check=False)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("x.jsonl"))


def test_export_by_default_lands_in_the_workspace_export_folder(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    workspace = tmp_path / "ws"
    cli(workspace, "import", str(path), "--name", "ok")
    done = cli(workspace, "export", "ok")
    assert (workspace / "exports" / "ok.jsonl").is_file() and "wrote 1 records" in done.stdout


def test_users_add_refuses_a_short_password_with_one_sentence(tmp_path: Path) -> None:
    env_password = {"CURATION_PASSWORD": "short"}
    env = {**os.environ, "CURATION_WORKSPACE": str(tmp_path / "ws"), **env_password}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "curation", "users", "add", "ann", "--role", "lead"], check=False, cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "at least 8 characters" in done.stderr and "Traceback" not in done.stderr
