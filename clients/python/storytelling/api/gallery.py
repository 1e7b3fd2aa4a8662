"""Renders a job directory into a static gallery: `gallery/index.html` with the set and the first page
of items, then `page-2.html`... for larger jobs. Inline CSS and SVG and relative image paths, so it
opens from disk without a server; every piece of text is HTML-escaped. Items are read a page at a time,
so a job of any size is rendered in bounded memory."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from html import escape
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from storytelling.api import vocabulary
from storytelling.api.chart import dimension_chart
from storytelling.api.layout import GALLERY_FILE, ItemRecord, JobRecord, iter_items, load_job, write_atomic
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

FALLBACK_BADGE = "fallback sketch / random weights — not a diffusion result"
PAGE_ITEMS = 200
RANDOM_WEIGHTS_BADGE = "random weights: plumbing test only, the number means nothing"
SALVAGED_BADGE = "salvaged: no output of the model passed every check"
_STATUS = common_pb2.EvaluatorStatus


def write_gallery(
    job_dir: Path | str,
    job: pipeline_pb2.Job | None = None,
    items: Callable[[], Iterable[ItemRecord]] | None = None,
    *,
    page_items: int = PAGE_ITEMS,
) -> Path:
    """Builds the gallery of a job directory and returns the path of its index.html.

    `job` defaults to job.json and `items` (called for a fresh iteration, in index order) to the
    directory's items: the orchestrator passes the job as it ends and the items it holds.
    """
    record = load_job(Path(job_dir), with_items=False)
    if job is not None:
        record.job = job
    source = items or (lambda: iter_items(record.directory))
    page_dir = (record.directory / GALLERY_FILE).parent
    pages = _pages(source(), page_items)
    first = next(pages, [])
    number, current = 1, first
    for following in itertools.chain(pages, [None]):
        html = _page(record, current, page_dir, number, has_next=following is not None)
        write_atomic(page_dir / _page_name(number), html.encode("utf-8"))
        if following is None:
            break
        number, current = number + 1, following
    for stale in page_dir.glob("page-*.html"):  # from an earlier rendering with more pages
        if stale.stem.removeprefix("page-").isdigit() and int(stale.stem.removeprefix("page-")) > number:
            stale.unlink(missing_ok=True)
    return record.directory / GALLERY_FILE


def _pages(items: Iterable[ItemRecord], size: int) -> Iterator[list[ItemRecord]]:
    iterator = iter(items)
    while page := list(itertools.islice(iterator, size)):
        yield page


def _page_name(number: int) -> str:
    return GALLERY_FILE.name if number == 1 else f"page-{number}.html"


def _page(
    record: JobRecord,
    items: list[ItemRecord],
    page_dir: Path,
    number: int,
    *,
    has_next: bool,
) -> str:
    job = record.job
    title = job.spec.name or f"Job {job.id}"
    css = resources.files("storytelling.api").joinpath("gallery.css").read_text(encoding="utf-8")
    body = [f'<header><h1>{_e(title)}</h1><p class="meta">{_e(_job_line(record))}</p></header>']
    if number == 1:
        body.append(_set_section(record))
    body += ["<h2>Items</h2>", _legend(), *(_item(item, page_dir) for item in items)]
    if not items:
        body.append('<p class="notrun">No item has produced artifacts yet.</p>')
    if number > 1 or has_next:
        body.append(_navigation(number, has_next, items))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} — StorytellingPainter</title><style>{css}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _navigation(number: int, has_next: bool, items: list[ItemRecord]) -> str:
    links = []
    if number > 1:
        links.append(f'<a rel="prev" href="{_page_name(number - 1)}">previous page</a>')
    shown = f"items {items[0].index}–{items[-1].index}" if items else "no items"
    links.append(f"<span>page {number}: {shown}</span>")
    if has_next:
        links.append(f'<a rel="next" href="{_page_name(number + 1)}">next page</a>')
    return f'<nav class="pages">{" · ".join(links)}</nav>'


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _job_line(record: JobRecord) -> str:
    job = record.job
    parts = [f"job {job.id}"]
    if job.state:
        parts.append(vocabulary.label(vocabulary.JobState, job.state))
    parts += [vocabulary.waiting_line(counts.wait) for counts in job.stages if counts.HasField("wait")]
    if job.spec.items:
        parts.append(f"{job.items_succeeded} of {job.spec.items} items succeeded")
        if job.items_failed:
            parts.append(f"{job.items_failed} failed")
    if job.spec.story.mode:
        parts.append(f"mode {vocabulary.label(vocabulary.StoryMode, job.spec.story.mode)}")
    if job.seed or job.spec.HasField("seed"):
        parts.append(f"seed {job.seed}")
    if job.HasField("created_at"):
        parts.append(f"created {job.created_at.ToJsonString()}")
    return " · ".join(parts)


def _status_text(status: common_pb2.EvaluatorStatus | None) -> str | None:
    """None when the evaluator ran; otherwise the HTML to show instead of a number. `status` is None
    where no result was recorded at all."""
    if status is None or status.state == _STATUS.STATE_UNSPECIFIED:
        return '<span class="notrun">not run: no result recorded</span>'
    if status.state == _STATUS.STATE_NOT_RUN:
        return f'<span class="notrun">not run: {_e(status.reason or "no reason given")}</span>'
    if status.state == _STATUS.STATE_FAILED:
        return f'<span class="failed">failed: {_e(status.reason or "no reason given")}</span>'
    return None


def _row(name: str, status: common_pb2.EvaluatorStatus | None, value: Callable[[], str]) -> str:
    """A table row with the value, computed only when the evaluator ran, or why there is none; a result
    from random weights carries a badge saying so."""
    shown = _status_text(status)
    cell = shown if shown is not None else _e(value())
    if status is not None and status.random_weights:
        cell += f' <span class="badge badge-fallback">{_e(RANDOM_WEIGHTS_BADGE)}</span>'
    return f"<tr><th>{_e(name)}</th><td>{cell}</td></tr>"


def _set_section(record: JobRecord) -> str:
    summary = record.summary
    if summary is None:  # set numbers come from the evaluation service only; none are made up here
        table = '<p class="notrun">No set summary: set evaluation has not run for this job.</p>'
        by_dimension = []
    else:
        d = summary.diversity
        ran = d.status if summary.HasField("diversity") else None
        rows = [
            _row("KNN diversity", ran, lambda: f"{d.diversity:.3f} (k={d.k})"),
            _row(
                "Novelty", ran, lambda: f"{d.novelty:.3f}" if d.HasField("novelty") else "no reference given"
            ),
            _row("Vendi score", ran, lambda: f"{d.vendi_score:.2f} of {len(d.per_story)}"),
            _row("Embedder", ran, lambda: d.embedder or "default"),
            _row(
                "Mean alignment",
                summary.alignment_status,
                lambda: _measured(summary, "mean_alignment", ".3f"),
            ),
            _row(
                "Judge false-yes rate",
                summary.alignment_status,
                lambda: _measured(summary, "mean_false_yes_rate", ".2f")
                + (
                    f" (controls judged on {summary.false_yes_items} items)"
                    if summary.false_yes_items
                    else ""
                ),
            ),
            _row(
                "Mean complexity",
                summary.complexity_status,
                lambda: _measured(summary, "mean_complexity", ".3f"),
            ),
            _row(
                "Novelty vs exemplars",
                None if not summary.novelty_counts.ok else _OK,
                lambda: _measured(summary.novelty, "mean_exemplar_novelty", ".3f"),
            ),
            _row(
                "Memorisation",
                None if not summary.novelty_counts.ok else _OK,
                lambda: _memorisation(summary.novelty),
            ),
        ]
        if summary.items_not_evaluated:
            reasons = "; ".join(f"{r.reason} ({r.items})" for r in summary.not_evaluated_reasons)
            rows.append(
                f"<tr><th>Not evaluated</th><td>{summary.items_not_evaluated} items: {_e(reasons)}</td></tr>"
            )
        table = f'<table class="summary">{"".join(rows)}</table>'
        by_dimension = list(summary.alignment_by_dimension)
    chart = dimension_chart(by_dimension, "Story-image alignment per reasoning dimension")
    return (
        f'<h2>Set</h2><div class="set"><div>{table}</div>'
        f"<figure><figcaption>Alignment per dimension (judge P(yes) on the stories' own key points)"
        f"</figcaption>{chart}</figure></div>"
    )


_OK = common_pb2.EvaluatorStatus(state=_STATUS.STATE_OK)


def _measured(message, field: str, spec: str) -> str:
    """The value, or "not measured" where the service left it absent (never a made-up 0)."""
    return format(getattr(message, field), spec) if message.HasField(field) else "not measured"


def _memorisation(novelty: evaluation_pb2.NoveltySummary) -> str:
    if not novelty.HasField("max_memorisation"):
        return "not measured"
    ref = novelty.most_memorised_pool_story
    text = f"max similarity {novelty.max_memorisation:.2f} to {ref.pool}/{ref.id} (item {novelty.most_memorised_item})"
    return text + (f"; {novelty.memorised_items} memorised" if novelty.memorised_items else "")


def _legend() -> str:
    return (
        '<p class="legend">Key points: <span class="kp kp-yes">judge said yes</span>'
        '<span class="kp kp-no">judge said no</span>'
        '<span class="kp kp-control">control from another story (expected no)</span></p>'
    )


def _item(item: ItemRecord, page_dir: Path) -> str:
    story = item.story
    heading = f"Item {item.index}" + (f" · {story.id}" if story is not None and story.id else "")
    text = (
        f'<p class="story">{_e(story.text)}</p>'
        if story is not None
        else '<p class="notrun">No story: this item has not finished its story stage.</p>'
    )
    if story is not None and story.provenance.salvaged:
        reason = story.provenance.rejected[-1].detail if story.provenance.rejected else ""
        text += f'<p><span class="badge badge-fallback" title="{_e(reason)}">{_e(SALVAGED_BADGE)}</span></p>'
    return (
        f'<article class="item" id="item-{item.index:05d}">{_figure(item, page_dir)}'
        f"<div><h3>{_e(heading)}</h3>{text}{_scores(item)}{_key_points(item)}</div></article>"
    )


def _figure(item: ItemRecord, page_dir: Path) -> str:
    if item.image_path is None:
        return '<figure><div class="noimage">no image</div></figure>'
    src = quote(Path(os.path.relpath(item.image_path, page_dir)).as_posix())
    meta = item.image or common_pb2.Image()
    size = f' width="{meta.width}" height="{meta.height}"' if meta.width and meta.height else ""
    painter = meta.painter
    label = " · ".join(p for p in (painter.kind, painter.model) if p) or "unknown painter"
    caption = [f"painter: {_e(label)}"]
    if meta.seed:
        caption.append(f"seed {meta.seed}")
    if meta.steps:
        caption.append(f"{meta.steps} steps")
    badge = ""
    if painter.is_fallback:
        note = f" ({_e(painter.note)})" if painter.note else ""
        badge = f'<br><span class="badge badge-fallback">{_e(FALLBACK_BADGE)}</span>{note}'
    alt = f"Image for item {item.index}" + (
        " (fallback, not a diffusion result)" if painter.is_fallback else ""
    )
    return (
        f'<figure><img src="{_e(src)}" alt="{_e(alt)}"{size}>'
        f"<figcaption>{' · '.join(caption)}{badge}</figcaption></figure>"
    )


def _scores(item: ItemRecord) -> str:
    ev = item.evaluation
    if ev is None:
        return '<p class="notrun">Not evaluated.</p>'
    alignment, complexity, text = ev.alignment, ev.complexity, ev.text_measures
    rows = [
        _row("Alignment", _ran(ev, "alignment"), lambda: _alignment(alignment)),
        _row(
            "Semantic complexity",
            _ran(ev, "complexity"),
            lambda: f"{complexity.score:.3f}" + (f" ({complexity.scorer})" if complexity.scorer else ""),
        ),
        _row("Text measures", _ran(ev, "text_measures"), lambda: _text_measures(text)),
    ]
    return f'<table class="scores">{"".join(rows)}</table>'


def _ran(evaluation: evaluation_pb2.ItemEvaluation, result: str) -> common_pb2.EvaluatorStatus | None:
    return getattr(evaluation, result).status if evaluation.HasField(result) else None


def _alignment(result: evaluation_pb2.AlignmentResult) -> str:
    value = f"{result.score:.3f}"
    if result.HasField("false_yes_rate"):
        return value + f" (judge false-yes rate {result.false_yes_rate:.2f})"
    return value + " (judge false-yes rate not measured)"


def _text_measures(result: evaluation_pb2.TextMeasuresResult) -> str:
    covered = f"{result.dimensions_covered} of {len(vocabulary.choices(vocabulary.Dimension))} dimensions"
    return f"{covered}, {result.words} words, {result.causal_links} causal links"


def _key_points(item: ItemRecord) -> str:
    ev = item.evaluation
    if ev is None or not ev.alignment.key_points:
        return ""
    points = sorted(ev.alignment.key_points, key=lambda kp: (kp.is_control, kp.dimension))
    return '<ul class="keypoints">' + "".join(_key_point(kp) for kp in points) + "</ul>"


def _key_point(kp: common_pb2.KeyPoint) -> str:
    said_yes = _judge_said_yes(kp)
    classes = ["kp", "kp-yes" if said_yes else "kp-no"] + (["kp-control"] if kp.is_control else [])
    tag = (
        "control" if kp.is_control else vocabulary.label(vocabulary.Dimension, kp.dimension).replace("_", " ")
    )
    source = f" (from story {kp.source_story_id})" if kp.is_control and kp.source_story_id else ""
    how = "P(yes)" if kp.from_logprobs else "score"
    verdict = f"judge: {'yes' if said_yes else 'no'}, {how} {kp.score:.2f}"
    title = f"Q: {kp.question}\nA: {kp.answer}" if kp.question or kp.answer else ""
    return (
        f'<li class="{" ".join(classes)}" title="{_e(title)}"><span class="verdict">{_e(verdict)}</span>'
        f'<span class="tag">{_e(tag)}</span>{_e(kp.text)}{_e(source)}</li>'
    )


def _judge_said_yes(kp: common_pb2.KeyPoint) -> bool:
    answer = kp.answer.strip().lower()
    if answer.startswith("yes"):
        return True
    if answer.startswith("no"):
        return False
    return kp.score >= 0.5
