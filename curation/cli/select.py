"""select: keep or drop every example of a rated file or a workspace dataset, with the reason, and export.

``python -m curation select RATED --method threshold --tau 4.5 --out kept.jsonl`` (or ``car --n1 --n2``,
``random --size --seed``, ``quota --quota cat=N``); ``--all`` writes dropped rows too; ``--dataset NAME
--rater R`` reads the ratings and the human overrides from the store; ``--rebuild MANIFEST`` makes a
saved selection again and checks it is the same. Scores are on the 0–5 scale the studio shows
(``score_0_5``: IQS calibrated, the LLM's rating as is), so τ = 4.5 keeps what AlpaGasus means; ``--raw``
uses the rater's own score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.cli import CommandError
from curation.cli.common import add_input_arguments, open_store, print_table, progress_bar, read_input
from curation.config import Settings
from curation.progress import ProgressFn

if TYPE_CHECKING:
    from curation.select import DatasetSelection


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
    parser.add_argument(
        "--score-field",
        help="score field or column to select on (default: score_0_5 where the rows or the rater have it, else score)",
    )
    parser.add_argument(
        "--raw", action="store_true", help="threshold and rank on the rater's raw score instead of the 0–5 scale"
    )
    parser.add_argument("--method", choices=("threshold", "car", "random", "quota"))
    parser.add_argument("--tau", type=float, help="threshold: keep score ≥ τ, on the 0–5 scale like the studio (AlpaGasus: 4.5)")
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
    from curation.select import balance_of, export_selection, read_manifest
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
    progress, close = progress_bar("select")
    try:
        chosen = (_select_dataset if args.dataset else _select_file)(args, settings, manifest, method, progress)
    finally:
        close()
    if chosen.n_rejected:
        print(
            f"note: {chosen.n_rejected} rows of {chosen.name} could not be read and are not in the selection "
            f"(run `python -m curation validate` to see them)",
            file=sys.stderr,
        )
    _print_summary(chosen.manifest, method)
    _print_balance(balance_of(chosen.selection, chosen.records))
    if args.out:
        exported = export_selection(chosen.records, chosen.selection, args.out, chosen.manifest, include_dropped=args.all)
        print(f"wrote {exported.rows} rows to {exported.path} and the manifest to {exported.manifest_path}")
    if args.save and chosen.dataset_id is not None:
        saved = open_store(settings).selections.save(chosen.dataset_id, args.save, chosen.manifest, created_by=args.user)
        print(f"saved selection '{saved.name}' (id {saved.id})")
    return 0


def _scale(args: argparse.Namespace) -> str:
    from curation.select import DEFAULT_SCALE

    return "raw" if args.raw else DEFAULT_SCALE


def _needs_scores(method: str, manifest: dict[str, Any] | None) -> bool:
    return method != "random" or bool(manifest and manifest.get("scores_hash"))


def _select_dataset(
    args: argparse.Namespace, settings: Settings, manifest: dict[str, Any] | None, method: str, progress: ProgressFn
) -> DatasetSelection:
    from curation.select import select_dataset

    rater = args.rater or ((manifest or {}).get("rater") or {}).get("rater")
    if _needs_scores(method, manifest) and not rater:
        raise CommandError(f"--dataset {args.dataset} needs --rater NAME to read scores from the store")
    return select_dataset(
        open_store(settings), settings, args.dataset, method, _params(args, method), rater=rater,
        rater_version=args.rater_version, scale=_scale(args), field=args.score_field,
        use_overrides=not args.no_overrides, rebuild=manifest, progress=progress,
    )


def _select_file(
    args: argparse.Namespace, settings: Settings, manifest: dict[str, Any] | None, method: str, progress: ProgressFn
) -> DatasetSelection:
    from curation.select import (
        DatasetSelection,
        rebuild_from_manifest,
        record_field,
        score_source_of,
        scores_from_records,
        select_records,
    )

    result = read_input(args.rated, args, settings)
    if not result.records:
        raise CommandError(f"{args.rated.name}: no loadable rows ({result.summary()})")
    records = result.records
    recorded = ((manifest or {}).get("rater") or {}).get("field")
    field = recorded or args.score_field or record_field(records, _scale(args))
    scores = scores_from_records(records, field)
    if np.isnan(scores).all():
        if _needs_scores(method, manifest):
            raise CommandError(
                f"{args.rated.name}: no row has a numeric '{field}' field; rate it first (python -m curation rate) "
                "or name the score column with --score-field"
            )
        scores = None
    if manifest:
        run = rebuild_from_manifest(manifest, records, settings, scores, progress)
    else:
        source = score_source_of(records, field)
        run = select_records(records, method, _params(args, method), settings, scores, source, {}, args.rated.name,
                             progress)
    return DatasetSelection(args.rated.name, None, records, run, len(result.rejections))


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
