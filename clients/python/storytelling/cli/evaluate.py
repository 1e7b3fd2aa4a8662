"""`storytelling evaluate FOLDER`: scores an existing folder of stories and images with EvaluationService
and writes the results in the job directory layout, with a gallery."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from storytelling.api import vocabulary
from storytelling.api.gallery import write_gallery
from storytelling.api.layout import JobFiles, write_item
from storytelling.api.vocabulary import default_address
from storytelling.cli.connection import channel_options
from storytelling.cli.display import summary_line
from storytelling.cli.folder import Fields, FolderItem, FolderLimits, read_folder
from storytelling.client import EvaluationClient, evaluation_item
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

DEFAULT_EVALUATION_ADDRESS = default_address("evaluation")


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "evaluate",
        parents=[common],
        help="score a folder of stories and images (e.g. research script output)",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--stories", type=Path, default=None, help="the CSV or JSONL of stories, if ambiguous"
    )
    parser.add_argument(
        "--images", type=Path, default=None, help="folder the image file names are relative to, if ambiguous"
    )
    defaults = Fields()
    for name, help_text in (
        ("id", "column or key of the story id"),
        ("story", "column or key of the story text"),
        ("image", "column or key of the image file name"),
        ("exemplar", "column or key of an exemplar the story was conditioned on (repeat), for novelty"),
    ):
        parser.add_argument(
            f"--{name}-field",
            dest=f"{name}_fields",
            action="append",
            default=None,
            help=f"{help_text} (default: {', '.join(getattr(defaults, 'exemplars' if name == 'exemplar' else name))})",
        )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the control key points (default: the service's)"
    )
    parser.add_argument(
        "--evaluation-address",
        default=os.environ.get("STORYTELLING_EVALUATION_ADDRESS", DEFAULT_EVALUATION_ADDRESS),
        help=f"EvaluationService address (env STORYTELLING_EVALUATION_ADDRESS, "
        f"default {DEFAULT_EVALUATION_ADDRESS})",
    )
    parser.add_argument(
        "--evaluator",
        dest="evaluators",
        action="append",
        default=[],
        choices=vocabulary.choices(vocabulary.Evaluator),
        help="evaluator to run (repeat; default all)",
    )
    parser.add_argument(
        "-k", type=int, default=0, help="neighbours for KNN diversity (default: the service's)"
    )
    defaults = FolderLimits()
    parser.add_argument(
        "--max-image-mb",
        type=float,
        default=defaults.image_bytes / 2**20,
        help="refuse image files larger than this (default %(default).0f MiB)",
    )
    parser.add_argument(
        "--max-stories-mb",
        type=float,
        default=defaults.story_file_bytes / 2**20,
        help="refuse story files (CSV, JSONL, .txt) larger than this (default %(default).0f MiB)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory in the job layout, with a gallery (default FOLDER/evaluation)",
    )
    parser.set_defaults(func=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    out = args.out or args.folder / "evaluation"
    files = JobFiles(out)
    limits = FolderLimits(
        story_file_bytes=int(args.max_stories_mb * 2**20), image_bytes=int(args.max_image_mb * 2**20)
    )
    defaults = Fields()
    fields = Fields(
        id=tuple(args.id_fields or defaults.id),
        story=tuple(args.story_fields or defaults.story),
        image=tuple(args.image_fields or defaults.image),
        exemplars=tuple(args.exemplar_fields or defaults.exemplars),
    )
    items = read_folder(
        args.folder, args.stories, exclude=out, fields=fields, images=args.images, limits=limits
    )
    missing = [item.id for item in items if item.image is None]
    print(f"{len(items)} stories, {len(items) - len(missing)} with an image", flush=True)
    if missing and len(missing) < len(items):
        # The service scores a set either with every image or as stories only; keep the painted ones.
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        print(f"skipping {len(missing)} stories without an image ({shown})", file=sys.stderr, flush=True)
        items = [item for item in items if item.image is not None]
    request = evaluation_pb2.EvaluateSetRequest(
        items=[_evaluation_item(item, limits) for item in items],
        evaluators=[vocabulary.parse(vocabulary.Evaluator, e) for e in args.evaluators],
        diversity=evaluation_pb2.DiversityOptions(k=args.k),
        alignment=evaluation_pb2.AlignmentOptions(control_seed=args.seed),
    )
    index = {item.id: n for n, item in enumerate(request.items)}
    summary = None
    with EvaluationClient(
        args.evaluation_address, timeout=args.timeout, options=channel_options(args)
    ) as client:
        for event in client.evaluate_set(request):
            if event.WhichOneof("event") == "item":
                n = index[event.item.item_id]
                write_item(
                    out,
                    n,
                    story=common_pb2.Story(id=request.items[n].id, text=request.items[n].story),
                    image=request.items[n].image if request.items[n].HasField("image") else None,
                    evaluation=event.item,
                )
                print(f"{event.item.item_id}: {_item_line(event.item)}", flush=True)
            else:
                summary = event.summary
    if summary is not None:
        files.write_summary(summary)
        print(summary_line(summary))
    job = pipeline_pb2.Job(
        id=out.name,
        state=pipeline_pb2.JOB_STATE_SUCCEEDED,
        directory=str(out),
        spec=pipeline_pb2.JobSpec(items=len(items), name=f"Evaluation of {args.folder.name}"),
        items_succeeded=len(items),
    )
    files.write_job(job)
    print(f"results: {out.resolve()}\ngallery: {write_gallery(out).resolve()}")
    return 0


def _evaluation_item(entry: FolderItem, limits: FolderLimits) -> evaluation_pb2.EvaluationItem:
    image = entry.read_image(limits)
    try:
        item = evaluation_item(entry.id, entry.story, image)
    except ValueError as error:
        raise ValueError(f"{entry.image}: {error}") from None
    item.exemplars.extend(entry.exemplars)
    return item


def _score(status: common_pb2.EvaluatorStatus, value: str) -> str:
    if status.state == common_pb2.EvaluatorStatus.STATE_OK:
        return value
    return f"{vocabulary.label(common_pb2.EvaluatorStatus.State, status.state).replace('_', ' ')} ({status.reason})"


def _item_line(evaluation: evaluation_pb2.ItemEvaluation) -> str:
    parts = []
    if evaluation.HasField("alignment"):
        parts.append("alignment " + _score(evaluation.alignment.status, f"{evaluation.alignment.score:.3f}"))
    if evaluation.HasField("complexity"):
        parts.append(
            "complexity " + _score(evaluation.complexity.status, f"{evaluation.complexity.score:.3f}")
        )
    if evaluation.HasField("text_measures"):
        covered = f"{evaluation.text_measures.dimensions_covered}/7 dimensions"
        parts.append("text " + _score(evaluation.text_measures.status, covered))
    return ", ".join(parts) or "no evaluator ran"
