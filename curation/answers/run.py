"""Answering test sets: which items are still missing, generating them, storing each batch, the JSONL out.

Entry points: :func:`generate` (the CLI, as a person), :func:`start_generation` (a background job, as a
person) and :func:`generate_job` (the job's handler). A run is re-runnable: answers are stored under
(model, test set, item, decoding hash), and a re-run or resumed job only generates what is missing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation import jobs
from curation.answers.decoding import Decoding
from curation.answers.generators import EndpointGenerator, Generated, LocalGenerator
from curation.answers.items import AnswerItem, answer_items
from curation.answers.models import ModelSpec, resolve_model
from curation.config import Settings
from curation.params import JobParams
from curation.progress import ProgressFn
from curation.store import AnswerRow, Store
from curation.studio_auth import Person, require

LogFn = Callable[[str, str], None]


class GenerateError(ValueError):
    """A request that cannot run as given; the message says what to change."""


@dataclass
class GenerateRequest(JobParams):
    """What to answer and how; decoding fields left None take the ``[generate]`` settings."""

    model: str
    testsets: list[str]
    limit: int | None = None
    out: str | None = None
    base_url: str | None = None
    prompt_format: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    per_category_temperature: bool | None = None
    api: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.testsets, str):
            self.testsets = [name.strip() for name in self.testsets.split(",") if name.strip()]
        if not self.testsets:
            raise GenerateError("name at least one test set (e.g. vicuna80)")
        if self.limit is not None and self.limit < 1:
            raise GenerateError(f"limit must be at least 1, got {self.limit}")

    def as_params(self) -> dict[str, Any]:
        params = super().as_params()
        if self.base_url:
            params["paid"] = True  # an endpoint may charge per call: only a lead launches or resumes it
        return params

    def title(self) -> str:
        limit = f" (first {self.limit})" if self.limit else ""
        return f"generate {', '.join(self.testsets)}{limit} with {self.model}"

    def decoding(self, settings: Settings, local: bool) -> Decoding:
        try:
            return Decoding.from_config(
                settings.generate, local, prompt_format=self.prompt_format, max_new_tokens=self.max_new_tokens,
                temperature=self.temperature, top_p=self.top_p, per_category_temperature=self.per_category_temperature,
                api=None if local else self.api,
            )
        except ValueError as err:
            raise GenerateError(str(err)) from err


@dataclass
class GenerateSummary:
    model_id: str
    decoding_hash: str
    decoding: dict[str, Any]
    items: int
    already_answered: int
    generated_now: int
    truncated: int  # among every answer of the run's items, old and new
    failed: int  # endpoint calls that failed after their retries: run again to retry them
    completion_tokens: int  # generated now
    seconds: float  # the whole run, model loading included
    generation_seconds: float = 0.0  # generating only: what tokens/s is measured on
    per_testset: dict[str, int] = field(default_factory=dict)
    out: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0

    def lines(self) -> list[str]:
        sets = ", ".join(f"{name} {n}" for name, n in self.per_testset.items())
        lines = [
            (f"answered {self.items} items ({sets}) with {self.model_id}, decoding {self.decoding_hash}: "
            f"{self.already_answered} were already answered, {self.generated_now} generated now "
            f"({self.completion_tokens} tokens, {self.tokens_per_s:.1f} tokens/s; {self.seconds:.1f} s in all)"),
        ]
        if self.truncated:
            lines.append(f"{self.truncated} answers were cut at max new tokens ({self.decoding['max_new_tokens']}) "
                         "and are marked truncated")
        if self.failed:
            lines.append(f"{self.failed} items have no answer (the endpoint failed); run the same command again")
        if self.out:
            lines.append(f"wrote {self.out}")
        return lines


def generate(request: GenerateRequest, settings: Settings, store: Store, person: Person | None,
             progress: ProgressFn | None = None, log: LogFn | None = None) -> GenerateSummary:
    """Answer the request's test sets in this process, as ``person`` (who must be allowed to generate)."""
    require(person, "generate", "generate answers")
    return run_generation(request, settings, store, progress, log, created_by=person.name if person else "")


def start_generation(request: GenerateRequest, settings: Settings, store: Store, person: Person | None) -> int:
    """Launch the ``generate`` job as ``person``; returns its id."""
    require(person, "generate", "generate answers")
    if request.base_url:
        require(person, "run_paid_job", "generate answers through an endpoint that may charge")
    assert person is not None
    return jobs.start(store, settings, "generate", request.as_params(), request.title(), by=person)


def generate_job(context: Any) -> dict[str, Any]:
    """The ``generate`` job: re-runnable, so a resumed job only generates the missing answers."""
    request = GenerateRequest.from_params(context.params)
    summary = run_generation(
        request, context.settings, context.store,
        progress=context.progress, log=lambda message, level="info": context.log(message, level),
        job_id=context.job_id, created_by=jobs.get(context.store, context.settings, context.job_id).created_by,
    )
    return summary.as_dict()


def run_generation(request: GenerateRequest, settings: Settings, store: Store, progress: ProgressFn | None = None,
                   log: LogFn | None = None, job_id: int | None = None, created_by: str = "",
                   generator: Any = None) -> GenerateSummary:
    """The work itself (the permission was checked by whoever started it)."""
    started = time.monotonic()
    log = log or (lambda message, level="info": None)
    spec = _resolve(request, settings, store)
    decoding = request.decoding(settings, spec.local)
    items = answer_items(store, request.testsets, request.limit)
    done = _answered(store, spec, decoding, items)
    todo = [item for item in items if (item.testset, item.item_id) not in done]
    log(f"{spec.model_id}: {len(items)} items, {len(done)} already answered, {len(todo)} to generate", "info")
    counter = _Counter(len(items), len(done), progress)
    counter.report()
    failed, generation_seconds = 0, 0.0
    if todo:
        generator = generator or _generator(spec, settings, store, job_id, log)

        def store_batch(batch: list[Generated]) -> None:
            rows = [_answer_row(spec, decoding, g, job_id, created_by) for g in batch]
            store.answers.save(rows)
            counter.add(batch)

        generation_started = time.monotonic()
        generator.run(todo, decoding, store_batch)
        generation_seconds = time.monotonic() - generation_started
        failed = len(getattr(generator, "failed", []))
    stored = _stored(store, spec, decoding, request.testsets)
    summary = GenerateSummary(
        model_id=spec.model_id, decoding_hash=decoding.hash, decoding=decoding.as_dict(), items=len(items),
        already_answered=len(done), generated_now=counter.generated, failed=failed,
        truncated=sum(1 for item in items if (a := stored.get((item.testset, item.item_id))) and a.finish_reason == "truncated"),
        completion_tokens=counter.tokens, seconds=time.monotonic() - started, generation_seconds=generation_seconds,
        per_testset={name: sum(1 for i in items if i.testset == name) for name in request.testsets},
        out=request.out,
    )
    if request.out:
        write_answers(items, stored, Path(request.out))
    for line in summary.lines():
        log(line, "info")
    return summary


class _Counter:
    def __init__(self, total: int, done: int, progress: ProgressFn | None) -> None:
        self.total, self.done, self.progress = total, done, progress
        self.generated = self.tokens = 0

    def add(self, batch: list[Generated]) -> None:
        self.done += len(batch)
        self.generated += len(batch)
        self.tokens += sum(g.completion_tokens for g in batch)
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, f"answered {self.done}/{self.total}")


def _resolve(request: GenerateRequest, settings: Settings, store: Store) -> ModelSpec:
    from curation.answers.models import ModelError

    try:
        return resolve_model(request.model, settings, request.base_url, store)
    except ModelError as err:
        raise GenerateError(str(err)) from err


def _generator(spec: ModelSpec, settings: Settings, store: Store, job_id: int | None, log: LogFn) -> Any:
    if spec.local:
        from curation.answers.models import ModelError

        log(f"loading {spec.weights}" + (f" with adapter {spec.adapter}" if spec.adapter else ""), "info")
        try:
            return LocalGenerator.load(spec, settings)
        except ModelError as err:
            raise GenerateError(str(err)) from err
    return EndpointGenerator(spec, settings, store, job_id, log)


def _answered(store: Store, spec: ModelSpec, decoding: Decoding, items: list[AnswerItem]) -> set[tuple[str, str]]:
    done = set()
    for name in dict.fromkeys(item.testset for item in items):
        done |= {(name, item_id) for item_id in store.answers.answered_ids(spec.model_id, name, decoding.hash)}
    return done & {(item.testset, item.item_id) for item in items}


def _stored(store: Store, spec: ModelSpec, decoding: Decoding, testsets: list[str]) -> dict[tuple[str, str], AnswerRow]:
    return {(row.testset, row.item_id): row for name in testsets
            for row in store.answers.of(spec.model_id, name, decoding.hash)}


def _answer_row(spec: ModelSpec, decoding: Decoding, generated: Generated, job_id: int | None, created_by: str) -> AnswerRow:
    item = generated.item
    meta: dict[str, Any] = {"temperature": generated.temperature}
    if spec.adapter:
        meta["adapter"] = spec.adapter
    if spec.base_url:
        meta["base_url"] = spec.base_url
    return AnswerRow(
        model_id=spec.model_id, testset=item.testset, item_id=item.item_id, decoding_hash=decoding.hash,
        output=generated.output, finish_reason=generated.finish_reason, prompt_sha256=generated.prompt_sha256,
        decoding=decoding.as_dict(), prompt_tokens=generated.prompt_tokens,
        completion_tokens=generated.completion_tokens, seconds=generated.seconds, source="generated",
        job_id=job_id, created_by=created_by, meta=meta,
    )


def write_answers(items: list[AnswerItem], stored: dict[tuple[str, str], AnswerRow], out: Path) -> None:
    """One JSON answer per line in test-set order (FastChat's answer file, plus the fields judges need)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for item in items:
            answer = stored.get((item.testset, item.item_id))
            if answer is None:
                continue  # failed calls: the summary counts them and a re-run fills them in
            line = {
                "id": item.item_id, "testset": item.testset, "instruction": item.instruction, "input": item.input,
                "output": answer.output, "category": item.category, "finish_reason": answer.finish_reason,
                "prompt_sha256": answer.prompt_sha256, "model_id": answer.model_id,
                "decoding_hash": answer.decoding_hash,
            }
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(partial, out)


def export_answers(store: Store, model_id: str, testset: str, out: Path, decoding_hash: str | None = None) -> int:
    """A stored answer set as a JSONL answer file (the ``--out`` shape); returns how many answers it holds."""
    rows = store.answers.of(model_id, testset, decoding_hash)
    decodings = sorted({row.decoding_hash for row in rows})
    if not rows:
        raise GenerateError(f"no stored answers of '{model_id}' on {testset}; see `python -m curation answers list`")
    if len(decodings) > 1:
        raise GenerateError(f"'{model_id}' answered {testset} under {len(decodings)} decodings "
                            f"({', '.join(decodings)}); name one with --decoding")
    write_answers(answer_items(store, [testset]), {(row.testset, row.item_id): row for row in rows}, out)
    return len(rows)


def file_safe(model_id: str) -> str:
    """A model id as a folder name of ``<workspace>/answers`` (the judges' and studies' answer-file layout)."""
    import re

    return re.sub(r"[^A-Za-z0-9._+-]+", "-", model_id).strip("-.")[:100] or "model"
