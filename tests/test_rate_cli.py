"""``python -m curation rate``: the headless contract both raters share, dry runs, datasets, background jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fault_server import FaultServer, refusing_base_url
from sqlalchemy import func, select

from curation import jobs
from curation.cli import main
from curation.config import Settings
from curation.store import Store
from curation.store.schema import LLMCall

REPO = Path(__file__).resolve().parent.parent
CONTRACT_FIELDS = {"id", "score", "score_0_5", "rater", "flags", "explanation"}
ROWS = [
    {
        "instruction": "Give three tips for staying healthy.",
        "input": "",
        "output": "Eat well, sleep, move.",
        "category": "advice",
        "team": "a",
    },
    {
        "instruction": "Translate to French.",
        "input": "Good morning",
        "output": "Bonjour",
        "category": "translation",
        "team": "b",
    },
    {"instruction": "Explain @garble", "input": "", "output": "It is what it is.", "category": "other", "team": "c"},
    {
        "instruction": "Give three tips for staying healthy.",
        "input": "",
        "output": "Eat well, sleep, move.",
        "category": "advice",
        "team": "a",
    },
    {"instruction": "Write a haiku about rain.", "input": "", "output": "no output", "category": "poetry", "team": "d"},
]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def cli(settings: Settings, *args: str) -> int:
    return main(["--workspace", str(settings.workspace), *args])


def llm_args(server: FaultServer, *more: str) -> list[str]:
    return ["--rater", "llm", "--model", "fault-model", "--base-url", server.base_url, *more]


def calls_in_log(settings: Settings) -> int:
    store = Store.open(settings)
    try:
        with store.db.session() as session:
            return session.scalar(select(func.count()).select_from(LLMCall)) or 0
    finally:
        store.close()


def test_rate_a_file_writes_one_line_per_input_record_in_order_with_the_contract_fields(
    settings: Settings, server: FaultServer, input_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rated.jsonl"
    assert (
        cli(settings, "rate", str(input_file), *llm_args(server, "--dimension", "helpfulness", "--out", str(out))) == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]

    assert len(lines) == len(ROWS)  # every input row comes back, the exact duplicate too
    for row, line in zip(ROWS, lines):
        assert CONTRACT_FIELDS <= set(line)
        assert {k: line[k] for k in row} == row  # every input field kept, in input order
        assert line["rater"] == "llm:fault-model:helpfulness"
        assert isinstance(line["flags"], list) and all(set(flag) == {"name", "reason"} for flag in line["flags"])
    ok = [line for line in lines if line["status"] == "ok"]
    assert all(isinstance(line["score"], float) and line["score"] == line["score_0_5"] for line in ok)
    assert all(isinstance(line["explanation"], str) and line["explanation"] for line in ok)
    [garbled] = [line for line in lines if line["status"] == "unparsed"]
    assert garbled["score"] is None and garbled["explanation"] is None and garbled["raw"].startswith("What a lovely")
    assert [line["duplicate_of"] for line in lines] == [None, None, None, "pool.jsonl:1", None]
    own = ("duplicate_of", "flags")  # the copy is also flagged as an exact duplicate
    assert {k: v for k, v in lines[3].items() if k not in own} == {k: v for k, v in lines[0].items() if k not in own}
    assert [flag["name"] for flag in lines[3]["flags"]] == ["exact_duplicate"]  # rated once, the same rating
    assert len(server.hits) == 4
    assert "helpfulness" in server.hits[0].messages[1][1]
    assert any(flag["name"] == "placeholder" for flag in lines[4]["flags"])  # "no output" is a placeholder answer

    printed = capsys.readouterr().out
    assert "rated 5 records with llm:fault-model:helpfulness" in printed and "3 ok, 1 unparsed, 0 error" in printed
    assert "calls: 4 made" in printed and f"wrote {out}" in printed
    assert "1 input rows repeat an earlier row exactly: rated once" in printed
    assert "rejected when reading" not in printed

    assert (
        cli(settings, "rate", str(input_file), *llm_args(server, "--dimension", "helpfulness", "--out", str(out))) == 0
    )
    assert "calls: 0 made" in capsys.readouterr().out and len(server.hits) == 4
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines


def test_dry_run_prints_tokens_and_cost_and_calls_nothing(
    settings: Settings, server: FaultServer, input_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = json.dumps({"fault-model": [10.0, 30.0]})
    args = [
        "--set",
        f"llm.prices={prices}",
        "rate",
        str(input_file),
        *llm_args(server, "--dry-run", "--out", str(tmp_path / "o.jsonl")),
    ]
    assert cli(settings, *args) == 0
    printed = capsys.readouterr().out
    assert "records: 5 (4 unique)" in printed and "calls to make: 4" in printed
    assert "prompt tokens ≈" in printed and "completion tokens ≤ 1024" in printed  # 4 calls x max_tokens 256
    assert "≤ $0.03" in printed and "nothing was sent" in printed
    assert server.hits == [] and not (tmp_path / "o.jsonl").exists() and calls_in_log(settings) == 0


def test_rate_a_workspace_dataset_stores_the_ratings_and_skips_unchanged_records(
    settings: Settings, server: FaultServer, input_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pool repeats one row: the duplicate is rejected, so import exits 1 ("some rows rejected").
    assert cli(settings, "import", str(input_file), "--name", "pool") == 1
    assert cli(settings, "rate", "--dataset", "pool", *llm_args(server)) == 0
    assert "4 rated now" in capsys.readouterr().out
    store = Store.open(settings)
    try:
        frame = store.ratings.frame(store.datasets.get("pool").id, rater="llm:fault-model:accuracy")
    finally:
        store.close()
    assert len(frame) == 4 and sorted(frame["status"].unique()) == ["ok", "unparsed"]

    more = input_file.with_name("more.jsonl")
    more.write_text(
        input_file.read_text() + json.dumps({"instruction": "New one", "input": "", "output": "Fresh"}) + "\n"
    )
    assert cli(settings, "import", str(more), "--name", "pool", "--replace") == 1
    assert cli(settings, "rate", "--dataset", "pool", *llm_args(server)) == 0
    assert "4 were already rated, 1 rated now" in capsys.readouterr().out
    assert len(server.hits) == 5


def test_background_rating_runs_as_a_job_and_waits_for_it(
    settings: Settings, server: FaultServer, input_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bg.jsonl"
    command = [
        sys.executable,
        "-m",
        "curation",
        "--workspace",
        str(settings.workspace),
        "--set",
        "jobs.poll_s=0.1",
        "rate",
        str(input_file),
        *llm_args(server, "--out", str(out), "--background", "--wait"),
    ]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "job 1 started" in finished.stdout and "job 1: done" in finished.stdout
    assert "3 ok, 1 unparsed, 0 error" in finished.stdout
    assert len(out.read_text().splitlines()) == len(ROWS)

    listing = subprocess.run(
        [sys.executable, "-m", "curation", "--workspace", str(settings.workspace), "jobs", "show", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "[rate] rate pool.jsonl with llm fault-model" in listing.stdout
    assert "calls: 4 made" in listing.stdout  # the summary is in the job's log
    store = Store.open(settings)
    try:
        [job] = jobs.all_jobs(store, settings)
    finally:
        store.close()
    assert job.params["paid"] is True  # fault-model has no price: cost unknown, so a lead's job


@pytest.mark.parametrize(
    "args, message",
    [
        (["rate", "{input}", "--rater", "llm"], "needs --out"),
        (["rate", "{input}"], "needs --out"),
        (["rate", "--rater", "llm", "--out", "x.jsonl"], "either an input file or --dataset"),
        (["rate", "{input}", "--dataset", "pool", "--out", "x.jsonl"], "either an input file or --dataset"),
        (["rate", "{input}", "--out", "x.csv"], "write .jsonl"),
        (["rate", "--dataset", "nope"], "no dataset 'nope'"),
        (["rate", "{input}", "--out", "x.jsonl", "--dimension", ""], "dimension"),
        (["rate", "{input}", "--out", "x.jsonl", "--concurrency", "0"], "concurrency must be at least 1"),
        (["rate", "{input}", "--rater", "iqs", "--dry-run", "--out", "x.jsonl"], "costs nothing"),
        (["rate", "missing.jsonl", "--out", "x.jsonl"], "does not exist"),
    ],
)
def test_bad_requests_get_one_sentence(
    settings: Settings, input_file: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(settings, *[a.replace("{input}", str(input_file)) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_refused_key_is_one_sentence(
    settings: Settings, server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"instruction": "Explain @401", "input": "", "output": "x"}) + "\n")
    assert cli(settings, "rate", str(path), *llm_args(server, "--out", str(tmp_path / "o.jsonl"))) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "HTTP 401" in err and "llm.api_key_name" in err and "Traceback" not in err


def test_unreadable_rows_are_reported_not_silently_dropped(
    settings: Settings, server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps(ROWS[1]) + "\n")
    out = tmp_path / "o.jsonl"
    assert cli(settings, "rate", str(path), *llm_args(server, "--out", str(out))) == 0
    assert len(out.read_text().splitlines()) == 2
    assert (
        "1 input rows were rejected when reading and not rated:\n  mixed.jsonl:2: invalid JSON"
        in capsys.readouterr().out
    )


@pytest.fixture
def iqs_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The bundled IQS weights when they are there; otherwise weights in the same format on the real base MiniLM.

    The test is about the wiring (contract, storage, skipping), not about how good the scores are.
    """
    from curation.raters.iqs import BUNDLED_WEIGHTS_DIR

    if (BUNDLED_WEIGHTS_DIR / "iqs.safetensors").is_file():
        return settings
    import torch
    from safetensors.torch import save_file

    weights = tmp_path / "iqs-weights"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"num_layers": 6, "max_length": 128}))
    (weights / "calibration.json").write_text(json.dumps({"params": {"a": 0.0, "b": 0.1}}))
    head = torch.nn.Linear(384, 1)
    torch.nn.init.normal_(head.weight, std=0.5, generator=torch.Generator().manual_seed(0))
    save_file(
        {"head.weight": head.weight.detach().contiguous(), "head.bias": head.bias.detach().contiguous()},
        str(weights / "iqs.safetensors"),
    )
    settings.iqs.weights = str(weights)
    settings.overrides.append(f"iqs.weights={weights}")
    return settings


@pytest.mark.slow  # loads torch and MiniLM twice (once per run, for the scorer's version)
def test_rate_with_iqs_writes_the_same_contract_and_stores_the_scores(
    iqs_settings: Settings, input_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "iqs.jsonl"
    base = ["--set", f"iqs.weights={iqs_settings.iqs.weights}"] if iqs_settings.iqs.weights else []
    assert cli(iqs_settings, *base, "rate", str(input_file), "--out", str(out)) == 0  # iqs is the default
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["instruction"] for line in lines] == [row["instruction"] for row in ROWS]
    for line in lines:
        assert CONTRACT_FIELDS <= set(line) and line["rater"] == "iqs" and line["status"] == "ok"
        assert isinstance(line["score"], float) and 0.0 <= line["score_0_5"] <= 5.0
        # Every IQS rating is explained (its 0–5 score and place in the reference pool; curation.explain).
        assert line["explanation"].startswith(f"IQS {line['score_0_5']:.2f} on 0–5") and isinstance(line["flags"], list)
    by_raw = sorted(lines, key=lambda line: line["score"])
    assert [line["score_0_5"] for line in by_raw] == sorted(line["score_0_5"] for line in lines)  # monotone scale
    assert "4 ok, 0 unparsed, 0 error" in capsys.readouterr().out

    assert cli(iqs_settings, *base, "rate", str(input_file), "--rater", "iqs", "--out", str(out)) == 0
    assert "4 were already rated, 0 rated now" in capsys.readouterr().out
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines


def rows_file(tmp_path: Path, instructions: list[str]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"instruction": i, "input": "", "output": "x"}) + "\n" for i in instructions))
    return path


def test_exit_status_says_whether_everything_something_or_nothing_was_rated(
    settings: Settings, server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = ["--set", "llm.max_retries=0"]
    out = str(tmp_path / "o.jsonl")
    assert cli(settings, *fast, "rate", str(rows_file(tmp_path, ["A @500x9", "B @400"])), *llm_args(server, "--out", out)) == 2
    assert "nothing was rated: all 2 records ended in error" in capsys.readouterr().err
    assert cli(settings, *fast, "rate", str(rows_file(tmp_path, ["A @500x9", "C fine"])), *llm_args(server, "--out", out)) == 1
    assert "1 examples have no rating" in capsys.readouterr().out
    assert cli(settings, "rate", str(rows_file(tmp_path, ["C fine"])), *llm_args(server, "--out", out)) == 0

    with pytest.raises(SystemExit):
        cli(settings, "rate", "--help")
    shown = capsys.readouterr().out
    assert "exit status:" in shown and "2  nothing was rated" in shown and "default" in shown


def test_an_endpoint_where_nothing_listens_fails_in_seconds_with_one_sentence(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rows_file(tmp_path, [f"Task {i}" for i in range(20)])
    started = time.monotonic()
    with refusing_base_url() as base_url:
        args = ["rate", str(path), "--rater", "llm", "--model", "m", "--base-url", base_url]
        assert cli(settings, *args, "--out", str(tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - started < 15
    assert err.count("\n") == 1 and err.startswith(f"error: nothing answers at {base_url}") and "Traceback" not in err
    assert calls_in_log(settings) == 0


def test_a_key_echoed_by_the_endpoint_is_nowhere_in_the_workspace_the_output_or_stderr(
    settings: Settings, server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    key = "test-key-echo-4b1d2e9f"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    configured = ["--set", f"llm.base_url={server.base_url}", "--set", "llm.max_retries=1", "--set", "jobs.poll_s=0.1"]
    out = tmp_path / "echo.jsonl"
    path = rows_file(tmp_path, ["A @echo400", "B @echo500x9", "C @echo", "D @echo500x1"])
    assert cli(settings, *configured, "rate", str(path), *llm_args(server, "--out", str(out))) == 1
    printed = capsys.readouterr()

    refused = rows_file(tmp_path, ["E @echo401"])  # as a background job: the job's error, events and log
    command = [sys.executable, "-m", "curation", "--workspace", str(settings.workspace), *configured, "rate"]
    command += [str(refused), *llm_args(server, "--out", str(tmp_path / "bg.jsonl"), "--background", "--wait")]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)

    assert {hit.authorization for hit in server.hits} == {f"Bearer {key}"}  # the key went out and came back
    assert finished.returncode == 1 and "HTTP 401" in finished.stderr
    assert "[REDACTED]" in out.read_text()
    for text in (printed.out, printed.err, finished.stdout, finished.stderr, out.read_text()):
        assert key not in text
    files = [p for p in Path(settings.workspace).rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" or "sqlite" in p.name for p in files)
    for file in files:
        assert key.encode() not in file.read_bytes(), file
