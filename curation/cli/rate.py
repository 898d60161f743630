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
from curation.progress import ProgressFn
from curation.raters.llm import EndpointRefused, EndpointUnreachable
from curation.raters.run import (
    RateError,
    RateRequest,
    RateSummary,
    authorize,
    estimate_request,
    rate,
    start_rating,
)
from curation.store import Store
from curation.studio_auth import Forbidden, Person

EXIT_CODES = """exit status:
  0  every record read has a rating (ok, or unparsed with the answer kept)
  1  the request could not run (one sentence on stderr), or some records ended in error: run the
     same command again to retry only those
  2  nothing was rated: every record ended in error, or nothing answers at the endpoint
rows rejected when reading are listed in the summary (`validate` reports them all)"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "rate",
        help="rate records (IQS scorer or an LLM over any OpenAI-compatible endpoint); ratings are kept in the store",
        description="Every rating is stored as it completes, so a re-run skips finished work and a killed run "
        "resumes. The LLM rater keeps every call in the store: an identical request is never paid twice. "
        "The API key goes only to the endpoints in llm.key_base_urls (default: llm.base_url).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)
    parser.add_argument("--dataset", help="rate a workspace dataset instead of a file")
    parser.add_argument(
        "--rater", choices=("iqs", "llm"), default="iqs", help="iqs: the local scorer, free (default); llm: AlpaGasus"
    )
    parser.add_argument("--out", type=Path, help="results file (.jsonl or .json); one row per input record, in order")
    llm = parser.add_argument_group("LLM rater (defaults: the [llm] settings)")
    llm.add_argument("--model", help="model name as the endpoint knows it")
    llm.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; the API key is sent only if it is in "
        "llm.key_base_urls (default: llm.base_url)",
    )
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
        # The command line is the machine's owner: a local lead (the check still runs, like the studio's).
        person = Person(args.user, "lead")
        if args.background:
            return _start_job(request, settings, store, args, person)
        authorize(request, settings, person)
        progress, close = progress_bar("rating")
        try:
            summary = rate(request, settings, store, progress=_after_first_record(progress), log=_print_warnings)
        finally:
            close()
    except EndpointUnreachable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RateError, EndpointRefused, Forbidden) as err:
        raise CommandError(str(err)) from err
    for line in summary.lines():
        print(line)
    return exit_code(summary)


def exit_code(summary: RateSummary) -> int:
    """0 all rated, 1 some records in error, 2 none rated (see EXIT_CODES)."""
    if summary.unique and not summary.rated:
        print(f"error: nothing was rated: all {summary.unique} records ended in error", file=sys.stderr)
        return 2
    return 1 if summary.error else 0


def _after_first_record(progress: ProgressFn) -> ProgressFn:
    """No bar before a record is rated: an endpoint where nothing listens fails with one line, no bar."""

    def report(done: int, total: int, message: str = "") -> None:
        if done:
            progress(done, total, message)

    return report


def _print_warnings(message: str, level: str = "info") -> None:
    # The summary is printed at the end; during the run only what needs attention goes to stderr.
    if level in ("warning", "error"):
        print(f"{level}: {message}", file=sys.stderr)


def _start_job(request: RateRequest, settings: Settings, store: Store, args: argparse.Namespace, person: Person) -> int:
    launch = lambda: start_rating(store, settings, request, person)
    info = start_background_job(store, settings, "rate", request.as_params(), request.title(), args, start=launch)
    if info is None:
        return 0
    if info.status != "done":
        return 1
    summary = RateSummary(**info.result)
    for line in summary.lines():
        print(line)
    return exit_code(summary)
