"""The LLM rater against a loopback server of our own that injects faults (tests/llm_fault_server.py).

Real HTTP, the real openai client, real SQLite/PostgreSQL; the only fake is the server's behaviour.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import traceback
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from llm_fault_server import FaultServer, refusing_base_url
from sqlalchemy import delete, select
from waiting import wait_for

from curation import jobs
from curation.config import Settings, set_value
from curation.raters.llm import (
    EndpointRefused,
    EndpointUnreachable,
    LLMOptions,
    LLMRater,
    backoff_delay,
    call_key,
    price_per_million,
    retry_after_seconds,
)
from curation.raters.run import RateRequest, estimate_cost, rate
from curation.records import Record
from curation.store import Store, utcnow
from curation.store.schema import Job, LLMCall, Rating
from curation.studio_auth import Person

LEAD = Person("lead", "lead")  # jobs are launched by someone allowed to

MODEL = "fault-model"


def configure(settings: Settings, **values: object) -> Settings:
    """Set values the way ``--set`` does, so a worker process launched from these settings sees them too."""
    for key, value in values.items():
        dotted = key.replace("__", ".")
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        set_value(settings, dotted, text, origin="test")
        settings.overrides.append(f"{dotted}={text}")
    return settings


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Short timeouts and backoff so fault tests take seconds, not minutes."""
    return configure(settings, llm__timeout_s=0.8, llm__backoff_base_s=0.02, llm__max_retries=3, llm__model=MODEL)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(retry_after="1", stall_s=2.5) as running:
        yield running


def records(n: int, prefix: str = "Task") -> list[Record]:
    return [Record(f"{prefix} {i}: explain item {i}", "" if i % 2 else f"context {i}", f"Answer {i}") for i in range(n)]


def write_jsonl(path: Path, items: list[Record]) -> Path:
    path.write_text(
        "".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n" for r in items)
    )
    return path


def call_rows(store: Store) -> dict[str, LLMCall]:
    with store.db.session() as session:
        return {row.key: row for row in session.scalars(select(LLMCall))}


def rating_rows(store: Store) -> dict[str, Rating]:
    with store.db.session() as session:
        return {row.record_id: row for row in session.scalars(select(Rating))}


FAULTS = {
    "@429x2": ("ok", 3),  # two 429s with Retry-After, then an answer
    "@500x1": ("ok", 2),
    "@stallx1": ("ok", 2),  # first answer stalls past the timeout
    "@badjsonx1": ("ok", 2),
    "@dropx1": ("ok", 2),
    "@garble": ("unparsed", 1),
    "@400": ("error", 1),  # never retried: the server will not accept it
    "@500x9": ("error", 4),  # 1 attempt + max_retries 3, then given up
}


def test_faults_are_retried_statuses_stored_and_no_rating_lost(
    store: Store, fast: Settings, server: FaultServer, tmp_path: Path
) -> None:
    faulty = [Record(f"Explain {marker}", "", f"Answer for {marker}") for marker in FAULTS]
    items = records(12) + faulty
    request = RateRequest(
        rater="llm",
        input=str(write_jsonl(tmp_path / "in.jsonl", items)),
        out=str(tmp_path / "out.jsonl"),
        base_url=server.base_url,
        concurrency=4,
    )

    summary = rate(request, fast, store)

    for marker, (status, attempts) in FAULTS.items():
        assert server.attempts(marker) == attempts, marker
    ratings = rating_rows(store)
    assert set(ratings) == {r.id for r in items}  # every example has a stored rating
    for record in faulty:
        marker = record.instruction.split()[-1]
        assert ratings[record.id].status == FAULTS[marker][0], marker
    garbled = ratings[faulty[list(FAULTS).index("@garble")].id]
    assert garbled.score is None and garbled.score_0_5 is None
    assert garbled.raw is not None and garbled.raw.startswith("What a lovely answer")
    refused = ratings[faulty[list(FAULTS).index("@400")].id]
    assert refused.score is None and "HTTP 400" in (refused.raw or "")
    assert all(0 <= ratings[r.id].score <= 5 and ratings[r.id].status == "ok" for r in records(12))

    calls = call_rows(store)
    assert len(calls) == len(items)
    assert sorted(c.attempts for c in calls.values()) == sorted([1] * 12 + [a for _, a in FAULTS.values()])
    assert {c.status for c in calls.values() if "@500x9" in json.dumps(c.request)} == {"error"}
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in calls.values() if c.status == "ok")
    assert (summary.ok, summary.unparsed, summary.error) == (12 + 5, 1, 2)
    assert summary.retries == sum(a - 1 for _, a in FAULTS.values())

    lines = [json.loads(line) for line in Path(request.out or "").read_text().splitlines()]
    assert [line["id"] for line in lines] == [r.id for r in items]
    assert {line["status"] for line in lines if line["score"] is None} == {"unparsed", "error"}


def test_retry_after_is_honoured(sqlite_store: Store, fast: Settings, server: FaultServer) -> None:
    rater = LLMRater(LLMOptions.from_config(fast.llm, base_url=server.base_url), sqlite_store)
    [result] = rater.rate([Record("Explain @429x1", "", "Because.")])
    first, second = [hit for hit in server.hits if "@429x1" in hit.messages[0][1]]
    assert result.status == "ok"
    assert (first.action, second.action) == ("429", "ok")
    assert second.at - first.at >= 1.0  # the server said Retry-After: 1


def test_a_finished_run_makes_no_call_and_lost_ratings_are_rebuilt_from_the_call_log(
    store: Store, fast: Settings, server: FaultServer, tmp_path: Path
) -> None:
    items = records(10)
    request = RateRequest(
        rater="llm",
        input=str(write_jsonl(tmp_path / "in.jsonl", items)), out=str(tmp_path / "out.jsonl"), base_url=server.base_url
    )
    first = rate(request, fast, store)
    assert (first.calls, len(server.hits)) == (10, 10)

    again = rate(request, fast, store)
    assert (again.calls, again.already_rated, len(server.hits)) == (0, 10, 10)

    # Ratings gone but calls kept (a kill between the two commits): answered from the log, for free.
    with store.db.session() as session:
        session.execute(delete(Rating))
    rebuilt = rate(request, fast, store)
    assert (rebuilt.calls, rebuilt.cached_calls, rebuilt.ok, len(server.hits)) == (0, 10, 10, 10)
    assert Path(request.out or "").read_text().count("\n") == 10


def test_errors_are_retried_by_the_next_run_and_answers_are_never_overwritten(
    sqlite_store: Store, fast: Settings, server: FaultServer
) -> None:
    rater_options = LLMOptions.from_config(fast.llm, base_url=server.base_url)
    flaky = Record("Explain @500x4", "", "Eventually fine.")  # 4 failures: one run (1 + 3 retries) is not enough
    [failed] = LLMRater(rater_options, sqlite_store).rate([flaky])
    assert failed.status == "error"
    [recovered] = LLMRater(rater_options, sqlite_store).rate([flaky])
    assert recovered.status == "ok"
    [row] = call_rows(sqlite_store).values()
    assert (row.status, row.attempts) == ("ok", 5)  # attempts add up across runs
    assert server.attempts("@500x4") == 5


def test_concurrency_is_bounded(sqlite_store: Store, fast: Settings) -> None:
    with FaultServer(delay_s=0.2) as slow:
        rater = LLMRater(LLMOptions.from_config(fast.llm, base_url=slow.base_url, concurrency=3), sqlite_store)
        results = rater.rate(records(12))
    assert [r.status for r in results] == ["ok"] * 12
    assert slow.max_in_flight == 3


def test_a_refused_key_stops_the_run_with_one_sentence(
    sqlite_store: Store, fast: Settings, server: FaultServer
) -> None:
    rater = LLMRater(LLMOptions.from_config(fast.llm, base_url=server.base_url, concurrency=1), sqlite_store)
    with pytest.raises(EndpointRefused, match="HTTP 401.*API key"):
        rater.rate([Record(f"Explain @401 {i}", "", "x") for i in range(5)])
    assert len(server.hits) == 1  # no point asking again with the same key


def test_the_key_comes_from_the_environment_or_secrets_toml_and_is_never_stored(
    sqlite_store: Store, fast: Settings, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = RateRequest(
        rater="llm",
        input=str(write_jsonl(tmp_path / "in.jsonl", records(2))),
        out=str(tmp_path / "o.jsonl"),
        base_url=server.base_url,
    )
    configure(fast, llm__base_url=server.base_url)  # the key goes to the configured endpoint only
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-from-environment")
    rate(request, fast, sqlite_store)
    assert {hit.authorization for hit in server.hits} == {"Bearer test-key-from-environment"}

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('OPENAI_API_KEY = "test-key-from-secrets"\n')
    rate(
        RateRequest(
            rater="llm",
            input=str(write_jsonl(tmp_path / "more.jsonl", records(2, "More"))),
            out=str(tmp_path / "p.jsonl"),
            base_url=server.base_url,
        ),
        fast,
        sqlite_store,
    )
    assert server.hits[-1].authorization == "Bearer test-key-from-secrets"

    stored = json.dumps([c.request for c in call_rows(sqlite_store).values()])
    assert "test-key-from" not in stored and "test-key-from" not in Path(tmp_path / "o.jsonl").read_text()


def test_an_azure_style_endpoint_gets_the_deployment_in_the_path_and_the_key_in_api_key(
    sqlite_store: Store, fast: Settings, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = server.base_url.removesuffix("/v1")
    configure(fast, llm__api_version="2024-10-21", llm__key_base_urls=[resource + "/"])
    monkeypatch.setenv("OPENAI_API_KEY", "azure-key")
    request = RateRequest(
        rater="llm",
        input=str(write_jsonl(tmp_path / "in.jsonl", records(2))), out=str(tmp_path / "o.jsonl"), base_url=resource
    )
    summary = rate(request, fast, sqlite_store)

    assert summary.ok == 2
    assert {hit.path for hit in server.hits} == {f"/openai/deployments/{MODEL}/chat/completions?api-version=2024-10-21"}
    assert {hit.api_key_header for hit in server.hits} == {"azure-key"}
    assert {hit.authorization for hit in server.hits} == {""}


def test_cost_comes_from_the_price_table(
    sqlite_store: Store, fast: Settings, server: FaultServer, tmp_path: Path
) -> None:
    configure(fast, llm__prices={MODEL: [1000.0, 2000.0]})
    request = RateRequest(
        rater="llm",
        input=str(write_jsonl(tmp_path / "in.jsonl", records(4))),
        out=str(tmp_path / "o.jsonl"),
        base_url=server.base_url,
    )
    summary = rate(request, fast, sqlite_store)
    calls = call_rows(sqlite_store).values()
    for call in calls:
        assert call.cost_usd == pytest.approx((call.prompt_tokens * 1000 + call.completion_tokens * 2000) / 1e6)
    assert summary.cost_usd == pytest.approx(sum(c.cost_usd for c in calls)) and summary.cost_usd > 0


def test_dry_run_estimate_counts_only_calls_not_yet_answered(
    sqlite_store: Store, fast: Settings, server: FaultServer, tmp_path: Path
) -> None:
    configure(fast, llm__prices={MODEL: [1000.0, 2000.0]}, llm__max_tokens=100)
    items = records(6)
    before = estimate_cost(fast, sqlite_store, items + items[:2], base_url=server.base_url)
    assert (before.records, before.unique, before.calls, before.completion_tokens_max) == (8, 6, 6, 600)
    assert before.prompt_tokens > 6 * 60 and before.cost_usd_max > 0 and before.price_known
    assert before.completion_tokens_expected is None  # no earlier answers of this model to learn from
    assert server.hits == []  # nothing was sent

    rate(
        RateRequest(
            rater="llm",
            input=str(write_jsonl(tmp_path / "in.jsonl", items[:4])),
            out=str(tmp_path / "o.jsonl"),
            base_url=server.base_url,
        ),
        fast,
        sqlite_store,
    )
    after = estimate_cost(fast, sqlite_store, items, base_url=server.base_url)
    assert (after.already_rated, after.calls, after.completion_tokens_max) == (4, 2, 200)
    other_dimension = estimate_cost(fast, sqlite_store, items, dimension="helpfulness", base_url=server.base_url)
    assert (other_dimension.already_rated, other_dimension.calls) == (0, 6)


def test_call_key_is_a_hash_of_model_messages_and_parameters() -> None:
    messages = [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]
    key = call_key("m", messages, {"temperature": 0.0, "max_tokens": 8})
    assert key == call_key(
        "m", [dict(reversed(list(m.items()))) for m in messages], {"max_tokens": 8, "temperature": 0.0}
    )
    assert key != call_key("m2", messages, {"temperature": 0.0, "max_tokens": 8})
    assert key != call_key("m", messages, {"temperature": 0.0, "max_tokens": 9})
    assert key != call_key("m", messages[::-1], {"temperature": 0.0, "max_tokens": 8})


def test_retry_after_forms_and_backoff_bounds() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_ten = retry_after_seconds({"retry-after": format_datetime(utcnow() + timedelta(seconds=10), usegmt=True)})
    assert in_ten is not None and 8.0 <= in_ten <= 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None
    rng = random.Random(0)
    for attempt in range(1, 12):
        delay = backoff_delay(attempt, 1.0, 30.0, None, rng)
        ceiling = min(30.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert 5.0 <= backoff_delay(1, 1.0, 30.0, 5.0, rng) <= 5.25
    assert backoff_delay(1, 1.0, 30.0, 600.0, rng) <= 30.25


def test_prices_match_dated_model_names_to_their_family() -> None:
    prices = {"gpt-4": [30, 60], "gpt-4o": [2.5, 10], "gpt-4o-mini": [0.15, 0.6]}
    assert price_per_million("gpt-4o-2024-08-06", prices) == (2.5, 10.0)
    assert price_per_million("gpt-4o-mini-2024-07-18", prices) == (0.15, 0.6)
    assert price_per_million("gpt-4", prices) == (30.0, 60.0)
    assert price_per_million("llama3", prices) is None


def test_a_worker_killed_mid_job_resumes_without_repeating_a_completed_call(
    store: Store, fast: Settings, tmp_path: Path
) -> None:
    configure(fast, jobs__heartbeat_s=0.3, jobs__stale_after_s=3, jobs__poll_s=0.1)
    items = records(60)
    with FaultServer(delay_s=0.15) as slow:
        request = RateRequest(
            rater="llm",
            input=str(write_jsonl(tmp_path / "in.jsonl", items)),
            out=str(tmp_path / "out.jsonl"),
            base_url=slow.base_url,
            concurrency=4,
        )
        job_id = jobs.start(store, fast, "rate", request.as_params(), title=request.title(), by=LEAD)
        wait_for(lambda: len(call_rows(store)) >= 15, "15 answered calls", timeout_s=120)
        os.kill(jobs.get(store, fast, job_id).pid or 0, signal.SIGKILL)
        killed_at = time.monotonic()
        answered = {key: (row.created_at, row.response_text) for key, row in call_rows(store).items()}
        assert 15 <= len(answered) < len(items)  # killed mid-job

        wait_for(lambda: jobs.get(store, fast, job_id).state == "stale", "the stale heartbeat", timeout_s=30)
        jobs.resume(store, fast, job_id, by=LEAD)
        info = jobs.wait(store, fast, job_id, timeout_s=120)

    assert (info.status, info.attempts) == ("done", 2), jobs.events(store, job_id)
    calls = call_rows(store)
    assert len(calls) == len(items) and {c.status for c in calls.values()} == {"ok"}
    for key, (created_at, text) in answered.items():  # completed calls were not made again
        assert (calls[key].created_at, calls[key].response_text, calls[key].attempts) == (created_at, text, 1)
    answered_messages = {FaultServer.message_key(calls[key].request["messages"]) for key in answered}
    ours = {FaultServer.message_key(call.request["messages"]) for call in calls.values()}
    # Only this test's requests: a stray client elsewhere on the machine may reach a reused port.
    asked_after_kill = {hit.key for hit in slow.hits if hit.at > killed_at and hit.key in ours}
    assert not answered_messages & asked_after_kill
    assert info.result["calls"] + info.result["cached_calls"] + info.result["already_rated"] == len(items)
    assert info.result["calls"] == len(asked_after_kill)
    assert {r.status for r in rating_rows(store).values()} == {"ok"}
    assert set(rating_rows(store)) == {r.id for r in items}  # no example left unrated
    assert [json.loads(line)["id"] for line in Path(request.out or "").read_text().splitlines()] == [
        r.id for r in items
    ]
    with store.db.session() as session:
        assert session.get(Job, job_id).progress_done == len(items)


def test_a_cancelled_rate_job_keeps_what_it_rated_and_resumes_from_there(
    sqlite_store: Store, fast: Settings, tmp_path: Path
) -> None:
    configure(fast, jobs__heartbeat_s=0.2, jobs__poll_s=0.1)
    items = records(40)
    with FaultServer(delay_s=0.25) as slow:
        request = RateRequest(
            rater="llm",
            input=str(write_jsonl(tmp_path / "in.jsonl", items)),
            out=str(tmp_path / "out.jsonl"),
            base_url=slow.base_url,
            concurrency=2,
        )
        job_id = jobs.start(sqlite_store, fast, "rate", request.as_params(), by=LEAD)
        wait_for(lambda: len(rating_rows(sqlite_store)) >= 4, "four ratings", timeout_s=120)
        jobs.cancel(sqlite_store, fast, job_id, by=LEAD)
        cancelled = jobs.wait(sqlite_store, fast, job_id, timeout_s=60)
        kept = set(rating_rows(sqlite_store))
        hits_at_cancel = len(slow.hits)

        assert cancelled.status == "cancelled" and 4 <= len(kept) < len(items)
        assert not Path(request.out or "").exists()  # no half-written output
        assert sum(c.status == "ok" for c in call_rows(sqlite_store).values()) >= len(kept)  # answered calls kept
        jobs.resume(sqlite_store, fast, job_id, by=LEAD)
        info = jobs.wait(sqlite_store, fast, job_id, timeout_s=120)

    assert info.status == "done" and info.result["already_rated"] >= len(kept)
    ours = {FaultServer.message_key(call.request["messages"]) for call in call_rows(sqlite_store).values()}
    asked_after_resume = [hit for hit in slow.hits[hits_at_cancel:] if hit.key in ours]  # not a stray client's
    assert len(asked_after_resume) == info.result["calls"] <= len(items) - len(kept)
    assert set(rating_rows(sqlite_store)) == {r.id for r in items}


def test_the_key_goes_only_to_the_endpoints_it_was_configured_for(
    sqlite_store: Store, fast: Settings, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-only-for-the-configured-one")
    logged: list[str] = []

    def rate_with(settings: Settings, prefix: str) -> None:
        request = RateRequest(
            rater="llm",
            input=str(write_jsonl(tmp_path / f"{prefix}.jsonl", records(2, prefix))),
            out=str(tmp_path / f"{prefix}.out.jsonl"),
            base_url=server.base_url,
        )
        rate(request, settings, sqlite_store, log=lambda message, level="info": logged.append(message))

    rate_with(fast, "Other")  # --base-url names an endpoint the key was not configured for
    assert {hit.authorization for hit in server.hits} == {"Bearer no-key-configured"}
    assert any("not sent to" in line and "llm.key_base_urls" in line for line in logged)

    configure(fast, llm__key_base_urls=[server.base_url + "/"])  # a lead lists it (trailing slash or not)
    rate_with(fast, "Listed")
    assert server.hits[-1].authorization == "Bearer test-key-only-for-the-configured-one"


def test_an_endpoint_that_echoes_the_key_never_gets_it_stored_or_logged(
    store: Store, fast: Settings, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "test-key-echoed-back-7f3a9c"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    configure(fast, llm__base_url=server.base_url)
    logged: list[str] = []
    rater = LLMRater(
        LLMOptions.from_config(fast.llm), store, api_key=key, log=lambda message, level="info": logged.append(message)
    )
    items = [Record(f"Explain {marker}", "", "x") for marker in ("@echo400", "@echo500x9", "@echo", "@echo500x1")]
    results = rater.rate(items)

    assert all(hit.authorization == f"Bearer {key}" for hit in server.hits)  # it was sent, and echoed
    assert [r.status for r in results] == ["error", "error", "ok", "ok"]
    assert "HTTP 400" in (results[0].raw or "") and "[REDACTED]" in (results[0].raw or "")
    assert "[REDACTED]" in (results[2].raw or "") and (results[2].explanation or "").count("[REDACTED]") == 1
    stored = json.dumps([[c.response_text, c.error, c.request] for c in call_rows(store).values()])
    assert key not in stored and "[REDACTED]" in stored
    assert logged and key not in "\n".join(logged)

    with pytest.raises(EndpointRefused) as refused:
        rater.rate([Record("Explain @echo401", "", "x")])
    assert key not in str(refused.value) and "HTTP 401" in str(refused.value)
    assert key not in "".join(traceback.format_exception(refused.value))  # no chained error carries it


def test_nothing_listening_fails_at_once_with_one_sentence(sqlite_store: Store, fast: Settings) -> None:
    configure(fast, llm__max_retries=6, llm__backoff_base_s=1.0)  # retries would take a minute
    with refusing_base_url() as base_url:
        rater = LLMRater(LLMOptions.from_config(fast.llm, base_url=base_url), sqlite_store)
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable, match="nothing answers at .*no call was made"):
            rater.rate(records(5))
    assert time.monotonic() - started < 10
    assert call_rows(sqlite_store) == {}


def test_a_model_without_a_price_counts_as_paid_and_its_cost_as_unknown(
    sqlite_store: Store, fast: Settings, server: FaultServer
) -> None:
    from curation.llm import is_paid

    assert is_paid("local-model", {}) and is_paid("gpt-4o", {"gpt-4o": [2.5, 10]})
    assert not is_paid("local-model", {"local-model": [0, 0]})
    estimate = estimate_cost(fast, sqlite_store, records(3), base_url=server.base_url)
    assert not estimate.price_known and "cost: unknown" in "\n".join(estimate.lines())
