"""In-process stages that do real, small work, for tests and the pipeline benchmark.

The story stage composes a one-moment story from seeded choices, the render stage draws a seeded
picture with Pillow and encodes it, the evaluation stage scores stories and images with simple but real
measures (word-set distances, pixel statistics). Outputs depend only on their inputs and seeds, so
reruns reproduce. Each stage can simulate an engine: `latency_s` per call and `capacity` calls served
at once; `faults` scripts errors for given items; calls after the first `hold_after` wait until
`release()`, so a test can stop a job at an exact point (`until_holding`); `calls` counts calls per item.
"""

import asyncio
import hashlib
import io
import random
import statistics
from collections import Counter
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageStat

from storytelling.evaluation import convert
from storytelling.evaluation.summary import summarize
from storytelling.runtime import deadlines
from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2, story_pb2

TIMES = ["Christmas morning", "3 AM", "the last day of school", "a stormy afternoon", "a birthday evening"]
PLACES = ["a crowded kitchen", "a school hallway", "a grocery store", "a harbour", "a hospital ward"]
ROLES = ["a nurse", "a referee", "a street vendor", "a grandfather", "a young teacher"]
EVENTS = ["drops a tray of glasses", "finds a lost puppy", "slips on spilled milk", "opens a torn letter"]
FEELINGS = ["guilty", "surprised", "furious", "relieved", "embarrassed"]
OTHERS = ["her little brother", "a worried customer", "two giggling pupils", "his wife"]


class Simulated:
    """An engine's latency and capacity, call counting and scripted faults for one stage."""

    def __init__(
        self,
        latency_s: float = 0.0,
        capacity: int = 64,
        faults: dict[int, Sequence[Exception]] | None = None,
        hold_after: int | None = None,
    ):
        self.latency_s = latency_s
        self._capacity = asyncio.Semaphore(capacity)
        self._faults = {index: list(errors) for index, errors in (faults or {}).items()}
        self._hold_after, self._released = hold_after, asyncio.Event()
        self.holding = 0  # calls waiting for release()
        self._holding_changed = asyncio.Condition()
        self.calls: Counter[int] = Counter()
        # (item index, start, end) of every call served, on the loop's clock.
        self.spans: list[tuple[int, float, float]] = []
        # The deadline each call saw (storytelling.runtime.deadlines), None where it had none.
        self.deadlines: list[float | None] = []

    async def serve(self, index: int) -> None:
        """Counts the call, waits for release if it is held, for capacity and latency, then raises the
        next scripted fault if any."""
        self.calls[index] += 1
        self.deadlines.append(deadlines.remaining())
        if self._hold_after is not None and self.calls.total() > self._hold_after:
            self.holding += 1
            async with self._holding_changed:
                self._holding_changed.notify_all()
            try:
                await self._released.wait()
            finally:  # also when the call is cancelled: its service died
                self.holding -= 1
        async with self._capacity:
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(self.latency_s)
            self.spans.append((index, start, asyncio.get_running_loop().time()))
        if self._faults.get(index):
            raise self._faults[index].pop(0)

    async def until_holding(self, count: int, timeout_s: float = 30.0) -> None:
        """Returns once `count` calls are held; fails after `timeout_s` (a bug that loses an item)."""
        try:
            async with asyncio.timeout(timeout_s), self._holding_changed:
                await self._holding_changed.wait_for(lambda: self.holding >= count)
        except TimeoutError:
            raise AssertionError(f"{count} calls not held within {timeout_s:.0f} s") from None

    def release(self) -> None:
        """Lets held calls, and every later one, go on."""
        self._released.set()


def item_index(story_id: str) -> int:
    """Stories carry their item index in their id, so later stages can count calls per item."""
    return int(story_id.rsplit("-", 1)[1])


class LocalStory:
    def __init__(self, engines: Sequence[str] = ("template",), **simulated):
        self.engines = list(engines)
        self.sim = Simulated(**simulated)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        if spec.story.engine and spec.story.engine not in self.engines:
            raise InvalidArgument(f"unknown engine {spec.story.engine!r}", field="spec.story.engine")

    async def write(self, options: story_pb2.StoryRequestOptions, index: int, seed: int) -> common_pb2.Story:
        await self.sim.serve(index)
        rng = random.Random(seed)
        role, other, feeling = rng.choice(ROLES), rng.choice(OTHERS), rng.choice(FEELINGS)
        text = (
            f"On {rng.choice(TIMES)} in {rng.choice(PLACES)}, {role} {rng.choice(EVENTS)} "
            f"because {other} bumped into the table. {role.capitalize()} looks {feeling}, "
            f"while {other} hides behind a shelf. {options.theme}".strip()
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return common_pb2.Story(
            id=f"{digest}-{index}",
            text=text,
            provenance=common_pb2.StoryProvenance(
                mode=options.mode or common_pb2.STORY_MODE_COR_GUIDED,
                prompt_version="template/1",
                engine=common_pb2.EngineRef(kind="local", model="template"),
                seed=seed,
            ),
        )


PILLOW_FORMATS = {
    common_pb2.IMAGE_FORMAT_PNG: "PNG",
    common_pb2.IMAGE_FORMAT_JPEG: "JPEG",
    common_pb2.IMAGE_FORMAT_WEBP: "WEBP",
}


class LocalRender:
    def __init__(self, painters: Sequence[str] = ("sketch",), steps: int = 4, **simulated):
        self.painters = list(painters)
        self.steps = steps
        self.sim = Simulated(**simulated)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        if spec.render.painter and spec.render.painter not in self.painters:
            raise InvalidArgument(f"unknown painter {spec.render.painter!r}", field="spec.render.painter")

    async def render(self, request: render_pb2.RenderRequest, progress=None) -> common_pb2.Image:
        await self.sim.serve(item_index(request.story_id))
        width, height = request.width or 64, request.height or 64
        rng = random.Random(f"{request.seed}:{request.prompt}")
        picture = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(picture)
        for step in range(1, self.steps + 1):
            for _ in range(8):
                x, y = rng.randrange(width), rng.randrange(height)
                draw.rectangle(
                    (x, y, x + width // 4, y + height // 4), fill=tuple(rng.randrange(256) for _ in range(3))
                )
            if progress is not None:
                progress(step, self.steps)
        image_format = request.format or common_pb2.IMAGE_FORMAT_PNG
        encoded = io.BytesIO()
        picture.save(encoded, format=PILLOW_FORMATS[image_format])
        return common_pb2.Image(
            data=encoded.getvalue(),
            format=image_format,
            width=width,
            height=height,
            seed=request.seed,
            steps=self.steps,
            prompt=request.prompt,
            long_prompt_strategy="none",
            painter=common_pb2.PainterRef(
                kind="sketch", model="local", is_fallback=True, note="test painter"
            ),
        )


class LocalEvaluate:
    def __init__(self, **simulated):
        self.sim = Simulated(**simulated)
        self.summaries: list[evaluation_pb2.SummarizeSetRequest] = []

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        """Every evaluator enum value is known here."""

    async def evaluate(self, request: evaluation_pb2.EvaluateItemRequest) -> evaluation_pb2.ItemEvaluation:
        await self.sim.serve(item_index(request.item.id))
        ok = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="local")
        sentences = [s.strip() + "." for s in request.item.story.split(".") if s.strip()]
        evaluation = evaluation_pb2.ItemEvaluation(item_id=request.item.id)
        if not request.item.image.data:
            evaluation.alignment.status.CopyFrom(_not_run("no image"))
            evaluation.complexity.status.CopyFrom(_not_run("no image"))
            return evaluation
        picture = Image.open(io.BytesIO(request.item.image.data)).convert("L")
        spread = ImageStat.Stat(picture).stddev[0] / 128
        scores = [_unit(f"{request.item.image.data[:64]!r}{s}") for s in sentences]
        evaluation.alignment.status.CopyFrom(ok)
        evaluation.alignment.score = statistics.fmean(scores)
        evaluation.alignment.by_dimension.add(
            dimension=common_pb2.DIMENSION_EVENT, score=evaluation.alignment.score, count=len(scores)
        )
        evaluation.alignment.key_points.extend(
            common_pb2.KeyPoint(dimension=common_pb2.DIMENSION_EVENT, text=s, score=v)
            for s, v in zip(sentences, scores, strict=True)
        )
        evaluation.complexity.status.CopyFrom(ok)
        evaluation.complexity.score = min(1.0, spread)
        return evaluation

    async def summarize(self, request: evaluation_pb2.SummarizeSetRequest) -> evaluation_pb2.SetSummary:
        """The evaluation service's own summary code over the members, with word-set diversity."""
        self.summaries.append(request)
        summary = convert.summary(summarize(convert.members(request.items)), "word-sets")
        if not request.skip_diversity:
            summary.diversity.CopyFrom(
                self._diversity([m.story for m in request.items if m.story], request.diversity.k)
            )
        return summary

    @staticmethod
    def _diversity(stories: Sequence[str], k: int) -> evaluation_pb2.DiversityResult:
        words = [set(story.lower().split()) for story in stories]
        k = min(k or 5, len(words) - 1)
        per_story = []
        for i, own in enumerate(words):
            distances = sorted(
                1 - len(own & other) / len(own | other) for j, other in enumerate(words) if j != i
            )
            per_story.append(statistics.fmean(distances[:k]) if k else 0.0)
        return evaluation_pb2.DiversityResult(
            status=common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="jaccard"),
            diversity=statistics.fmean(per_story) if per_story else 0.0,
            per_story=per_story,
            k=k,
            embedder="word-sets",
            search="exact",
            vendi_score=1.0,
        )


class RecordingEvaluate(LocalEvaluate):
    """Keeps every request it is asked (LocalEvaluate keeps none: they carry the images)."""

    def __init__(self, **simulated):
        super().__init__(**simulated)
        self.requests: list[evaluation_pb2.EvaluateItemRequest] = []

    async def evaluate(self, request: evaluation_pb2.EvaluateItemRequest) -> evaluation_pb2.ItemEvaluation:
        self.requests.append(request)
        return await super().evaluate(request)


def _not_run(reason: str) -> common_pb2.EvaluatorStatus:
    return common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_NOT_RUN, reason=reason)


def _unit(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") / 2**32
