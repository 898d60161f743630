"""The loop in one job: a trained model and its baseline answer the chosen test sets, then a judge compares
them in both orders on each test set; the runs land on the Compare page like any other.

The baseline is the model trained with the same preset and base model on the full pool (else on the
random subset), unless one is named. The job is re-runnable: answers and reviews already stored are
skipped, so a resumed evaluation only does what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.judges.run import JudgeRequest, run_comparison
from curation.params import JobParams
from curation.store import Store
from curation.store.models import ModelInfo
from curation.studio_auth import Person, require

BASELINE_ROLES = ("full pool", "random")  # preferred in this order


class EvaluateError(ValueError):
    """An evaluation that cannot run as asked; the message says what to change."""


@dataclass
class EvaluateRequest(JobParams):
    """Also the ``evaluate`` job's parameters."""

    model: int  # registry id of the trained model
    baseline: int | None = None  # registry id; None: the same preset's full-pool (else random) model
    testsets: list[str] = field(default_factory=lambda: ["vicuna80"])
    judge: str | None = None  # None: settings.judge.judge
    judge_model: str | None = None
    judge_base_url: str | None = None
    limit: int | None = None  # items per test set, for a quick look
    answer_base_url: str | None = None  # the models are served by an endpoint instead of run here
    paid: bool = True  # the judge may charge: only a lead launches or resumes it


def find_baseline(store: Store, model: ModelInfo) -> ModelInfo | None:
    """The newest finished model with the same preset and base model trained on the full pool, else random."""
    candidates = [m for m in store.models.all()
                  if m.id != model.id and m.status == "done" and m.preset == model.preset
                  and m.base_model == model.base_model and m.role in BASELINE_ROLES]
    candidates.sort(key=lambda m: (BASELINE_ROLES.index(m.role), -m.id))
    return candidates[0] if candidates else None


def resolve(store: Store, request: EvaluateRequest) -> tuple[ModelInfo, ModelInfo]:
    try:
        model = store.models.get(request.model)
    except LookupError as err:
        raise EvaluateError(str(err)) from err
    if model.status != "done":
        raise EvaluateError(f"model #{model.id} is {model.status}; evaluate it once its training is done")
    if request.baseline is not None:
        try:
            return model, store.models.get(request.baseline)
        except LookupError as err:
            raise EvaluateError(str(err)) from err
    baseline = find_baseline(store, model)
    if baseline is None:
        raise EvaluateError(f"no finished full-pool or random model with preset '{model.preset}' to compare "
                            f"#{model.id} with; train the baselines first (Train page) or name one")
    return model, baseline


def start_evaluation(store: Store, settings: Any, request: EvaluateRequest, person: Person | None) -> int:
    """Launch the ``evaluate`` job as ``person`` (a lead: it generates, judges and may spend)."""
    from curation import jobs

    acting = require(person, "generate", "generate answers")
    require(person, "judge", "run a judge")
    require(person, "run_paid_job", "launch an evaluation whose judge may charge")
    model, baseline = resolve(store, request)
    request.baseline = baseline.id
    title = f"evaluate #{model.id} {model.name} vs #{baseline.id} {baseline.name} on {', '.join(request.testsets)}"
    # "action": resuming it needs the same rights as launching it (jobs checks run_job, this and paid).
    params = {**request.as_params(), "action": "judge"}
    return jobs.start(store, settings, "evaluate", params, title, by=acting)


def run_evaluation(request: EvaluateRequest, settings: Any, store: Store, progress: Any = None, log: Any = None,
                   job_id: int | None = None, created_by: str = "") -> dict[str, Any]:
    """Answers for both models (what is stored is skipped), then one judge run per test set."""
    from curation.answers.run import GenerateRequest, run_generation

    model, baseline = resolve(store, request)
    generated = []
    for info in (model, baseline):
        # Served by an endpoint: the served name is the model's name; run here: the registry entry (#id).
        name = info.name if request.answer_base_url else f"#{info.id}"
        answers = GenerateRequest(model=name, testsets=list(request.testsets), limit=request.limit,
                                  base_url=request.answer_base_url)
        generated.append(run_generation(answers, settings, store, progress, log, job_id, created_by))
    runs = []
    for testset in request.testsets:
        comparison = JudgeRequest(
            judge=request.judge or settings.judge.judge, source="store", a=generated[0].model_id,
            b=generated[1].model_id, decoding_a=generated[0].decoding_hash, decoding_b=generated[1].decoding_hash,
            testset=testset, model_a=model.name, model_b=f"{baseline.name} ({baseline.role})",
            model=request.judge_model, base_url=request.judge_base_url,
        )
        summary = run_comparison(comparison, settings, store, progress, log, job_id, created_by)
        runs.append({k: summary[k] for k in ("run_id", "testset", "n", "win", "tie", "lose", "ws", "wr", "qs",
                                             "unparsed", "pending")})
    return {"model": model.id, "baseline": baseline.id, "runs": runs}


def evaluate_job(context: Any) -> dict[str, Any]:
    """The ``evaluate`` job: re-runnable (stored answers and reviews are skipped)."""
    from curation import jobs

    return run_evaluation(
        EvaluateRequest.from_params(context.params), context.settings, context.store, progress=context.progress,
        log=lambda message, level="info": context.log(message, level), job_id=context.job_id,
        created_by=jobs.get(context.store, context.settings, context.job_id).created_by,
    )
