"""A small in-memory EvaluationService for the CLI's `evaluate` tests (the real one is tested in
tests/evaluation and test_real_evaluation.py), and the PNG helper they share."""

from __future__ import annotations

import io

from PIL import Image as PILImage
from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc

OK = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="fake")


def png(seed: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 24), (seed * 50 % 256, 90, 160)).save(out, format="PNG")
    return out.getvalue()


class FakeEvaluation(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Text measures from word counts, complexity from the image size; alignment not run (no judge)."""

    async def EvaluateSet(self, request: evaluation_pb2.EvaluateSetRequest, context):
        without = [n for n, item in enumerate(request.items) if not item.HasField("image")]
        if 0 < len(without) < len(request.items):  # the real service's rule: every image, or none
            raise InvalidArgument(
                f"{len(request.items) - len(without)} images for {len(request.items)} stories",
                field=f"items[{without[0]}].image",
            )
        for item in request.items:
            result = evaluation_pb2.ItemEvaluation(
                item_id=item.id,
                alignment=evaluation_pb2.AlignmentResult(
                    status=common_pb2.EvaluatorStatus(
                        state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                        reason="no vision-language judge configured",
                    )
                ),
                text_measures=evaluation_pb2.TextMeasuresResult(status=OK, words=len(item.story.split())),
            )
            if item.HasField("image"):
                with PILImage.open(io.BytesIO(item.image.data)) as image:
                    result.complexity.CopyFrom(
                        evaluation_pb2.ComplexityResult(
                            status=OK, score=min(image.width * image.height / 10_000, 1.0), scorer="size/1"
                        )
                    )
            yield evaluation_pb2.EvaluateSetEvent(item=result)
        yield evaluation_pb2.EvaluateSetEvent(
            summary=evaluation_pb2.SetSummary(
                items=len(request.items),
                diversity=evaluation_pb2.DiversityResult(status=OK, diversity=0.3, vendi_score=1.2),
                alignment_status=common_pb2.EvaluatorStatus(
                    state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                    reason="no vision-language judge configured",
                ),
            )
        )
