"""study create|list|export|results: the human study, headless (the CLI acts as a local lead)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from curation import studies
from curation.cli import CommandError
from curation.cli.common import open_store, print_table
from curation.config import Settings
from curation.studies.export import FORMATS
from curation.studies.inputs import answers_in_store, answers_in_workspace, store_models
from curation.studio_auth import Person


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("study", help="human study: blind A/B votes on two models' answers")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="a study from two models' answers: JSONL files (id, instruction, input, "
                                "output, category) or models with answer files in the workspace (answers/<model>/)")
    create.add_argument("name")
    create.add_argument("--model", required=True, help="answers of the model under study (W/T/L are its): a file, a "
                        "model in the Answers store, or a model with answer files in the workspace")
    create.add_argument("--model-name", help="its name (default: the file name)")
    create.add_argument("--baseline", required=True, help="answers of the model it is compared with: a file or a model")
    # --testset chooses the test sets of store or workspace models, and filters a file's `testset` field
    create.add_argument("--baseline-name", help="its name (default: the file name)")
    create.add_argument("--testset", action="append", default=[], help="only items of this test set (repeatable)")
    create.add_argument("--sample", type=int, help="a seeded sample of this many items")
    create.add_argument("--seed", type=int, default=0)
    create.add_argument("--votes-per-item", type=int, default=3)
    create.add_argument("--voter", action="append", default=[], help="only these accounts vote (repeatable; default all)")
    create.add_argument("--repeat-share", type=float, default=0.1, help="share of hidden repeats (self-consistency)")
    create.add_argument("--lease-s", type=float, default=600.0, help="seconds a voter holds an item before it returns")
    create.add_argument("--user", default="cli", help="who creates it (kept with the study)")
    create.set_defaults(run=run_create)

    listing = actions.add_parser("list", help="the studies and their progress")
    listing.set_defaults(run=run_list)

    export = actions.add_parser("export", help="every vote with voter, shown order and times")
    export.add_argument("name")
    export.add_argument("--format", dest="fmt", choices=FORMATS, default="csv")
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(run=run_export)

    report = actions.add_parser("results", help="majorities, W/T/L, WS/WR/QS, agreement; beside LLM judges")
    report.add_argument("name")
    report.add_argument("--judgments", type=Path, action="append", default=[],
                        help="JSONL of judge verdicts: id, verdict (win/tie/lose from the study model's side), judge")
    report.add_argument("--json", dest="json_out", type=Path, help="also write every table as JSON here")
    report.set_defaults(run=run_results)


def _lead(name: str = "cli") -> Person:
    return Person(name, "lead", via="cli")


def run_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        model = _answers(args.model, args.model_name, args.testset, settings)
        baseline = _answers(args.baseline, args.baseline_name, args.testset, settings)
        info, pairing = studies.create_study(
            open_store(settings), _lead(args.user), args.name, model, baseline, testsets=args.testset or None,
            sample=args.sample, seed=args.seed, votes_per_item=args.votes_per_item, voters=args.voter or None,
            repeat_share=args.repeat_share, lease_s=args.lease_s)
    except studies.StudyError as err:
        raise CommandError(str(err)) from None
    print(f"created study '{info.name}': {info.n_items} items × {info.votes_per_item} votes, "
          f"{info.model} (studied) vs {info.baseline}")
    if pairing.only_model or pairing.only_baseline:
        print(f"  left out: {len(pairing.only_model)} ids only in {info.model}, "
              f"{len(pairing.only_baseline)} only in {info.baseline}")
    if pairing.filtered_out:
        print(f"  left out by --testset/--sample: {pairing.filtered_out}")
    return 0


def _answers(source: str, name: str | None, testsets: list[str], settings: Settings) -> studies.Answers:
    """A file if there is one at ``source``, else the model of that name in the Answers store, else the
    workspace's answer files of that model."""
    if Path(source).is_file():
        return studies.read_answers(Path(source), name)
    store = open_store(settings)
    if source in store_models(store):
        answers = answers_in_store(store, source, testsets or None)
    else:
        answers = answers_in_workspace(settings.workspace, source, testsets or None)
    return studies.Answers(name or answers.model, answers.by_id)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = [(s.name, s.model, s.baseline, s.n_items, f"{s.n_votes}/{s.target_votes}", ", ".join(s.voters) or "all")
            for s in open_store(settings).studies.all()]
    print_table(rows, ["study", "model", "baseline", "items", "votes", "voters"])
    return 0


def _study(settings: Settings, name: str) -> studies.StudyInfo:
    try:
        return open_store(settings).studies.get(name)
    except studies.StudyError as err:
        raise CommandError(str(err)) from None


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    study = _study(settings, args.name)
    args.out.write_text(studies.export_votes(open_store(settings), _lead(), study, args.fmt), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def run_results(args: argparse.Namespace, settings: Settings) -> int:
    study = _study(settings, args.name)
    judges: dict[str, dict[str, str]] = {}
    try:
        for path in args.judgments:
            judges.update(studies.read_judgments(path))
    except studies.StudyError as err:
        raise CommandError(str(err)) from None
    found = studies.results(open_store(settings), study, judges)
    w = found.wtl
    print(f"study '{study.name}': {study.model} vs {study.baseline}; {found.counted_votes}/{study.target_votes} votes, "
          f"{found.complete_items}/{study.n_items} items complete")
    print(f"W/T/L from {study.model}'s side: {w.win}/{w.tie}/{w.lose} (N = {w.n})")
    print_table([(r.score, f"{r.value:.3f}", f"[{r.low:.3f}, {r.high:.3f}]") for r in found.overall.itertuples()],
                ["score", "value", "95% interval"])
    print(f"Fleiss' kappa: {found.kappa:.3f} over {found.kappa_items} complete items")
    for title, table in (("per category", found.per_category), ("voters", found.voters), ("judges", found.judges)):
        if len(table):
            print(f"\n{title}:")
            print_table(table.round(3).itertuples(index=False), list(table.columns))
    if args.json_out:
        tables = {"items": found.items, "overall": found.overall, "per_category": found.per_category,
                  "voters": found.voters, "position": found.position, "judges": found.judges}
        payload = {"study": study.name, "model": study.model, "baseline": study.baseline,
                   "wtl": {"W": w.win, "T": w.tie, "L": w.lose, "N": w.n}, "kappa": found.kappa,
                   **{k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}}
        args.json_out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0
