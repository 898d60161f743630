"""rate: score every record of a file or a workspace dataset with the IQS scorer or an LLM rater."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import (
    add_background_arguments,
    add_input_arguments,
    open_store,
    progress_bar,
    start_background_job,
)
from curation.config import Settings
from curation.raters.llm import EndpointRefused
from curation.raters.run import RateError, RateRequest, RateSummary, estimate_request, rate
from curation.store import Store


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "rate",
        help="rate records (IQS scorer or an LLM over any OpenAI-compatible endpoint); ratings are kept in the store",
        description="Every rating is stored as it completes, so a re-run skips finished work and a killed run "
        "resumes. The LLM rater keeps every call in the store: an identical request is never paid twice.",
    )
    add_input_arguments(parser)
    parser.add_argument("--dataset", help="rate a workspace dataset instead of a file")
    parser.add_argument("--rater", choices=("llm", "iqs"), default="llm")
    parser.add_argument("--out", type=Path, help="results file (.jsonl or .json); one row per input record, in order")
    llm = parser.add_argument_group("LLM rater (defaults: the [llm] settings)")
    llm.add_argument("--model", help="model name as the endpoint knows it")
    llm.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--dimension", help="what the score measures: accuracy (default), helpfulness, any word")
    llm.add_argument("--concurrency", type=int, help="calls in flight at once (default 16)")
    llm.add_argument(
        "--dry-run", action="store_true", help="print the calls, tokens and cost it would take; call nothing"
    )
    add_background_arguments(parser, "its summary")
    parser.set_defaults(run=run_rate)


def run_rate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        request = RateRequest(
            rater=args.rater,
            # Absolute paths: a background worker runs in another directory.
            input=str(args.input.resolve()) if args.input else None,
            dataset=args.dataset,
            out=str(args.out.resolve()) if args.out else None,
            input_format=args.input_format,
            mapping=args.mapping,
            model=args.model,
            base_url=args.base_url,
            dimension=args.dimension,
            concurrency=args.concurrency,
        )
        store = open_store(settings)
        if args.dry_run:
            for line in estimate_request(request, settings, store).lines():
                print(line)
            return 0
        if args.background:
            return _start_job(request, settings, store, args)
        progress, close = progress_bar("rating")
        try:
            summary = rate(request, settings, store, progress=progress, log=_print_warnings)
        finally:
            close()
    except (RateError, EndpointRefused) as err:
        raise CommandError(str(err)) from err
    for line in summary.lines():
        print(line)
    return 0


def _print_warnings(message: str, level: str = "info") -> None:
    # The summary is printed at the end; during the run only what needs attention goes to stderr.
    if level in ("warning", "error"):
        print(f"{level}: {message}", file=sys.stderr)


def _start_job(request: RateRequest, settings: Settings, store: Store, args: argparse.Namespace) -> int:
    info = start_background_job(store, settings, "rate", request.as_params(), request.title(), args)
    if info is None:
        return 0
    if info.status != "done":
        return 1
    for line in RateSummary(**info.result).lines():
        print(line)
    return 0
