"""jobs list|show|cancel|resume|run: the background work the studio and the CLI launched."""

from __future__ import annotations

import argparse
import sys

from curation import jobs
from curation.cli.common import open_store, print_table
from curation.config import Settings
from curation.studio_auth import cli_person


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("jobs", help="list, inspect, cancel or resume background jobs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="recent jobs, newest first")
    listing.add_argument("--kind", help="only jobs of this kind")
    listing.add_argument("--limit", type=int, default=30)
    listing.set_defaults(run=run_list)
    for name, help_text, function in (
        ("show", "one job with its log", run_show),
        ("cancel", "ask a job to stop", run_cancel),
        ("resume", "re-run a failed, cancelled or stale job; finished work is skipped", run_resume),
        ("run", "run a queued job in this process (what a worker does)", run_run),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("job_id", type=int)
        if name in ("cancel", "resume"):
            action.add_argument("--user", default="cli", help="who does it (kept in the job's log)")
        if name == "resume":
            action.add_argument("--wait", action="store_true", help="wait for it to finish")
        action.set_defaults(run=function)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    rows = [
        (j.id, j.kind, _state(j), f"{j.done}/{j.total}", j.created_by, j.created_at.strftime("%Y-%m-%d %H:%M:%S"), j.title)
        for j in jobs.all_jobs(store, settings, kind=args.kind, limit=args.limit)
    ]
    print_table(rows, ["id", "kind", "state", "progress", "by", "created", "title"])
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    _print_job(jobs.get(store, settings, args.job_id))
    for _, at, level, message in jobs.events(store, args.job_id):
        print(f"  {at.strftime('%H:%M:%S')} {level:7} {message.rstrip()}")
    return 0


def _state(job: jobs.JobInfo) -> str:
    """``queued (2nd in line)`` for a job waiting for a slot of its resource."""
    if job.queue_position is None or job.state != "queued":
        return job.state
    return f"queued ({jobs.place_in_line(job.queue_position)})"


def _print_job(job: jobs.JobInfo) -> None:
    print(f"job {job.id} [{job.kind}] {job.title}")
    print(f"  state: {_state(job)}   progress: {job.done}/{job.total}   attempts: {job.attempts}   pid: {job.pid}")
    print(f"  message: {job.message}")
    if job.error:
        print(f"  error: {job.error}")
    if job.result:
        print(f"  result: {job.result}")


def run_cancel(args: argparse.Namespace, settings: Settings) -> int:
    job = jobs.cancel(open_store(settings), settings, args.job_id, by=cli_person(args.user))
    print(f"job {job.id}: {job.state}{' (stop requested)' if job.cancel_requested else ''}")
    return 0


def run_resume(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    job = jobs.resume(store, settings, args.job_id, by=cli_person(args.user))
    print(f"job {job.id} resumed")
    if args.wait:
        job = jobs.wait(store, settings, job.id, timeout_s=24 * 3600)
        _print_job(job)
        return 0 if job.status == "done" else 1
    return 0


def run_run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        job = jobs.run(open_store(settings), settings, args.job_id, exit_on_lease_loss=True)
    except jobs.LeaseLost as err:  # only when the loss showed before the heartbeat could exit
        print(f"error: {err}", file=sys.stderr)
        return jobs.LEASE_LOST_EXIT
    _print_job(job)
    return 0 if job.status in ("done", "cancelled") else 1
