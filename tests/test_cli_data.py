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
    done = subprocess.run([sys.executable, "-m", "curation", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
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


def test_validate_names_the_three_broken_lines_and_exits_zero(tmp_path: Path, broken_jsonl: Path) -> None:
    done = cli(tmp_path / "ws", "validate", str(broken_jsonl), "--report", str(tmp_path / "report.csv"))
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
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_import_info_export_reimport_keeps_ids(tmp_path: Path, broken_jsonl: Path) -> None:
    workspace = tmp_path / "ws"
    done = cli(workspace, "import", str(broken_jsonl), "--name", "alpaca-1k")
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
