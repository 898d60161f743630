"""Comparisons against a real loopback judge: both orders, faults, resumes, the headless contract, imports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from judge_server import JudgeServer

from curation import jobs
from curation.cli import main
from curation.config import Settings
from curation.judges.imports import import_reviews
from curation.judges.run import JudgeRequest, JudgeRunError, estimate_cost, run_comparison, start_judge_job
from curation.judges.stats import summarize
from curation.store import Store
from curation.studio_auth import Forbidden, Person

DATA = Path(__file__).parent / "data" / "judge_reviews"
LEAD = Person("lee", "lead")


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    with JudgeServer() as running:
        yield running


@pytest.fixture
def fast(settings: Settings) -> Settings:
    settings.judge.backoff_base_s = 0.02
    settings.judge.backoff_max_s = 0.1
    return settings


def write_answers(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def answers(tmp_path: Path, a_outputs: list[str], b_outputs: list[str], categories: list[str] | None = None):
    rows_a, rows_b = [], []
    for i, (a, b) in enumerate(zip(a_outputs, b_outputs)):
        category = categories[i] if categories else None
        rows_a.append({"id": f"q{i}", "instruction": "Say something.", "input": "", "output": a, "category": category})
        rows_b.append({"id": f"q{i}", "instruction": "Say something.", "input": "", "output": b})
    return write_answers(tmp_path / "A.jsonl", rows_a), write_answers(tmp_path / "B.jsonl", rows_b)


def request(a: Path, b: Path, server: JudgeServer, judge: str = "vicuna", **extra) -> JudgeRequest:
    extra.setdefault("model", "local-judge")
    return JudgeRequest(judge=judge, a=str(a), b=str(b), base_url=server.base_url, **extra)


@pytest.mark.parametrize("judge", ["vicuna", "zheng", "pandalm"])
def test_every_item_is_judged_in_both_orders(judge: str, tmp_path: Path, fast: Settings, store: Store,
                                             server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["@score=9 good", "@score=3 weak", "@score=5 same"],
                   ["@score=4 meh", "@score=8 strong", "@score=5 same too"], ["math", "math", "writing"])
    summary = run_comparison(request(a, b, server, judge), fast, store)
    assert server.calls() == 6
    assert (summary["n"], summary["win"], summary["tie"], summary["lose"]) == (3, 1, 1, 1)
    assert summary["ws"] == pytest.approx(1.0) and summary["consistency"] == pytest.approx(1.0)
    assert set(summary["per_category"]) == {"math", "writing"}
    rows = store.judgments.rows(summary["run_id"])
    assert sorted((r.item_id, r.order_shown) for r in rows) == [(f"q{i}", o) for i in range(3) for o in ("ab", "ba")]
    if judge == "pandalm":
        assert server.calls("/completions") == 6 and server.calls("/chat/") == 0
        assert all(r.reference == "A reference answer." for r in rows)
    if judge == "vicuna":
        assert summary["capacity"] == pytest.approx(100 * (9 + 9 + 3 + 3 + 5 + 5) / (4 + 4 + 8 + 8 + 5 + 5))


def test_pandalm_over_chat_by_setting(tmp_path: Path, fast: Settings, sqlite_store: Store, server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["@score=9 x"], ["@score=2 y"])
    summary = run_comparison(request(a, b, server, "pandalm", pandalm_endpoint="chat"), fast, sqlite_store)
    assert server.calls("/chat/completions") == 2 and summary["win"] == 1


def test_a_position_biased_judge_is_seen(tmp_path: Path, fast: Settings, sqlite_store: Store) -> None:
    with JudgeServer(bias_first=3) as biased:
        a, b = answers(tmp_path, ["@score=5 a", "@score=6 a"], ["@score=5 b", "@score=6 b"])
        summary = run_comparison(request(a, b, biased), fast, sqlite_store)
    assert summary["position"]["favours"] == "first" and summary["position"]["first_position_share"] == 1.0
    assert summary["consistency"] == 0.0 and summary["tie"] == 2  # A wins once, loses once: a tie each


def test_faults_are_retried_and_garbage_is_unparsed_not_a_tie(tmp_path: Path, fast: Settings, store: Store,
                                                             server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["@429x2 @score=9 a", "@500x1 @score=9 b", "@badjsonx1 @score=9 c", "@garble d"],
                   ["@score=2 w", "@score=2 x", "@score=2 y", "@score=2 z"])
    summary = run_comparison(request(a, b, server), fast, store)
    assert summary["win"] == 3 and summary["unparsed"] == 1 and summary["tie"] == 0 and summary["n"] == 3
    assert summary["calls"]["retries"] == 2 * 2 + 2 * 1 + 2 * 1
    unparsed = [r for r in store.judgments.rows(summary["run_id"]) if r.status == "unparsed"]
    assert len(unparsed) == 2 and all("enjoyed reading" in (r.raw or "") for r in unparsed)


def test_a_rerun_makes_no_call_and_a_failed_call_is_retried_next_run(tmp_path: Path, fast: Settings,
                                                                      sqlite_store: Store, server: JudgeServer) -> None:
    fast.judge.max_retries = 1
    a, b = answers(tmp_path, ["@500x3 @score=9 a", "@score=9 b"], ["@score=1 x", "@score=1 y"])
    first = run_comparison(request(a, b, server), fast, sqlite_store)
    assert first["pending"] == 1 and first["win"] == 1  # both orders of item 0 failed twice (1 retry)
    second = run_comparison(request(a, b, server), fast, sqlite_store)
    assert second["run_id"] == first["run_id"] and second["win"] == 2 and second["pending"] == 0
    calls = server.calls()
    third = run_comparison(request(a, b, server), fast, sqlite_store)
    assert server.calls() == calls and third["calls"]["calls"] == 0 and third["win"] == 2


def test_headless_contract(tmp_path: Path, server: JudgeServer, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws"
    # q2 has an empty answer (judged, not dropped); q3 and q4 are identical texts under two ids (both count).
    a, b = answers(tmp_path, ["@score=8 a", "@score=2 b", "", "@score=7 same", "@score=7 same"],
                   ["@score=3 x", "@score=6 y", "@score=5 z", "@score=4 w", "@score=4 w"],
                   ["generic", "math", "math", "generic", "generic"])
    out = tmp_path / "out"
    argv = ["--workspace", str(workspace), "--set", "judge.backoff_base_s=0.02", "judge", str(a), str(b),
            "--judge", "vicuna", "--model", "local-judge", "--base-url", server.base_url, "--out", str(out)]
    assert main(argv) == 0
    lines = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and {(x["id"], x["order"]) for x in lines} == {(f"q{i}", o) for i in range(5) for o in ("ab", "ba")}
    assert all(x["review"] and x["status"] == "ok" for x in lines)
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [v["verdict"] for v in verdicts] == ["win", "lose", "lose", "win", "win"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"n", "win", "tie", "lose", "ws", "wr", "qs", "unparsed", "consistency", "per_category"} <= set(summary)
    assert (summary["n"], summary["win"], summary["lose"]) == (5, 3, 2)
    assert summary["ws"] == pytest.approx(1.2) and summary["wr"] == pytest.approx(0.6) and summary["qs"] == pytest.approx(0.6)
    assert summary["per_category"]["math"]["lose"] == 2
    assert server.calls() <= 10  # the identical q3/q4 requests may be answered once
    calls = server.calls()
    assert main(argv) == 0 and server.calls() == calls
    assert main(argv[:-2] + ["--dry-run"]) == 0
    assert "calls to make: 0" in capsys.readouterr().out


def test_bad_answer_files_name_the_line(tmp_path: Path, fast: Settings, sqlite_store: Store,
                                        server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["x", "y"], ["z", "w"])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "q0", "instruction": "Say something.", "output": "x"}\n{"id": "q1", "instruction": 3}\n')
    with pytest.raises(JudgeRunError, match=r"broken.jsonl:2: the field 'output' is missing"):
        run_comparison(request(broken, b, server), fast, sqlite_store)
    short = write_answers(tmp_path / "short.jsonl", [{"id": "q0", "instruction": "Say something.", "output": "x"}])
    with pytest.raises(JudgeRunError, match=r"1 ids of B.jsonl are not in short.jsonl \(first: q1\)"):
        run_comparison(request(short, b, server), fast, sqlite_store)
    with pytest.raises(JudgeRunError, match="exactly one"):
        JudgeRequest(a=str(a))


def test_model_against_the_test_sets_references(tmp_path: Path, fast: Settings, sqlite_store: Store,
                                                server: JudgeServer) -> None:
    from curation.judges.pairs import reference_answers

    references = reference_answers("coachlm150")[:3]
    a = write_answers(tmp_path / "mine.jsonl", [
        {"id": r.id, "instruction": r.instruction, "input": "", "output": "@score=10 mine"} for r in references])
    summary = run_comparison(JudgeRequest(judge="zheng", a=str(a), reference="coachlm150", model="local-judge",
                                          base_url=server.base_url), fast, sqlite_store)
    assert summary["model_b"] == "reference" and summary["testset"] == "coachlm150" and summary["n"] == 3
    rows = sqlite_store.judgments.rows(summary["run_id"])
    assert rows[0].answer_b == references[0].output


def test_cost_estimate_and_paid_runs_need_a_lead(tmp_path: Path, fast: Settings, sqlite_store: Store,
                                                  server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["a", "b"], ["c", "d"])
    paid = request(a, b, server, model="gpt-4")
    cost = estimate_cost(paid, fast, sqlite_store)
    assert cost.calls == 4 and cost.price_known and cost.cost_usd_max > 0 and cost.paid
    assert server.calls() == 0
    for someone in (None, Person("ann", "annotator"), Person("val", "voter")):
        with pytest.raises(Forbidden):
            start_judge_job(sqlite_store, fast, paid, someone)
    fast.llm.prices["free-local"] = [0.0, 0.0]
    assert not estimate_cost(request(a, b, server, model="free-local"), fast, sqlite_store).paid


def test_the_judge_job_runs_in_a_worker_and_resumes(tmp_path: Path, fast: Settings, sqlite_store: Store,
                                                    server: JudgeServer) -> None:
    a, b = answers(tmp_path, ["@score=9 a", "@score=1 b"], ["@score=5 c", "@score=5 d"])
    job_id = start_judge_job(sqlite_store, fast, request(a, b, server), LEAD)
    info = jobs.wait(sqlite_store, fast, job_id, timeout_s=120)
    assert info.status == "done", info.error
    assert info.params["paid"] is True  # an unknown model's price is unknown: treated as paid
    assert (info.result["win"], info.result["lose"]) == (1, 1)
    [run] = sqlite_store.judgments.runs()
    assert run.job_id == job_id and run.created_by == "lee"


def test_published_reviews_import_with_their_tallies(tmp_path: Path, sqlite_store: Store) -> None:
    [run] = import_reviews(sqlite_store, DATA / "koala_sample_wrap_reviews_gpt4.json", LEAD)
    assert run.source == "import" and run.testset == "koala180" and run.n_items == 24
    rows = sqlite_store.judgments.rows(run.id)
    assert len(rows) == 48 and all(r.status == "ok" for r in rows)
    summary = summarize(rows, run.params["orders"], samples=0)
    assert summary["n"] == 24 and summary["win"] + summary["tie"] + summary["lose"] == 24
    data = json.loads((DATA / "koala_sample_wrap_reviews_gpt4.json").read_text())["data"]
    first = data[0]
    assert (rows[0].score_a, rows[0].score_b) == tuple(json.loads(first["scores"]))
    # review_reverse shows Answer2 first: its scores are (B, A).
    assert (rows[1].score_b, rows[1].score_a) == tuple(json.loads(first["scores_reverse"]))
    assert import_reviews(sqlite_store, DATA / "koala_sample_wrap_reviews_gpt4.json", LEAD)[0].id == run.id
    with pytest.raises(Forbidden):
        import_reviews(sqlite_store, DATA / "koala_sample_wrap_reviews_gpt4.json", Person("v", "voter"))


def test_fastchat_reviews_import_as_one_order(sqlite_store: Store) -> None:
    [run] = import_reviews(sqlite_store, DATA / "fastchat_review_alpaca-13b_vicuna-13b.sample.jsonl", LEAD,
                           "alpaca-13b", "vicuna-13b")
    summary = summarize(sqlite_store.judgments.rows(run.id), run.params["orders"], samples=0)
    assert run.params["orders"] == ["ab"]
    assert (summary["win"], summary["tie"], summary["lose"]) == (1, 1, 3)
    assert summary["per_category"]["generic"]["n"] >= 1


def test_a_cancelled_judge_job_resumes_without_asking_stored_reviews_again(tmp_path: Path, fast: Settings,
                                                                           sqlite_store: Store) -> None:
    with JudgeServer(delay_s=0.25) as slow:
        a, b = answers(tmp_path, [f"@score=8 a{i}" for i in range(20)], [f"@score=3 b{i}" for i in range(20)])
        job_id = start_judge_job(sqlite_store, fast, request(a, b, slow, concurrency=4), LEAD)
        deadline = time.monotonic() + 120
        while not sqlite_store.judgments.runs() or len(sqlite_store.judgments.rows(sqlite_store.judgments.runs()[0].id)) < 8:
            assert time.monotonic() < deadline, "no judgment was stored in time"
            time.sleep(0.2)
        jobs.cancel(sqlite_store, fast, job_id, by=LEAD)
        assert jobs.wait(sqlite_store, fast, job_id, timeout_s=120).status == "cancelled"
        stored_before = len(sqlite_store.judgments.rows(sqlite_store.judgments.runs()[0].id))
        assert stored_before < 40
        jobs.resume(sqlite_store, fast, job_id, by=LEAD)
        info = jobs.wait(sqlite_store, fast, job_id, timeout_s=120)
        assert info.status == "done" and info.result["win"] == 20
        asked = [hit.key for hit in slow.hits]
        repeated = len(asked) - len(set(asked))
        # Only calls in flight when the cancel arrived (at most the concurrency) can be asked twice.
        assert repeated <= 4 and len(set(asked)) == 40
