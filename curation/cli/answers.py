"""generate: answer test sets with a model or an endpoint; answers import|list: published answers, what is stored."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.answers import GenerateError, GenerateRequest, GenerateSummary, generate, import_answers
from curation.answers.run import export_answers, file_safe
from curation.cli import CommandError
from curation.cli.common import add_background_arguments, open_store, print_table, progress_bar, start_background_job
from curation.config import Settings
from curation.studio_auth import cli_person


def register(commands: argparse._SubParsersAction) -> None:
    _register_generate(commands)
    parser = commands.add_parser("answers", help="import published answers to a test set; list stored answers")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="store a file's answers (FastChat JSONL, AlpaGasus/Cherry JSON, AlpacaEval, Self-Instruct) as a model's",
        description="Answers are matched to the test set's items by question text, then by id; a row that "
        "matches no item stops the import (named with its position) unless --allow-unmatched.",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--testset", required=True, help="the test set the file answers (e.g. vicuna80)")
    imp.add_argument("--model", help="the name to store the answers under (default: the model the file names)")
    imp.add_argument("--column", help="files with several models' answers: which one (e.g. Answer1, alpagasus2)")
    imp.add_argument("--allow-unmatched", action="store_true", help="store the rows that match, report the rest")
    imp.add_argument("--user", default="cli", help="who imports (kept with the answers)")
    imp.set_defaults(run=run_import)
    export = actions.add_parser(
        "export", help="write a stored answer set as JSONL (default: <workspace>/answers/<model>/<testset>.jsonl, "
        "the answer files the judges and human studies read)")
    export.add_argument("model", help="the model id as `answers list` shows it")
    export.add_argument("--testset", required=True)
    export.add_argument("--decoding", help="the decoding hash, when the model answered under several")
    export.add_argument("--out", type=Path, help="the JSONL file to write instead")
    export.set_defaults(run=run_export)
    listing = actions.add_parser("list", help="stored answer sets: model, test set, decoding, count, truncated")
    listing.add_argument("--testset", help="only this test set")
    listing.set_defaults(run=run_list)


def _register_generate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate",
        help="answer test sets with a model (local, adapter folder, HF name) or an OpenAI-compatible endpoint",
        description="Every answer is stored as its batch completes, under (model, test set, item, decoding), "
        "so a re-run or a resumed job generates only the missing ones. The prompt is the Alpaca template the "
        "model was trained with; its sha256 is kept with each answer.",
    )
    parser.add_argument("--model", help="smollm2-135m (bundled), an adapter or model folder, an HF name, or the "
                        "name an endpoint serves (default: generate.model)")
    parser.add_argument("--testset", required=True, help="test set names, comma-separated (e.g. vicuna80,koala180)")
    parser.add_argument("--limit", type=int, help="only the first N items of each test set")
    parser.add_argument("--out", type=Path, help="JSONL: one answer per line (id, testset, instruction, input, "
                        "output, category, finish_reason, prompt_sha256)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM)")
    decoding = parser.add_argument_group("decoding (defaults: the [generate] settings)")
    decoding.add_argument("--max-new-tokens", type=int)
    decoding.add_argument("--temperature", type=float, help="0 is greedy (default)")
    decoding.add_argument("--top-p", type=float)
    decoding.add_argument("--per-category-temperature", action="store_true", default=None,
                          help="MT-Bench's temperatures: writing/roleplay 0.7, STEM/humanities 0.1, others 0")
    decoding.add_argument("--prompt-format", choices=("alpaca", "chat"),
                          help="alpaca (the training template, default) or the model's chat template")
    decoding.add_argument("--api", choices=("chat", "completions"), help="with --base-url: which endpoint")
    add_background_arguments(parser, "its summary")
    parser.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        request = GenerateRequest(
            model=args.model or settings.generate.model,
            testsets=args.testset,
            limit=args.limit,
            out=str(args.out.resolve()) if args.out else None,  # a background worker runs elsewhere
            base_url=args.base_url,
            prompt_format=args.prompt_format,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            per_category_temperature=args.per_category_temperature,
            api=args.api,
        )
        if Path(request.model).expanduser().is_dir():
            request.model = str(Path(request.model).expanduser().resolve())
        store = open_store(settings)
        if args.background:
            info = start_background_job(store, settings, "generate", request.as_params(), request.title(), args)
            if info is not None and info.status == "done":
                _print(GenerateSummary(**info.result))
            return 0 if info is None or info.status == "done" else 1
        progress, close = progress_bar("answering")
        try:
            summary = generate(request, settings, store, cli_person(args.user), progress=progress, log=_warnings)
        finally:
            close()
    except GenerateError as err:
        raise CommandError(str(err)) from err
    _print(summary)
    return 0


def _print(summary: GenerateSummary) -> None:
    for line in summary.lines():
        print(line)


def _warnings(message: str, level: str = "info") -> None:
    if level in ("warning", "error"):
        print(f"{level}: {message}", file=sys.stderr)



def run_import(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    summary = import_answers(args.file, store, cli_person(args.user), args.testset, model=args.model,
                             column=args.column, allow_unmatched=args.allow_unmatched)
    for line in summary.lines():
        print(line)
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    sets = open_store(settings).answers.sets(args.testset)
    if not sets:
        print("no answers stored yet: `python -m curation generate` or `python -m curation answers import`")
        return 0
    print_table([(s.testset, s.model_id, s.decoding_hash, s.source, s.n, s.n_truncated) for s in sets],
                ["testset", "model", "decoding", "source", "answers", "truncated"])
    return 0


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    out = args.out or settings.workspace / "answers" / file_safe(args.model) / f"{args.testset}.jsonl"
    try:
        n = export_answers(open_store(settings), args.model, args.testset, out, args.decoding)
    except GenerateError as err:
        raise CommandError(str(err)) from err
    print(f"wrote {n} answers of '{args.model}' on {args.testset} to {out}")
    return 0
