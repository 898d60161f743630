"""Answers through `transformers serve` (SmolLM2-135M-Instruct on 127.0.0.1), once: the real server and client.

The server fixture is the rating test's (one conversion of the bundled GGUF, one server for this module).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_llm_serve_e2e import OFFLINE, REPO, endpoint  # noqa: F401  (the module-scoped server fixture)

from curation.alpaca import prompt_sha256
from curation.config import load_settings
from curation.store import Store

pytestmark = pytest.mark.slow


def test_generate_through_transformers_serve(endpoint: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    base_url, model = endpoint
    out = tmp_path / "answers.jsonl"
    workspace = tmp_path / "workspace"
    command = [
        sys.executable, "-m", "curation", "--workspace", str(workspace),
        # One answer at a time on 2 shared cores: short answers, a patient timeout.
        "--set", "llm.timeout_s=600", "--set", "llm.max_retries=1", "--set", "generate.concurrency=1",
        "generate", "--model", model, "--base-url", base_url, "--testset", "vicuna80", "--limit", "2",
        "--max-new-tokens", "12", "--out", str(out),
    ]
    first = subprocess.run(command, cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=1800, check=False)
    assert first.returncode == 0, first.stderr
    assert "2 generated now" in first.stdout

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["1", "2"]
    for line in lines:
        assert line["output"].strip() and line["finish_reason"] in ("stop", "truncated")
        assert line["prompt_sha256"] == prompt_sha256(line["instruction"], line["input"])
    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    try:
        answers = store.answers.of(model, "vicuna80")
    finally:
        store.close()
    assert len(answers) == 2
    assert all(0 < a.completion_tokens <= 12 and a.prompt_tokens > 20 for a in answers)  # as the server counted

    again = subprocess.run(command, cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert "2 were already answered, 0 generated now" in again.stdout
