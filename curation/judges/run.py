"""Running a comparison: every item judged in both orders, every review stored as it arrives.

Entry points: :func:`run_comparison` (headless, or the body of a ``judge`` job), :func:`estimate_cost`
(the dry run), :func:`start_judge_job` (what the studio calls, permission checks first). A comparison is
identified by its judge, judge version, model labels and the items' texts, so running it again continues
the same run: finished reviews are skipped and the call log answers any repeated call for free.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.config import Settings, secret
from curation.judges.base import JUDGE_KINDS, PANDALM_ENDPOINTS, Judge, JudgeError, make_judge
from curation.judges.pairs import REFERENCE, Pair, PairingError, pair_answers, pair_with_references, read_answers
from curation.judges.rule import ORDERS, outcome_for_a, winner_model
from curation.judges.stats import item_results, summarize
from curation.llm import CallResult, LLMClient, estimate_prompt_tokens, price_per_million, request_key
from curation.llm.client import is_paid  # one rule: an unknown price counts as paid
from curation.params import JobParams
from curation.progress import ProgressFn
from curation.store import JudgmentRow, RunInfo, RunSpec, Store
from curation.store.writer import BatchWriter
from curation.studio_auth import Person, require

LogFn = Callable[[str, str], None]


class JudgeRunError(ValueError):
    """A comparison that cannot run as given; the message says what to change."""


@dataclass
class JudgeRequest(JobParams):
    """What to compare and with which judge; also a ``judge`` job's parameters (never a key)."""

    judge: str = "vicuna"
    a: str | None = None  # model A's answers (JSONL)
    b: str | None = None  # model B's answers ...
    reference: str | None = None  # ... or a test set whose reference answers stand for B
    model_a: str | None = None  # labels; default: the file names
    model_b: str | None = None
    testset: str | None = None  # label of the items (default: the reference set or A's file name)
    model: str | None = None  # the judge model; None: settings.judge
    base_url: str | None = None
    concurrency: int | None = None
    pandalm_endpoint: str | None = None  # completions | chat
    out: str | None = None  # folder for judgments.jsonl and summary.json
    paid: bool = False
    # "files": a and b are answer files; "store": they are model ids in the Answers store, on ``testset``.
    source: str = "files"
    decoding_a: str | None = None  # store: which decoding of A's answers (None: the only one)
    decoding_b: str | None = None

    def __post_init__(self) -> None:
        if self.judge not in JUDGE_KINDS:
            raise JudgeRunError(f"unknown judge '{self.judge}'; choose one of {', '.join(JUDGE_KINDS)}")
        if self.source not in ("files", "store"):
            raise JudgeRunError(f"answers come from 'files' or 'store', not '{self.source}'")
        if not self.a:
            raise JudgeRunError("give model A's answers file (A.jsonl)" if self.source == "files" else "give model A's id")
        if self.source == "store" and not (self.testset or self.reference):
            raise JudgeRunError("comparing stored answers needs --testset NAME (the test set both models answered)")
        if bool(self.b) == bool(self.reference):
            raise JudgeRunError("give model B's answers file or --reference TESTSET (exactly one)")
        if self.concurrency is not None and self.concurrency < 1:
            raise JudgeRunError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.pandalm_endpoint is not None and self.pandalm_endpoint not in PANDALM_ENDPOINTS:
            raise JudgeRunError(f"pandalm endpoint must be one of {', '.join(PANDALM_ENDPOINTS)}")

    @property
    def label_a(self) -> str:
        return self.model_a or (self.a or "A" if self.source == "store" else Path(self.a or "A").stem)

    @property
    def label_b(self) -> str:
        if self.model_b:
            return self.model_b
        if self.reference:
            return REFERENCE
        return self.b or "B" if self.source == "store" else Path(self.b or "B").stem

    @property
    def label_testset(self) -> str:
        return self.testset or self.reference or Path(self.a or "").stem

    def title(self) -> str:
        return f"judge {self.label_a} vs {self.label_b} on {self.label_testset} with {self.judge}"


def load_pairs(request: JudgeRequest, store: Store) -> tuple[list[Pair], dict[str, list[str]]]:
    """The items to judge, and the ids left out because one side has no answer (stored answers only)."""
    if request.source == "store":
        from curation.judges.stored import stored_pairs

        try:
            return stored_pairs(store, request.reference or request.testset or "", request.a or "",
                                None if request.reference else request.b, request.decoding_a, request.decoding_b)
        except PairingError as err:
            raise JudgeRunError(str(err)) from err
    return _file_pairs(request), {"a": [], "b": []}


def _file_pairs(request: JudgeRequest) -> list[Pair]:
    try:
        a = read_answers(Path(request.a or ""))
        if request.reference:
            return pair_with_references(a, request.reference, request.label_a)
        return pair_answers(a, read_answers(Path(request.b or "")), Path(request.a or "").name, Path(request.b or "").name)
    except PairingError as err:
        raise JudgeRunError(str(err)) from err


def build_judge(request: JudgeRequest, settings: Settings) -> Judge:
    try:
        return make_judge(
            request.judge,
            settings.judge,
            prices=settings.llm.prices,
            model=request.model,
            base_url=request.base_url,
            concurrency=request.concurrency,
            pandalm_endpoint=request.pandalm_endpoint,
        )
    except JudgeError as err:
        raise JudgeRunError(str(err)) from err


def run_key(judge: Judge, pairs: Sequence[Pair], model_a: str, model_b: str, testset: str) -> str:
    texts = [[p.item_id, p.instruction, p.input, p.answer_a, p.answer_b] for p in pairs]
    parts = [judge.kind, judge.version, model_a, model_b, testset, texts]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def open_run(
    request: JudgeRequest, judge: Judge, pairs: Sequence[Pair], store: Store, job_id: int | None, created_by: str
) -> RunInfo:
    spec = RunSpec(
        key=run_key(judge, pairs, request.label_a, request.label_b, request.label_testset),
        name=f"{request.label_a} vs {request.label_b} — {request.label_testset} — {judge.kind} ({judge.endpoint.model})",
        judge=judge.kind,
        judge_model=judge.endpoint.model,
        judge_version=judge.version,
        model_a=request.label_a,
        model_b=request.label_b,
        testset=request.label_testset,
        source="run",
        n_items=len(pairs),
        params={**{k: v for k, v in request.as_params().items() if k != "out"}, "orders": list(ORDERS)},
        job_id=job_id,
        created_by=created_by,
    )
    return store.judgments.find_or_create_run(spec)


def requests_for(judge: Judge, pair: Pair, order: str) -> dict[str, Any]:
    first, second = (pair.answer_a, pair.answer_b) if order == "ab" else (pair.answer_b, pair.answer_a)
    return judge.request(pair.instruction, pair.input, first, second)


def judgment_row(judge: Judge, pair: Pair, position: int, order: str, call: CallResult) -> JudgmentRow:
    """The stored form of one review: the winner as a model, scores as the models', the raw text kept."""
    base = {
        "item_id": pair.item_id,
        "order_shown": order,
        "position": position,
        "category": pair.category,
        "instruction": pair.instruction,
        "input": pair.input,
        "answer_a": pair.answer_a,
        "answer_b": pair.answer_b,
        "call_key": call.key,
    }
    if call.status != "ok":
        return JudgmentRow(**base, status="error", raw=call.error, problem=call.error)
    parsed = judge.parse(call.text)
    if parsed.status != "ok" or parsed.winner is None:
        return JudgmentRow(**base, status="unparsed", raw=call.text, problem=parsed.problem)
    score_first, score_second = parsed.score_1, parsed.score_2
    score_a, score_b = (score_first, score_second) if order == "ab" else (score_second, score_first)
    return JudgmentRow(
        **base,
        status="ok",
        winner=winner_model(parsed.winner, order),
        score_a=score_a,
        score_b=score_b,
        raw=call.text,
        reason=parsed.reason,
        reference=parsed.reference,
    )


def run_comparison(
    request: JudgeRequest,
    settings: Settings,
    store: Store,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    job_id: int | None = None,
    created_by: str = "cli",
) -> dict[str, Any]:
    """Judge every item in both orders (skipping stored reviews); returns the summary (and writes ``out``)."""
    started = time.monotonic()
    log = log or (lambda message, level="info": None)
    pairs, missing = load_pairs(request, store)
    judge = build_judge(request, settings)
    run = open_run(request, judge, pairs, store, job_id, created_by)
    for side, ids in missing.items():
        if ids:
            log(f"{len(ids)} items have no answer from model {side.upper()} and are not judged "
                f"(first: {', '.join(ids[:3])})", "warning")
    finished = store.judgments.finished(run.id)
    todo = [(i, pair, order) for i, pair in enumerate(pairs) for order in ORDERS if (pair.item_id, order) not in finished]
    total = 2 * len(pairs)
    log(f"run #{run.id}: {len(pairs)} items x 2 orders; {total - len(todo)} reviews stored, {len(todo)} to ask", "info")
    client = LLMClient(judge.endpoint, store, api_key=secret(settings.judge.api_key_name), job_id=job_id, log=log)
    _judge_all(judge, client, store, run.id, todo, total - len(todo), total, progress)
    rows = store.judgments.rows(run.id)
    summary = {
        **run_details(run),
        **summarize(rows, ORDERS, settings.judge.bootstrap_samples),
        "missing": {"a": len(missing["a"]), "b": len(missing["b"]), "ids": (missing["a"] + missing["b"])[:20]},
        "calls": asdict(client.stats),
        "seconds": round(time.monotonic() - started, 3),
    }
    if request.out:
        write_outputs(Path(request.out), rows, summary)
    return summary


def _judge_all(
    judge: Judge,
    client: LLMClient,
    store: Store,
    run_id: int,
    todo: list[tuple[int, Pair, str]],
    done: int,
    total: int,
    progress: ProgressFn | None,
) -> None:
    if progress is not None:
        progress(done, total, f"judged {done}/{total}")
    if not todo:
        return
    writer: BatchWriter[JudgmentRow] = BatchWriter(lambda rows: store.judgments.save(run_id, rows), "judgment-store")
    counter = {"done": done}

    def stored_as_they_come(index: int, call: CallResult) -> None:
        position, pair, order = todo[index]
        writer.put(judgment_row(judge, pair, position, order, call))
        counter["done"] += 1
        if progress is not None:
            progress(counter["done"], total, f"judged {counter['done']}/{total}")

    try:
        client.complete([requests_for(judge, pair, order) for _, pair, order in todo], stored_as_they_come)
    finally:
        writer.close()


def run_details(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name,
        "judge": run.judge,
        "judge_model": run.judge_model,
        "judge_version": run.judge_version,
        "model_a": run.model_a,
        "model_b": run.model_b,
        "testset": run.testset,
        "source": run.source,
    }


def write_outputs(out: Path, rows: Sequence[JudgmentRow], summary: dict[str, Any]) -> None:
    """``judgments.jsonl`` (one line per item and order), ``verdicts.jsonl`` (one per decided item) and
    ``summary.json``, each replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    items = item_results(rows, ORDERS)
    outcomes = {item.item_id: item.outcome for item in items}
    lines = [json.dumps(_judgment_line(row, outcomes[row.item_id]), ensure_ascii=False) for row in rows]
    _write_atomic(out / "judgments.jsonl", "".join(line + "\n" for line in lines))
    # One verdict per decided item, from A's side: what `curation study results --judgments` reads.
    judge = f"{summary.get('judge', 'judge')}:{summary.get('judge_model', '')}"
    verdicts = [json.dumps({"id": i.item_id, "verdict": i.outcome, "judge": judge, "category": i.category})
                for i in items if i.outcome in ("win", "tie", "lose")]
    _write_atomic(out / "verdicts.jsonl", "".join(line + "\n" for line in verdicts))
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _judgment_line(row: JudgmentRow, item_outcome: str) -> dict[str, Any]:
    return {
        "id": row.item_id,
        "order": row.order_shown,
        "shown_first": "a" if row.order_shown == "ab" else "b",
        "category": row.category,
        "status": row.status,
        "winner": row.winner,
        "outcome_for_a": outcome_for_a(row.winner) if row.winner else None,
        "score_a": row.score_a,
        "score_b": row.score_b,
        "review": row.raw,
        "problem": row.problem,
        "reference": row.reference,
        "item_outcome": item_outcome,
    }


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


# ----------------------------------------------------------------------------------------------------
# Cost, permission, job


@dataclass
class JudgeCost:
    judge: str
    model: str
    items: int
    reviews: int  # items x 2 orders
    stored: int  # reviews already in the store
    cached_calls: int  # answered by the call log, free
    calls: int
    prompt_tokens: int
    completion_tokens_max: int
    price_known: bool
    cost_usd_max: float
    paid: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        lines = [
            f"dry run: {self.judge} judge with {self.model}",
            (f"  items: {self.items} x 2 orders = {self.reviews} reviews; stored already: {self.stored}; "
            f"answered in the call log: {self.cached_calls}"),
            f"  calls to make: {self.calls}",
            f"  prompt tokens ≈ {self.prompt_tokens}; completion tokens ≤ {self.completion_tokens_max}",
        ]
        if not self.price_known:
            lines.append(f"  cost: no price for '{self.model}' in llm.prices (shown as 0; launching it needs a lead)")
        else:
            lines.append(f"  cost: ≤ ${self.cost_usd_max:.4f} at most")
        lines.append("nothing was sent")
        return lines


def estimate_cost(request: JudgeRequest, settings: Settings, store: Store) -> JudgeCost:
    """Calls, tokens and the most the run can cost; finished reviews and logged calls are free."""
    pairs, _ = load_pairs(request, store)
    judge = build_judge(request, settings)
    key = run_key(judge, pairs, request.label_a, request.label_b, request.label_testset)
    existing = next((run for run in store.judgments.runs() if run.key == key), None)
    finished = store.judgments.finished(existing.id) if existing else set()
    wanted = [requests_for(judge, p, o) for p in pairs for o in ORDERS if (p.item_id, o) not in finished]
    client = LLMClient(judge.endpoint, store)
    answered = client.calls.answered(request_key(r) for r in wanted)
    to_call = [r for r in wanted if request_key(r) not in answered]
    prompt_tokens = sum(_prompt_tokens(r) for r in to_call)
    completion_max = len(to_call) * judge.endpoint.max_tokens
    price = price_per_million(judge.endpoint.model, settings.llm.prices)
    rates = price or (0.0, 0.0)
    return JudgeCost(
        judge=judge.kind,
        model=judge.endpoint.model,
        items=len(pairs),
        reviews=2 * len(pairs),
        stored=len(finished),
        cached_calls=len(wanted) - len(to_call),
        calls=len(to_call),
        prompt_tokens=prompt_tokens,
        completion_tokens_max=completion_max,
        price_known=price is not None,
        cost_usd_max=(prompt_tokens * rates[0] + completion_max * rates[1]) / 1e6,
        paid=is_paid(judge.endpoint.model, settings.llm.prices),
    )


def _prompt_tokens(request: dict[str, Any]) -> int:
    if "messages" in request:
        return estimate_prompt_tokens(request["messages"])
    return estimate_prompt_tokens([{"content": request["prompt"]}])


def start_judge_job(store: Store, settings: Settings, request: JudgeRequest, person: Person | None) -> int:
    """Launch a ``judge`` job as ``person``: a lead's right; a paid one says so in its parameters."""
    from curation import jobs

    acting = require(person, "judge", "run a judge")
    request.paid = is_paid(build_judge(request, settings).endpoint.model, settings.llm.prices)
    if request.paid:
        require(person, "run_paid_job", "launch a paid judge run")
    return jobs.start(store, settings, "judge", request.as_params(), request.title(), by=acting)


def judge_job(context: Any) -> dict[str, Any]:
    """The ``judge`` job: re-runnable; a resumed job asks only for the reviews not stored yet."""
    from curation import jobs

    request = JudgeRequest.from_params(context.params)
    created_by = jobs.get(context.store, context.settings, context.job_id).created_by
    return run_comparison(
        request,
        context.settings,
        context.store,
        progress=context.progress,
        log=lambda message, level="info": context.log(message, level),
        job_id=context.job_id,
        created_by=created_by,
    )
