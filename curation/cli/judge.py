"""judge: compare two models' answers (or a model and a test set's references) with an LLM judge, both orders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import add_background_arguments, open_store, print_table, progress_bar
from curation.config import Settings
from curation.judges.base import JUDGE_KINDS, PANDALM_ENDPOINTS
from curation.judges.imports import ReviewImportError, import_reviews
from curation.judges.run import JudgeRequest, JudgeRunError, estimate_cost, run_comparison, start_judge_job
from curation.judges.stats import summarize
from curation.llm import EndpointRefused
from curation.studio_auth import Forbidden, cli_person


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "judge",
        help="pairwise LLM judge (vicuna, zheng, pandalm): A vs B in both orders; W/T/L, WS, WR, QS, per category",
        description="Every item is judged twice (A's answer first, then second); the AlpaGasus rule combines the "
        "two verdicts. Every review is stored as it arrives: a re-run continues the same run and an identical call "
        "is answered from the call log. Writes OUT/judgments.jsonl and OUT/summary.json.",
    )
    parser.add_argument("a", nargs="?", type=Path,
                        help="model A's answers: JSONL with id, instruction, input, output (a model id with --from-store)")
    parser.add_argument("b", nargs="?", type=Path, help="model B's answers, paired with A's by id (or a model id)")
    parser.add_argument("--from-store", action="store_true",
                        help="A and B are model ids in the Answers store (answers on --testset), not files")
    parser.add_argument("--decoding-a", help="with --from-store: which of A's decodings (default: the only one)")
    parser.add_argument("--decoding-b", help="with --from-store: which of B's decodings (default: the only one)")
    parser.add_argument("--reference", help="compare A with this test set's reference answers instead of B "
                        "(coachlm150, selfinstruct252)")
    parser.add_argument("--judge", choices=JUDGE_KINDS, help="which prompt and verdict (default: settings judge.judge)")
    parser.add_argument("--model", help="the judge model as the endpoint knows it (default: settings judge.model)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--concurrency", type=int, help="calls in flight at once (default 16)")
    parser.add_argument("--pandalm-endpoint", choices=PANDALM_ENDPOINTS, help="pandalm: completions (default) or chat")
    parser.add_argument("--model-a", help="label of model A (default: its file name)")
    parser.add_argument("--model-b", help="label of model B (default: its file name, or 'reference')")
    parser.add_argument("--testset", help="label of the items (default: the reference set or A's file name)")
    parser.add_argument("--out", type=Path, help="folder for judgments.jsonl and summary.json")
    parser.add_argument("--dry-run", action="store_true", help="print the calls, tokens and cost; call nothing")
    parser.add_argument("--import", dest="import_path", type=Path,
                        help="import published reviews instead: a Cherry_LLM *_reviews_gpt4.json file or folder, "
                        "or a FastChat review JSONL")
    parser.add_argument("--answers-a", type=Path, help="with --import of FastChat reviews: answer 1's answers JSONL")
    parser.add_argument("--answers-b", type=Path, help="with --import of FastChat reviews: answer 2's answers JSONL")
    parser.add_argument("--runs", action="store_true", help="list the judge runs in the store with their tallies")
    loop = parser.add_argument_group("evaluate a trained model against its baseline (answers, then judge)")
    loop.add_argument("--evaluate", type=int, metavar="MODEL_ID",
                      help="registry id of a trained model: it and its baseline answer --testset (comma-separated), "
                      "then the judge compares them on each")
    loop.add_argument("--baseline", type=int, metavar="MODEL_ID", help="default: same preset, full pool (else random)")
    loop.add_argument("--limit", type=int, help="with --evaluate: the first N items of each test set")
    add_background_arguments(parser, "its summary")
    parser.set_defaults(run=run_judge)


def run_judge(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        if args.runs:
            return _list_runs(store)
        if args.import_path:
            return _import(args, store)
        if args.evaluate is not None:
            return _evaluate(args, settings, store)
        request = JudgeRequest(
            judge=args.judge or settings.judge.judge,
            # Absolute paths: a background worker runs in another directory.
            a=_side(args.a, args.from_store),
            b=_side(args.b, args.from_store),
            source="store" if args.from_store else "files",
            decoding_a=args.decoding_a,
            decoding_b=args.decoding_b,
            reference=args.reference,
            model_a=args.model_a,
            model_b=args.model_b,
            testset=args.testset,
            model=args.model,
            base_url=args.base_url,
            concurrency=args.concurrency,
            pandalm_endpoint=args.pandalm_endpoint,
            out=str(args.out.resolve()) if args.out else None,
        )
        if args.dry_run:
            for line in estimate_cost(request, settings, store).lines():
                print(line)
            return 0
        if args.background:
            return _background(request, settings, store, args)
        if not args.out:
            raise CommandError("give --out DIR for judgments.jsonl and summary.json")
        progress, close = progress_bar("judging")
        try:
            summary = run_comparison(request, settings, store, progress=progress,
                                     log=_print_warnings, created_by=args.user)
        finally:
            close()
    except (JudgeRunError, EndpointRefused, ReviewImportError, Forbidden) as err:
        raise CommandError(str(err)) from err
    _print_summary(summary)
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings, store) -> int:
    from curation.answers.models import ModelError
    from curation.answers.run import GenerateError
    from curation.judges.evaluate import EvaluateError, EvaluateRequest, run_evaluation, start_evaluation

    testsets = [t.strip() for t in (args.testset or "vicuna80").split(",") if t.strip()]
    request = EvaluateRequest(model=args.evaluate, baseline=args.baseline, testsets=testsets, judge=args.judge,
                              judge_model=args.model, judge_base_url=args.base_url, limit=args.limit)
    try:
        if args.background:
            result = _evaluation_job(start_evaluation(store, settings, request, cli_person(args.user)), args, settings,
                                     store)
        else:
            result = run_evaluation(request, settings, store, log=_print_warnings, created_by=args.user)
    except (EvaluateError, GenerateError, ModelError) as err:
        raise CommandError(str(err)) from err
    for run in (result or {}).get("runs", []):
        print(f"run #{run['run_id']} on {run['testset']}:")
        _print_counts({**run, "consistency": None})
    return 0 if result is not None or not args.wait else 1


def _evaluation_job(job_id: int, args: argparse.Namespace, settings: Settings, store) -> dict | None:
    from curation import jobs

    print(f"job {job_id} started: follow it with `python -m curation jobs show {job_id}`")
    if not args.wait:
        return None
    info = jobs.wait(store, settings, job_id, timeout_s=7 * 24 * 3600)
    if info.status != "done":
        print(f"job {job_id}: {info.state}: {info.error or info.message}", file=sys.stderr)
        return None
    return info.result


def _side(value: Path | None, from_store: bool) -> str | None:
    if value is None:
        return None
    return str(value) if from_store else str(value.resolve())


def _background(request: JudgeRequest, settings: Settings, store, args: argparse.Namespace) -> int:
    from curation import jobs

    job_id = start_judge_job(store, settings, request, cli_person(args.user))
    print(f"job {job_id} started: follow it with `python -m curation jobs show {job_id}`")
    if not args.wait:
        return 0
    info = jobs.wait(store, settings, job_id, timeout_s=7 * 24 * 3600)
    print(f"job {job_id}: {info.state}")
    if info.status != "done":
        print(f"  {info.error or info.message}", file=sys.stderr)
        return 1
    _print_summary(info.result)
    return 0


def _import(args: argparse.Namespace, store) -> int:
    runs = import_reviews(store, args.import_path, cli_person(args.user), args.model_a, args.model_b,
                          answers_a=args.answers_a, answers_b=args.answers_b)
    for run in runs:
        summary = summarize(store.judgments.rows(run.id), run.params.get("orders", ["ab", "ba"]))
        print(f"imported run #{run.id}: {run.name}")
        _print_counts(summary)
    return 0


def _list_runs(store) -> int:
    from curation.judges.report import agreement_frame, load_report

    rows = []
    reports = [load_report(store, run.id, samples=0) for run in store.judgments.runs()]
    for report in reports:
        run, summary = report.run, report.summary
        rows.append([run.id, run.source, run.judge, run.judge_model, run.model_a, run.model_b, run.testset,
                     summary["n"], summary["win"], summary["tie"], summary["lose"], _f(summary["ws"]),
                     summary["unparsed"], summary["pending"]])
    if not rows:
        print("no judge runs yet")
        return 0
    print_table(rows, ["run", "source", "judge", "judge model", "A", "B", "test set", "n", "W", "T", "L", "WS",
                       "unparsed", "pending"])
    agreement = agreement_frame(reports)
    if len(agreement):
        print("\njudges on the same items (share of equal verdicts, Cohen's kappa):")
        print_table([[r["test set"], r["judge_1"], r["judge_2"], r["items"], _f(r["agreement"]), _f(r["kappa"])]
                     for r in agreement.to_dict("records")], ["test set", "judge 1", "judge 2", "items", "agree", "kappa"])
    return 0


def _print_counts(summary: dict) -> None:
    print(
        f"  n={summary['n']} W={summary['win']} T={summary['tie']} L={summary['lose']} "
        f"WS={_f(summary['ws'])} WR={_f(summary['wr'])} QS={_f(summary['qs'])} "
        f"unparsed={summary['unparsed']} pending={summary['pending']} consistency={_f(summary['consistency'])}"
    )


def _print_summary(summary: dict) -> None:
    print(f"run #{summary['run_id']}: {summary['name']}")
    _print_counts(summary)
    ci = summary.get("ci95", {}).get("ws")
    if ci:
        print(f"  WS 95% CI [{ci[0]:.3f}, {ci[1]:.3f}]; capacity {_f(summary.get('capacity'))}%")
    calls = summary.get("calls", {})
    if calls:
        print(f"  calls: {calls.get('calls', 0)} made, {calls.get('cached', 0)} from the call log, "
              f"{calls.get('retries', 0)} retries, {calls.get('failed', 0)} failed; cost ${calls.get('cost_usd', 0):.4f}")
    missing = summary.get("missing") or {}
    if missing.get("a") or missing.get("b"):
        print(f"  not judged: {missing.get('a', 0)} items lack A's answer, {missing.get('b', 0)} lack B's "
              f"(first: {', '.join(missing.get('ids', [])[:3])})")
    if summary.get("pending"):
        print(f"  {summary['pending']} items lack a review (calls failed); run the same command again to retry them")
    if summary.get("unparsed"):
        print(f"  {summary['unparsed']} items have a review the parser could not read; see judgments.jsonl")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_warnings(message: str, level: str = "info") -> None:
    if level in ("warning", "error"):
        print(f"{level}: {message}", file=sys.stderr)


