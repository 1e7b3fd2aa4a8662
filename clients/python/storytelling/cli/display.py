"""Progress output for `paint`: redrawn bars per stage on a terminal, one line per change otherwise."""

from __future__ import annotations

import time
from typing import TextIO

from storytelling.api import vocabulary
from storytelling.api.vocabulary import stage_outcome
from storytelling.client import JobProgress, StageStatus
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

_WIDTH = 28


def summary_line(summary: evaluation_pb2.SetSummary) -> str:
    """The set summary as the evaluation service computed it; an absent number reads "not measured"."""

    def measured(message, field: str, spec: str) -> str:
        return format(getattr(message, field), spec) if message.HasField(field) else "not measured"

    def evaluator(status: common_pb2.EvaluatorStatus, value: str) -> str:
        if status.state in (
            common_pb2.EvaluatorStatus.STATE_OK,
            common_pb2.EvaluatorStatus.STATE_UNSPECIFIED,
        ):
            return value
        state = vocabulary.label(common_pb2.EvaluatorStatus.State, status.state).replace("_", " ")
        return f"{state} ({status.reason})"

    d = summary.diversity
    parts = [f"set of {summary.items}"]
    if summary.HasField("diversity"):
        parts.append(
            "diversity "
            + evaluator(
                d.status,
                f"{d.diversity:.3f} (Vendi {d.vendi_score:.2f}{', ' + d.search if d.search else ''})",
            )
        )
    parts.append(
        "mean alignment " + evaluator(summary.alignment_status, measured(summary, "mean_alignment", ".3f"))
    )
    parts.append(
        "judge false-yes rate "
        + evaluator(summary.alignment_status, measured(summary, "mean_false_yes_rate", ".2f"))
    )
    parts.append(
        "mean complexity " + evaluator(summary.complexity_status, measured(summary, "mean_complexity", ".3f"))
    )
    if summary.novelty_counts.ok:
        parts.append(f"novelty vs exemplars {measured(summary.novelty, 'mean_exemplar_novelty', '.3f')}")
        parts.append(f"memorised {summary.novelty.memorised_items}")
    if summary.items_not_evaluated:
        parts.append(f"{summary.items_not_evaluated} not evaluated")
    return ", ".join(parts)


def stage_line(status: StageStatus, *, fill: str = "█", empty: str = "░") -> str:
    total = max(status.total, 1)
    filled = round(_WIDTH * (status.done + status.failed) / total)
    bar = fill * filled + empty * (_WIDTH - filled)
    line = f"{vocabulary.label(vocabulary.Stage, status.stage):<9} {bar} {status.done:>4}/{status.total}"
    extras = []
    if status.running:
        extras.append(f"{status.running} running")
    if status.waiting:
        why = f" {vocabulary.waiting_line(status.wait).removeprefix('waiting ')}" if status.wait else ""
        extras.append(f"{status.waiting} waiting{why}")
    if status.failed:
        extras.append(f"{status.failed} failed")
    if status.step:
        item, step, steps = status.step
        extras.append(f"item {item} step {step}/{steps}")
    return line + (f"  ({', '.join(extras)})" if extras else "")


class BarDisplay:
    """Redraws one bar per stage in place with ANSI cursor movement, at most 10 times a second."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lines = 0
        self._last = 0.0

    def show(self, progress: JobProgress, event: pipeline_pb2.JobEvent) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and event.WhichOneof("event") == "progress":
            return
        self._last = now
        lines = [stage_line(s) for s in progress.stages.values()]
        lines.append(f"job {progress.job_id}: {vocabulary.label(vocabulary.JobState, progress.state)}")
        if self._lines:
            self._out.write(f"\x1b[{self._lines}F")
        self._out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self._out.flush()
        self._lines = len(lines)

    def close(self) -> None:
        self._out.flush()


class LineDisplay:
    """Prints a line when an item finishes or fails a stage, a stage starts or stops waiting for its
    service, or the job changes state (logs, CI)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._seen: dict[tuple[int, int], str | None] = {}
        self._state = 0
        self._waiting: dict[int, str] = {}

    def show(self, progress: JobProgress, event: pipeline_pb2.JobEvent) -> None:
        if progress.state != self._state:
            self._state = progress.state
            self._print(f"job {progress.job_id}: {vocabulary.label(vocabulary.JobState, progress.state)}")
        for stage, status in progress.stages.items():
            name = vocabulary.label(vocabulary.Stage, stage)
            if status.wait is not None and stage not in self._waiting:
                self._waiting[stage] = status.wait.service
                self._print(f"{name}: {vocabulary.waiting_line(status.wait)}")
            elif status.wait is None and stage in self._waiting:
                self._print(f"{name}: {self._waiting.pop(stage)} is back")
        items = [event.item] if event.WhichOneof("event") == "item" else []
        for item in items:
            for stage, status in progress.stages.items():
                outcome = stage_outcome(item, stage)
                if outcome == self._seen.get((item.index, stage)) or outcome not in ("done", "failed"):
                    continue
                self._seen[(item.index, stage)] = outcome
                stage_name = vocabulary.label(vocabulary.Stage, stage)
                line = f"item {item.index}: {stage_name} {outcome} ({status.done}/{status.total})"
                self._print(line + (f": {item.error}" if outcome == "failed" and item.error else ""))

    def close(self) -> None:
        self._out.flush()

    def _print(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()
