"""select: keep or drop every example of a rated file or a workspace dataset, with the reason, and export.

``python -m curation select RATED --method threshold --tau 4.5 --out kept.jsonl`` (or ``car --n1 --n2``,
``random --size --seed``, ``quota --quota cat=N``); ``--all`` writes dropped rows too; ``--dataset NAME
--rater R`` reads the ratings and the human overrides from the store; ``--rebuild MANIFEST`` makes a
saved selection again and checks it is the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from curation.cli import CommandError
from curation.cli.common import add_input_arguments, open_store, print_table, read_input
from curation.config import Settings
from curation.records import Record


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "select",
        help="keep or drop every example (threshold, CaR, random, quota) with its reason; export + manifest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser, "rated", help="rated file (the output of `rate`: rows with a score)")
    parser.add_argument("--dataset", help="select a workspace dataset instead of a file")
    parser.add_argument("--rater", help="with --dataset: the rater whose scores to use (e.g. llm, iqs)")
    parser.add_argument("--rater-version", help="with --dataset: that rater's version (default: the most complete)")
    parser.add_argument("--score-field", default="score", help="score field or column to select on (default: score)")
    parser.add_argument("--method", choices=("threshold", "car", "random", "quota"))
    parser.add_argument("--tau", type=float, help="threshold: keep score ≥ τ")
    parser.add_argument("--n1", type=int, help="car: the top n1 by score")
    parser.add_argument("--n2", type=int, help="car: plus the top n2 of each cluster")
    parser.add_argument("--size", type=int, help="random: how many to draw")
    parser.add_argument("--seed", type=int, help="random/quota: seed (default 0)")
    parser.add_argument("--quota", help="quota: CATEGORY=N,… (categories not named keep all unless --default-quota)")
    parser.add_argument("--default-quota", type=int, help="quota: N for every category not named in --quota")
    parser.add_argument(
        "--quota-by", choices=("score", "random"), default="score", help="quota: keep best scores or draw"
    )
    parser.add_argument("--rebuild", type=Path, metavar="MANIFEST", help="rebuild the selection a manifest describes")
    parser.add_argument("--out", type=Path, help="output file: .jsonl, .json (Alpaca), .parquet or .csv")
    parser.add_argument(
        "--all", action="store_true", help="write every row (keep true or false), not only the kept ones"
    )
    parser.add_argument("--no-overrides", action="store_true", help="with --dataset: ignore human keep/drop decisions")
    parser.add_argument("--save", metavar="NAME", help="with --dataset: save the selection (its manifest) in the store")
    parser.add_argument("--user", default="cli", help="who is selecting (kept with a saved selection)")
    parser.set_defaults(run=run_select)


def run_select(args: argparse.Namespace, settings: Settings) -> int:
    from curation.select import SelectionError

    try:
        return _run(args, settings)
    except SelectionError as err:
        raise CommandError(str(err)) from err


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from curation.select import balance_report, export_selection, read_manifest, rebuild_from_manifest, select_records
    from curation.select.manifest import format_for

    if (args.rated is None) == (args.dataset is None):
        raise CommandError("give either a RATED file or --dataset NAME (not both)")
    if args.save and not args.dataset:
        raise CommandError("--save needs --dataset: only workspace datasets keep saved selections")
    manifest = read_manifest(args.rebuild) if args.rebuild else None
    method = manifest["method"] if manifest else args.method
    if method is None:
        raise CommandError("choose --method threshold|car|random|quota (or --rebuild MANIFEST)")
    if args.out:
        format_for(args.out)  # a wrong extension fails now, not after minutes of embedding
    source = _load(args, settings, manifest, method)
    progress, close = _stage_bar()
    try:
        if manifest:
            run = rebuild_from_manifest(manifest, source.records, settings, source.scores, progress)
        else:
            run = select_records(
                source.records,
                method,
                _params(args, method),
                settings,
                source.scores,
                source.score_source,
                source.overrides,
                source.name,
                progress,
            )
    finally:
        close()
    if source.rejected:
        print(
            f"note: {source.rejected} rows of {source.name} could not be read and are not in the selection "
            f"(run `python -m curation validate` to see them)",
            file=sys.stderr,
        )
    _print_summary(run.manifest, method)
    report = balance_report(run.selection, [r.category for r in source.records], [_prompt(r) for r in source.records])
    _print_balance(report)
    if args.out:
        exported = export_selection(source.records, run.selection, args.out, run.manifest, include_dropped=args.all)
        print(f"wrote {exported.rows} rows to {exported.path} and the manifest to {exported.manifest_path}")
    if args.save and source.dataset_id is not None:
        saved = open_store(settings).selections.save(source.dataset_id, args.save, run.manifest, created_by=args.user)
        print(f"saved selection '{saved.name}' (id {saved.id})")
    return 0


class _Source:
    def __init__(
        self,
        name: str,
        records: list[Record],
        scores: np.ndarray | None,
        score_source: Any,
        overrides: dict[str, Any],
        dataset_id: int | None,
        rejected: int,
    ) -> None:
        self.name, self.records, self.scores, self.score_source = name, records, scores, score_source
        self.overrides, self.dataset_id, self.rejected = overrides, dataset_id, rejected


def _load(args: argparse.Namespace, settings: Settings, manifest: dict[str, Any] | None, method: str) -> _Source:
    from curation.select import ScoreSource, score_source_of, scores_from_records, scores_from_store

    needs_scores = method != "random" or bool(manifest and manifest.get("scores_hash"))
    if args.dataset:
        store = open_store(settings)
        info = store.datasets.get(args.dataset)
        records = store.datasets.records(info.id)
        rater_info = (manifest or {}).get("rater", {})
        rater = args.rater or rater_info.get("rater")
        version = args.rater_version or rater_info.get("rater_version") or None
        field = rater_info.get("field") or args.score_field
        scores, source = (None, ScoreSource(field=field))
        if needs_scores or rater:
            if not rater:
                raise CommandError(f"--dataset {info.name} needs --rater NAME to read scores from the store")
            scores, source = scores_from_store(store, info.id, records, rater, version, field)
        overrides = {} if args.no_overrides or manifest else store.overrides.in_force(info.id)
        return _Source(info.name, records, scores, source, overrides, info.id, info.n_rejected)
    result = read_input(args.rated, args, settings)
    if not result.records:
        raise CommandError(f"{args.rated.name}: no loadable rows ({result.summary()})")
    field = ((manifest or {}).get("rater") or {}).get("field") or args.score_field
    scores = scores_from_records(result.records, field)
    if needs_scores and np.isnan(scores).all():
        raise CommandError(
            f"{args.rated.name}: no row has a numeric '{field}' field; rate it first (python -m curation rate) "
            "or name the score column with --score-field"
        )
    has_scores = not np.isnan(scores).all()
    return _Source(
        args.rated.name,
        result.records,
        scores if has_scores else None,
        score_source_of(result.records, field),
        {},
        None,
        len(result.rejections),
    )


def _params(args: argparse.Namespace, method: str) -> dict[str, Any]:
    if method == "threshold":
        return {"tau": args.tau}
    if method == "car":
        return {"n1": args.n1, "n2": args.n2}
    if method == "random":
        return {"size": args.size, "seed": args.seed}
    return {"quotas": _quotas(args.quota), "default": args.default_quota, "by": args.quota_by, "seed": args.seed}


def _quotas(text: str | None) -> dict[str, int]:
    quotas: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise CommandError(f"quota entry {part!r} must look like CATEGORY=N with N a whole number ≥ 0")
        quotas[name.strip()] = int(value)
    return quotas


def _prompt(record: Record) -> str:
    return f"{record.instruction}\n{record.input}" if record.input else record.instruction


def _print_summary(manifest: dict[str, Any], method: str) -> None:
    counts = manifest["counts"]
    params = ", ".join(f"{k}={v}" for k, v in manifest["params"].items() if v not in (None, {}, ""))
    share = counts["kept"] / counts["total"] if counts["total"] else 0.0
    overrides = f", {len(manifest['overrides'])} human overrides applied" if manifest.get("overrides") else ""
    print(f"{method} ({params}): kept {counts['kept']:,} of {counts['total']:,} ({share:.1%}){overrides}")


def _print_balance(report: Any) -> None:
    shown = report[report["total"] > 0]
    rows = [
        (r.kind, r.group, r.total, r.kept, f"{r.kept_ratio:.1%}", f"{r.vs_overall:.2f}", r.note)
        for r in shown.itertuples()
    ]
    print()
    print_table(rows, ["kind", "group", "total", "kept", "kept %", "vs overall", "note"])
    print()


def _stage_bar() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """A progress bar per stage (embedding, clustering …) on stderr, created only if a stage reports."""
    from curation.cli.common import progress_bar

    state: dict[str, Any] = {"stage": None, "update": None, "close": lambda: None}

    def progress(message: str, done: int, total: int) -> None:
        if message != state["stage"]:
            state["close"]()
            state["update"], state["close"] = progress_bar(total, message)
            state["stage"] = message
        state["update"](done, total)

    return progress, lambda: state["close"]()
