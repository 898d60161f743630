"""Answer files the studio can compare: ``<workspace>/answers/<model>/<testset>.jsonl``.

A model is a folder, a test set a file in it (one answer per line: id, instruction, input, output,
optional category). The Compare page lists them and saves uploads here; the CLI takes any path.
"""

from __future__ import annotations

import re
from pathlib import Path

from curation.judges.pairs import PairingError, read_answers
from curation.studio_auth import Person, require

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def answers_dir(workspace: Path) -> Path:
    return workspace / "answers"


def answer_sets(workspace: Path) -> dict[str, dict[str, Path]]:
    """model -> test set -> file, for every answer file in the workspace."""
    found: dict[str, dict[str, Path]] = {}
    root = answers_dir(workspace)
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {f.stem: f for f in sorted(folder.glob("*.jsonl"))}
        if files:
            found[folder.name] = files
    return found


def check_name(value: str, what: str) -> str:
    value = value.strip()
    if not _NAME.match(value):
        raise PairingError(f"{what} '{value}' must be letters, digits, '.', '_', '+' or '-' (up to 100), e.g. alpaca-9k")
    return value


def save_answer_file(workspace: Path, person: Person | None, model: str, testset: str, data: bytes) -> Path:
    """Keep an uploaded answers file as model/testset after checking every line (the error names the line)."""
    require(person, "import", "add answer files")
    folder = answers_dir(workspace) / check_name(model, "model name")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_name(testset, 'test set name')}.jsonl"
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    try:
        read_answers(partial)
    except PairingError:
        partial.unlink()
        raise
    partial.replace(path)
    return path


BUNDLED_MODELS = ("cherry-5pct-7b", "alpaca-7b")  # Answer1 and Answer2 of the bundled published reviews


def add_bundled_answers(workspace: Path, person: Person | None) -> list[Path]:
    """Answer files for the two models of the bundled published reviews (Vicuna-80, WizardLM-218), so a
    newcomer can run a judge on real 7B answers without generating any."""
    import json

    from curation.config import BUNDLED_DATA_DIR
    from curation.judges.imports import read_cherry

    require(person, "import", "add answer files")
    written = []
    for review_file in sorted((BUNDLED_DATA_DIR / "judge_reviews").glob("*_reviews_*.json")):
        testset, items = read_cherry(review_file)
        for model, side in zip(BUNDLED_MODELS, ("answer_a", "answer_b")):
            lines = [json.dumps({"id": item.item_id, "instruction": item.instruction, "input": "",
                                 "output": getattr(item, side), "category": item.category}, ensure_ascii=False)
                     for item in items]
            folder = answers_dir(workspace) / model
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{testset}.jsonl"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            written.append(path)
    return written
