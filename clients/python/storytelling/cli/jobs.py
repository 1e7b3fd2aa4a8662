"""Job commands: paint, status, list, cancel and report."""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from google.protobuf import json_format
from storytelling.api import vocabulary
from storytelling.api.gallery import write_gallery
from storytelling.cli.connection import channel_options
from storytelling.cli.display import BarDisplay, LineDisplay, stage_line, summary_line
from storytelling.cli.stack import DEFAULT_PROFILE, embedded_stack
from storytelling.client import ChannelOptions, Client, JobProgress, job_spec
from storytelling.v1 import common_pb2, pipeline_pb2


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    paint = commands.add_parser("paint", parents=[common], help="run a job and watch its progress")
    paint.add_argument("-n", "--items", type=int, default=3, help="number of stories and images (default 3)")
    paint.add_argument(
        "--mode",
        choices=vocabulary.choices(vocabulary.StoryMode) + ["cor-guided"],
        default="",
        help="storyteller prompting (default: the orchestrator's, CoR-guided)",
    )
    paint.add_argument("--pool", default="", help="story pool for CoR-guided exemplars")
    paint.add_argument("--engine", default="", help="story engine name (see the story service)")
    paint.add_argument("--theme", default="", help='theme added to every prompt ("a hospital at night")')
    paint.add_argument("--temperature", type=float, default=None)
    paint.add_argument("--max-tokens", type=int, default=None, help="story length cap in tokens")
    paint.add_argument(
        "--max-attempts",
        type=int,
        default=0,
        help="regenerations after a rejected story (default: the service's)",
    )
    paint.add_argument("--painter", default="", help="painter name (see the render service)")
    paint.add_argument("--width", type=int, default=0)
    paint.add_argument("--height", type=int, default=0)
    paint.add_argument("--steps", type=int, default=0, help="denoising steps")
    paint.add_argument(
        "--evaluator",
        dest="evaluators",
        action="append",
        default=[],
        choices=vocabulary.choices(vocabulary.Evaluator),
        help="evaluator to run (repeat; default all)",
    )
    paint.add_argument("--seed", type=int, default=None, help="job seed; the same seed reproduces the job")
    paint.add_argument("--name", default="", help="name shown in listings and the gallery")
    paint.add_argument("--skip-render", action="store_true", help="stop after the stories")
    paint.add_argument("--skip-evaluation", action="store_true")
    paint.add_argument("--request-id", default="", help="idempotency key: repeating it returns the same job")
    paint.add_argument("--detach", action="store_true", help="create the job and return without watching")
    paint.add_argument(
        "--embedded",
        action="store_true",
        help="start the local stack (the offline profile) for this job and stop it afterwards",
    )
    paint.add_argument(
        "--profile",
        default="",
        help="start the local stack with this model profile for the job (implies --embedded)",
    )
    paint.add_argument("--data-dir", type=Path, default=Path("runs"), help="jobs and logs with --embedded")
    paint.set_defaults(func=paint_command)

    status = commands.add_parser("status", parents=[common], help="show a job and its items")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the job as protobuf JSON")
    status.add_argument(
        "--items", type=int, default=100, help="show at most this many items (0: all); counters cover all"
    )
    status.add_argument(
        "--item-state",
        dest="item_states",
        action="append",
        default=[],
        choices=vocabulary.choices(vocabulary.ItemState),
        help="only items in this state (repeat)",
    )
    status.set_defaults(func=status_command)

    listing = commands.add_parser("list", parents=[common], help="list jobs")
    listing.add_argument(
        "--state",
        dest="states",
        action="append",
        default=[],
        choices=vocabulary.choices(vocabulary.JobState),
        help="only jobs in this state (repeat)",
    )
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=list_command)

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=cancel_command)

    report = commands.add_parser("report", help="build the gallery page of a job directory")
    report.add_argument("job_dir", type=Path)
    report.set_defaults(func=report_command)


def paint_command(args: argparse.Namespace) -> int:
    spec = job_spec(
        args.items,
        mode=args.mode,
        pool=args.pool,
        engine=args.engine,
        theme=args.theme,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        max_attempts=args.max_attempts,
        painter=args.painter,
        width=args.width,
        height=args.height,
        steps=args.steps,
        evaluators=args.evaluators,
        seed=args.seed,
        name=args.name,
        skip_render=args.skip_render,
        skip_evaluation=args.skip_evaluation,
    )
    if not (args.embedded or args.profile):
        return _paint(spec, args.address, channel_options(args), args)
    if args.detach:
        raise ValueError("--detach cannot be used with --embedded, which stops the stack when the job ends")
    with embedded_stack(args.data_dir, args.profile or DEFAULT_PROFILE) as address:  # loopback, no tokens
        return _paint(spec, address, ChannelOptions(token=None), args)


def _paint(
    spec: pipeline_pb2.JobSpec, address: str, options: ChannelOptions, args: argparse.Namespace
) -> int:
    with Client(address, timeout=args.timeout, options=options) as client:
        job = client.create_job(spec, request_id=args.request_id)
        print(f"job {job.id} created: {job.spec.items} items, seed {job.seed}", flush=True)
        if args.detach:
            print(f"watch it with: storytelling status {job.id}")
            return 0
        progress = JobProgress.for_job(job)
        display = BarDisplay(sys.stdout) if sys.stdout.isatty() else LineDisplay(sys.stdout)
        try:
            for event in client.watch(job.id, results=False):
                progress.update(event)
                display.show(progress, event)
        except KeyboardInterrupt:
            if args.embedded or args.profile:
                print(
                    f"\nstopping the local stack; job {job.id} resumes when the stack next starts "
                    f"with --data-dir {args.data_dir}"
                )
            else:
                print(
                    f"\nstopped watching; the job goes on. `storytelling status {job.id}` shows it, "
                    f"`storytelling cancel {job.id}` stops it."
                )
            return 130
        finally:
            display.close()
        job = client.get_job(job.id, items=False)
        failed = list(
            itertools.islice(client.list_items(job.id, states=["failed"], results=False), _FAILURES)
        )
    _print_outcome(job, failed)
    return 0 if job.state == pipeline_pb2.JOB_STATE_SUCCEEDED and not job.items_failed else 1


# Failed items `paint` lists by name at the end; `status --item-state failed` shows them all.
_FAILURES = 20


def _print_outcome(job: pipeline_pb2.Job, failed: list[pipeline_pb2.Item]) -> None:
    state = vocabulary.label(vocabulary.JobState, job.state)
    print(
        f"job {job.id} {state}: {job.items_succeeded} of {job.spec.items} items succeeded"
        + (f", {job.items_failed} failed" if job.items_failed else "")
        + (f" ({job.error})" if job.error else "")
    )
    for item in failed:
        print(f"  item {item.index} failed: {item.error}")
    if job.items_failed > len(failed):
        print(
            f"  ... {job.items_failed - len(failed)} more: storytelling status {job.id} --item-state failed"
        )
    summary = job.summary
    if summary.alignment_status.random_weights or summary.complexity_status.random_weights:
        print("  alignment and complexity come from random weights: plumbing only, the numbers mean nothing")
    gallery = gallery_of(job)
    if gallery is not None:
        print(f"gallery: {gallery}")
    elif job.directory:
        print(f"artifacts: {job.directory} (on the orchestrator's machine)")


def gallery_of(job: pipeline_pb2.Job) -> Path | None:
    """The job's gallery page if this machine can see it, building it when only the artifacts exist."""
    directory = Path(job.directory) if job.directory else None
    if job.gallery_path:
        path = Path(job.gallery_path)
        path = path if path.is_absolute() or directory is None else directory / path
        if path.is_file():
            return path.resolve()
    if directory is not None and directory.is_dir():
        return write_gallery(directory).resolve()
    return None


def status_command(args: argparse.Namespace) -> int:
    with Client(args.address, timeout=args.timeout, options=channel_options(args)) as client:
        job = client.get_job(args.job_id, items=False)
        items = client.list_items(
            args.job_id, states=args.item_states, page_size=min(args.items or 1000, 1000)
        )
        job.items.extend(itertools.islice(items, args.items or None))
    if args.json:
        print(json_format.MessageToJson(job, indent=2))
        return 0
    title = f" ({job.spec.name})" if job.spec.name else ""
    print(
        f"job {job.id}{title}: {vocabulary.label(vocabulary.JobState, job.state)}, "
        f"{job.items_succeeded}/{job.spec.items} items succeeded, {job.items_failed} failed"
    )
    progress = JobProgress.for_job(job)
    for status in progress.stages.values():
        print("  " + stage_line(status, fill="#", empty="-"))
    for item in job.items:
        line = (
            f"  item {item.index:>3}  {vocabulary.label(vocabulary.ItemState, item.state):<9} "
            f"{vocabulary.label(vocabulary.Stage, item.stage):<9} {item.story.id}"
        )
        if (
            item.evaluation.HasField("alignment")
            and item.evaluation.alignment.status.state == common_pb2.EvaluatorStatus.STATE_OK
        ):
            line += f"  alignment {item.evaluation.alignment.score:.2f}"
        if item.HasField("waiting"):
            line += f"  {vocabulary.waiting_line(item.waiting)}"
        print(line + (f"  error: {item.error}" if item.error else ""))
    shown_all = args.item_states or not args.items or len(job.items) >= job.spec.items
    if not shown_all:
        print(f"  ... {job.spec.items - len(job.items)} more items (--items 0 shows all)")
    if job.HasField("summary"):
        print(f"  {summary_line(job.summary)}")
    if job.error:
        print(f"  error: {job.error}")
    if job.directory:
        print(f"  directory: {job.directory}")
    return 0


def list_command(args: argparse.Namespace) -> int:
    with Client(args.address, timeout=args.timeout, options=channel_options(args)) as client:
        jobs = list(itertools.islice(client.list_jobs(states=args.states, page_size=args.limit), args.limit))
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'JOB':<36} {'STATE':<10} {'ITEMS':>9} {'FAILED':>6}  {'CREATED':<20} NAME")
    for job in jobs:
        created = (
            job.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if job.HasField("created_at") else ""
        )
        print(
            f"{job.id:<36} {vocabulary.label(vocabulary.JobState, job.state):<10} "
            f"{job.items_succeeded:>4}/{job.spec.items:<4} {job.items_failed:>6}  {created:<20} "
            f"{job.spec.name}"
        )
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    with Client(args.address, timeout=args.timeout, options=channel_options(args)) as client:
        job = client.cancel_job(args.job_id)
    print(f"job {job.id}: {vocabulary.label(vocabulary.JobState, job.state)}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    print(f"gallery: {write_gallery(args.job_dir).resolve()}")
    return 0
