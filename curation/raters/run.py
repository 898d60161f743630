"""Rating a file or a workspace dataset, headless or as a background job; and the dry-run cost estimate.

Every rating goes into the store as it completes (keyed by record content, rater and version), so a
re-run skips what is rated, a killed run resumes where it stopped, and the same text in two datasets is
rated once. A file rated here writes one line per input row, in input order: all input fields plus
``id``, ``score``, ``score_0_5``, ``rater``, ``rater_version``, ``status``, ``flags``, ``explanation``, ``raw``
and ``duplicate_of`` (the location of the first copy when a row repeats an earlier one exactly: the
text is rated once and every copy gets the rating).

Who may launch what: an IQS rating needs ``run_job``; an LLM rating that is paid (a model without a
known price counts as paid) or goes to a base URL other than the configured one needs ``run_paid_job``
(:func:`launch_rule`, checked by :func:`start_rating` and :func:`authorize`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation.config import Settings, secret
from curation.formats import Rejection, parse_mapping, read_file, write_records
from curation.llm.keys import normal_url
from curation.params import JobParams
from curation.progress import ProgressFn
from curation.raters.base import Rater, RatingResult
from curation.raters.llm import LLMOptions, LLMRater, estimate_prompt_tokens, price_per_million
from curation.raters.prompt import check_dimension
from curation.records import Record
from curation.store import Store
from curation.store.writer import BatchWriter
from curation.studio_auth import Person, require

LogFn = Callable[[str, str], None]
RATERS = ("iqs", "llm")
OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "alpaca"}
SHOWN_REJECTIONS = 5


class RateError(ValueError):
    """A rating request that cannot run as given; the message says what to change."""


@dataclass
class RateRequest(JobParams):
    """What to rate and how; also a rate job's parameters (no secrets: the key is looked up by the worker)."""

    rater: str = "iqs"
    input: str | None = None  # a file in any readable format ...
    dataset: str | None = None  # ... or a workspace dataset
    out: str | None = None  # .jsonl or .json; optional for a dataset (ratings are in the store)
    input_format: str | None = None
    mapping: str | None = None
    model: str | None = None  # None: settings.llm
    base_url: str | None = None
    dimension: str | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.rater not in RATERS:
            raise RateError(f"unknown rater '{self.rater}'; choose one of {', '.join(RATERS)}")
        if bool(self.input) == bool(self.dataset):
            raise RateError("give either an input file or --dataset NAME (exactly one)")
        if self.input and not self.out:
            raise RateError("rating a file needs --out OUT.jsonl for the results")
        if self.out and Path(self.out).suffix.lower() not in OUTPUT_FORMATS:
            raise RateError(f"--out {self.out}: write .jsonl (one line per record) or .json")
        if self.concurrency is not None and self.concurrency < 1:
            raise RateError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.dimension is not None:
            try:
                self.dimension = check_dimension(self.dimension)
            except ValueError as err:
                raise RateError(str(err)) from err

    def title(self) -> str:
        what = f"dataset '{self.dataset}'" if self.dataset else Path(self.input or "").name
        how = f"llm {self.model or ''}".strip() if self.rater == "llm" else "iqs"
        return f"rate {what} with {how}"


@dataclass
class Loaded:
    records: list[Record]
    rejections: list[Rejection] = field(default_factory=list)
    dataset_id: int | None = None
    duplicates: dict[int, str] = field(default_factory=dict)  # index in records -> location of the first copy


@dataclass(frozen=True)
class LaunchRule:
    """What launching a rating needs: the permission, the words for a refusal, and whether it is paid."""

    action: str  # run_job | run_paid_job
    doing: str
    paid: bool
    reasons: tuple[str, ...] = ()  # why it needs a lead, for the page


@dataclass
class RateSummary:
    rater: str
    rater_version: str
    records: int
    unique: int
    already_rated: int
    rated_now: int
    ok: int
    unparsed: int
    error: int
    rejected_rows: int
    seconds: float
    rejections: list[str] = field(default_factory=list)  # the first few, "location: reason"
    out: str | None = None
    duplicates: int = 0  # input rows repeating an earlier row: rated once, written with duplicate_of
    calls: int = 0
    cached_calls: int = 0
    retries: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    price_known: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rated(self) -> int:
        """Records that have a rating now (ok, or unparsed with the answer kept)."""
        return self.ok + self.unparsed

    def lines(self) -> list[str]:
        lines = [
            (
                f"rated {self.records} records with {self.rater} (version {self.rater_version}) in {self.seconds:.1f} s: "
                f"{self.ok} ok, {self.unparsed} unparsed, {self.error} error; "
                f"{self.already_rated} were already rated, {self.rated_now} rated now"
            )
        ]
        if self.rater.startswith("llm:"):
            lines.append(
                f"calls: {self.calls} made, {self.cached_calls} answered from the call log, {self.retries} retries, "
                f"{self.failed_calls} failed; tokens {self.prompt_tokens} prompt + {self.completion_tokens} completion; "
                f"cost ${self.cost_usd:.4f}" + ("" if self.price_known else " (no price for this model: unknown)")
            )
        if self.error:
            lines.append(
                f"{self.error} examples have no rating (status error); run the same command again to retry them"
            )
        if self.duplicates:
            lines.append(
                f"{self.duplicates} input rows repeat an earlier row exactly: rated once, each written with "
                "duplicate_of naming the first"
            )
        if self.rejected_rows:
            lines.append(f"{self.rejected_rows} input rows were rejected when reading and not rated:")
            lines += [f"  {rejection}" for rejection in self.rejections]
            if self.rejected_rows > len(self.rejections):
                lines.append("  … `python -m curation validate FILE --report R.csv` lists them all")
        if self.out:
            lines.append(f"wrote {self.out}")
        return lines


@dataclass
class CostEstimate:
    """What a run would spend, before anything is spent (only calls not already answered count)."""

    rater: str
    model: str
    records: int
    unique: int
    already_rated: int
    cached_calls: int
    calls: int
    prompt_tokens: int  # estimated: ~4 characters a token
    completion_tokens_max: int  # calls x max_tokens
    completion_tokens_expected: int | None  # from this model's earlier answers, when there are some
    price_known: bool
    cost_usd_max: float
    cost_usd_expected: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        lines = [
            f"dry run: {self.rater}",
            (
                f"  records: {self.records} ({self.unique} unique); already rated: {self.already_rated}; "
                f"answered in the call log: {self.cached_calls}"
            ),
            f"  calls to make: {self.calls}",
            f"  prompt tokens ≈ {self.prompt_tokens}; completion tokens ≤ {self.completion_tokens_max}"
            + (
                f" (≈ {self.completion_tokens_expected} from earlier answers)"
                if self.completion_tokens_expected is not None
                else ""
            ),
        ]
        if not self.price_known:
            lines.append(
                f"  cost: unknown, no price for '{self.model}' in llm.prices (counted as paid: a lead launches it; "
                "a lead can list the model's price, [0, 0] for a free local model)"
            )
        else:
            expected = f"≈ ${self.cost_usd_expected:.4f} expected, " if self.cost_usd_expected is not None else ""
            lines.append(f"  cost: {expected}≤ ${self.cost_usd_max:.4f} at most")
        lines.append("nothing was sent")
        return lines


def load_input(request: RateRequest, settings: Settings, store: Store) -> Loaded:
    if request.dataset:
        info = store.datasets.get(request.dataset)
        return Loaded(store.datasets.records(info.id), [], info.id)
    path = Path(request.input or "")
    result = read_file(
        path,
        fmt=request.input_format,
        mapping=parse_mapping(request.mapping),
        max_field_chars=settings.validation.max_field_chars,
        source=path.name,
        keep_duplicates=True,
    )
    if not result.records:
        raise RateError(f"{path}: no readable records ({result.summary()}); run `validate` to see why")
    return Loaded(result.records, result.rejections, duplicates=result.duplicates)


def llm_options(request: RateRequest, settings: Settings) -> LLMOptions:
    try:
        return LLMOptions.from_config(
            settings.llm,
            model=request.model,
            base_url=request.base_url,
            dimension=request.dimension,
            concurrency=request.concurrency,
        )
    except ValueError as err:
        raise RateError(str(err)) from err


def launch_rule(request: RateRequest, settings: Settings) -> LaunchRule:
    """Which permission launching ``request`` needs (see the module docstring)."""
    if request.rater == "iqs":
        return LaunchRule("run_job", "launch rating jobs", False)
    options = llm_options(request, settings)
    reasons = []
    if price_per_million(options.model, options.prices) is None:
        reasons.append(f"'{options.model}' has no price in llm.prices, so its cost is unknown")
    elif options.paid:
        reasons.append(f"'{options.model}' costs money")
    if normal_url(options.base_url) != normal_url(settings.llm.base_url):
        reasons.append(f"{options.base_url} is not the configured endpoint")
    if reasons:
        return LaunchRule("run_paid_job", "launch a paid rating job", True, tuple(reasons))
    return LaunchRule("run_job", "launch rating jobs", False)


def authorize(request: RateRequest, settings: Settings, person: Person | None) -> LaunchRule:
    """Raise :class:`curation.studio_auth.Forbidden` unless ``person`` may launch ``request``."""
    rule = launch_rule(request, settings)
    require(person, rule.action, rule.doing)
    return rule


def start_rating(store: Store, settings: Settings, request: RateRequest, person: Person | None) -> int:
    """Launch a background ``rate`` job as ``person``; a paid one carries ``"paid": true`` (a lead resumes it)."""
    from curation import jobs

    rule = authorize(request, settings, person)
    assert person is not None
    params = {**request.as_params(), **({"paid": True} if rule.paid else {})}
    dataset_id = jobs.dataset_id_named(store, request.dataset)
    return jobs.start(store, settings, "rate", params, title=request.title(), by=person, dataset_id=dataset_id)


def make_rater(
    request: RateRequest, settings: Settings, store: Store, job_id: int | None = None, log: LogFn | None = None
) -> Rater:
    if request.rater == "iqs":
        from curation.raters.iqs_rater import IQSRater

        return IQSRater.load(settings.iqs)
    # The key is read here, in the process that calls, and never stored, logged or put in job parameters;
    # the client sends it only to an endpoint on llm.key_base_urls.
    api_key = secret(settings.llm.api_key_name)
    return LLMRater(llm_options(request, settings), store, api_key=api_key, job_id=job_id, log=log)


def unique_records(records: Sequence[Record]) -> list[Record]:
    """One record per content id: the same text twice is rated (and paid for) once."""
    first: dict[str, Record] = {}
    for record in records:
        first.setdefault(record.id, record)
    return list(first.values())


def rate(
    request: RateRequest,
    settings: Settings,
    store: Store,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    job_id: int | None = None,
    rater: Rater | None = None,
) -> RateSummary:
    """Rate what ``request`` names, store every rating as it completes, write ``request.out`` if given."""
    started = time.monotonic()
    log = log or (lambda message, level="info": None)
    loaded = load_input(request, settings, store)
    rater = rater or make_rater(request, settings, store, job_id, log)
    unique = unique_records(loaded.records)
    done_ids = store.ratings.rated_ids(rater.name, rater.version, [r.id for r in unique])
    todo = [record for record in unique if record.id not in done_ids]
    log(
        f"{rater.name} ({rater.version}): {len(unique)} unique records, {len(done_ids)} already rated, {len(todo)} to rate",
        "info",
    )
    if progress is not None:
        progress(len(done_ids), len(unique), f"rated {len(done_ids)}/{len(unique)}")
    _rate_and_store(rater, todo, store, job_id, len(done_ids), len(unique), progress)
    stored = stored_ratings(store, rater.name, rater.version, [r.id for r in unique])
    missing = [r.id for r in unique if r.id not in stored]
    if missing:
        raise RuntimeError(f"{len(missing)} ratings were not stored (first: {missing[0]}); run again to finish them")
    if request.out:
        write_output(loaded.records, stored, rater, _flags(loaded.records, settings), Path(request.out), loaded.duplicates)
    summary = _summary(rater, loaded, unique, done_ids, todo, stored, request.out, time.monotonic() - started)
    for line in summary.lines():
        log(line, "info")
    return summary


def _rate_and_store(
    rater: Rater,
    todo: list[Record],
    store: Store,
    job_id: int | None,
    offset: int,
    total: int,
    progress: ProgressFn | None,
) -> None:
    if not todo:
        return
    writer: BatchWriter[RatingResult] = BatchWriter(
        lambda results: store.ratings.save(
            [r.to_row(rater.name, rater.version, rater.dimension, job_id) for r in results]
        ),
        "rating-store",
    )

    def stored_as_they_come(results: Sequence[RatingResult]) -> None:
        for result in results:
            writer.put(result)

    def overall(done: int, _total: int, _message: str = "") -> None:
        if progress is not None:
            progress(offset + done, total, f"rated {offset + done}/{total}")

    try:
        rater.rate(todo, progress=overall, on_results=stored_as_they_come)
    finally:
        writer.close()


def stored_ratings(store: Store, rater: str, version: str, record_ids: Sequence[str]) -> dict[str, RatingResult]:
    return {
        record_id: RatingResult(record_id, row.status, row.score, row.score_0_5, row.explanation, row.raw)
        for record_id, row in store.ratings.stored(rater, version, record_ids).items()
    }


def _flags(records: Sequence[Record], settings: Settings) -> list[list[dict[str, str]]]:
    """The cheap text rules only: embedding rules would load a model the rating itself does not need."""
    from curation.flags import flag_records

    hits = flag_records(records, settings.flags)
    return [[{"name": hit.name, "reason": hit.reason} for hit in found] for found in hits]


def write_output(
    records: Sequence[Record],
    stored: dict[str, RatingResult],
    rater: Rater,
    flags: list[list[dict[str, str]]],
    out: Path,
    duplicates: dict[int, str] | None = None,
) -> None:
    """All input fields plus the rating, one row per input row in input order; replaced atomically."""
    duplicates = duplicates or {}
    extra = []
    for index, (record, record_flags) in enumerate(zip(records, flags)):
        result = stored[record.id]
        extra.append(
            {
                "score": result.score,
                "score_0_5": result.score_0_5,
                "rater": rater.name,
                "rater_version": rater.version,
                "status": result.status,
                "flags": record_flags,
                "explanation": result.explanation,
                # The unparsed answer or the error, for a person to read; ok answers are score + explanation.
                "raw": None if result.status == "ok" else result.raw,
                "duplicate_of": duplicates.get(index),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    write_records(records, partial, OUTPUT_FORMATS[out.suffix.lower()], extra)
    os.replace(partial, out)


def _summary(
    rater: Rater,
    loaded: Loaded,
    unique: list[Record],
    done_ids: set[str],
    todo: list[Record],
    stored: dict[str, RatingResult],
    out: str | None,
    seconds: float,
) -> RateSummary:
    statuses = [stored[r.id].status for r in unique]
    summary = RateSummary(
        rater=rater.name,
        rater_version=rater.version,
        records=len(loaded.records),
        unique=len(unique),
        already_rated=len(done_ids),
        rated_now=len(todo),
        ok=statuses.count("ok"),
        unparsed=statuses.count("unparsed"),
        error=statuses.count("error"),
        rejected_rows=len(loaded.rejections),
        rejections=[f"{r.location}: {r.reason}" for r in loaded.rejections[:SHOWN_REJECTIONS]],
        seconds=seconds,
        out=out,
        duplicates=len(loaded.duplicates),
    )
    stats = getattr(rater, "stats", None)
    if stats is not None:
        summary.calls, summary.cached_calls, summary.retries = stats.calls, stats.cached, stats.retries
        summary.failed_calls = stats.failed
        summary.prompt_tokens, summary.completion_tokens = stats.prompt_tokens, stats.completion_tokens
        summary.cost_usd = stats.cost_usd
    options = getattr(rater, "options", None)
    if isinstance(options, LLMOptions):
        summary.price_known = price_per_million(options.model, options.prices) is not None
    return summary


def estimate_cost(
    settings: Settings,
    store: Store,
    records: Sequence[Record],
    model: str | None = None,
    dimension: str | None = None,
    base_url: str | None = None,
) -> CostEstimate:
    """Tokens and cost of rating ``records`` with the LLM rater; already rated or answered calls are free."""
    options = LLMOptions.from_config(settings.llm, model=model, dimension=dimension, base_url=base_url)
    rater = LLMRater(options, store)
    unique = unique_records(records)
    done_ids = store.ratings.rated_ids(rater.name, rater.version, [r.id for r in unique])
    requests = [rater.request_for(r) for r in unique if r.id not in done_ids]
    answered = rater.calls.answered(rater.key_for(q) for q in requests)
    to_call = [q for q in requests if rater.key_for(q) not in answered]
    prompt_tokens = sum(estimate_prompt_tokens(q["messages"]) for q in to_call)
    completion_max = len(to_call) * options.max_tokens
    mean, earlier = rater.calls.completion_tokens_mean(options.model)
    completion_expected = round(mean * len(to_call)) if earlier >= 5 else None
    price = price_per_million(options.model, options.prices) or (0.0, 0.0)

    def cost(completion: int) -> float:
        return (prompt_tokens * price[0] + completion * price[1]) / 1e6

    return CostEstimate(
        rater=f"{rater.name} at {options.base_url}",
        model=options.model,
        records=len(records),
        unique=len(unique),
        already_rated=len(done_ids),
        cached_calls=len(requests) - len(to_call),
        calls=len(to_call),
        prompt_tokens=prompt_tokens,
        completion_tokens_max=completion_max,
        completion_tokens_expected=completion_expected,
        price_known=price_per_million(options.model, options.prices) is not None,
        cost_usd_max=cost(completion_max),
        cost_usd_expected=None if completion_expected is None else cost(completion_expected),
    )


def estimate_request(request: RateRequest, settings: Settings, store: Store) -> CostEstimate:
    if request.rater != "llm":
        raise RateError("--dry-run estimates API cost; the IQS rater runs locally and costs nothing")
    loaded = load_input(request, settings, store)
    return estimate_cost(settings, store, loaded.records, request.model, request.dimension, request.base_url)


def rate_job(context: Any) -> dict[str, Any]:
    """The ``rate`` job: re-runnable, so a resumed job only rates (and pays for) what is missing."""
    request = RateRequest.from_params(context.params)
    summary = rate(
        request,
        context.settings,
        context.store,
        progress=context.progress,
        log=lambda message, level="info": context.log(message, level),
        job_id=context.job_id,
    )
    return summary.as_dict()
