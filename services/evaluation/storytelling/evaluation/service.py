"""The evaluation service: builds the core from settings and owns its models' lifecycle."""

import asyncio
import logging

import grpc
from prometheus_client.registry import Collector

from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.embedder import SentenceEmbedder
from storytelling.evaluation.jsonout import OutputMode
from storytelling.evaluation.metrics import EvaluationMetrics
from storytelling.evaluation.servicer import EvaluationServicer
from storytelling.evaluation.settings import EvaluationSettings
from storytelling.evaluation.text_measures import TextMeasurer
from storytelling.llm import build_engine
from storytelling.api.pools import PoolRegistry, builtin_pools, load_pool
from storytelling.runtime.errors import ServiceError
from storytelling.runtime.images import DEFAULT_MAX_PIXELS
from storytelling.runtime.service import Service
from storytelling.v1 import evaluation_pb2, evaluation_pb2_grpc

log = logging.getLogger(__name__)


class EvaluationService(Service):
    name = "evaluation"

    def __init__(self, core: Evaluation, max_image_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.core = core
        self.max_image_pixels = max_image_pixels
        self.metrics = EvaluationMetrics()

    @classmethod
    def from_settings(cls, settings: EvaluationSettings) -> "EvaluationService":
        embedder = SentenceEmbedder(
            settings.embedder,
            device=settings.embed_device,
            dtype=settings.embed_dtype,
            backend=settings.embed_backend,
        )
        pools = PoolRegistry(
            [*builtin_pools(), *(load_pool(path) for path in settings.pool_files)],
            default=settings.default_pool,
        )
        if pools.get("") is None:
            raise ValueError(f"default pool {settings.default_pool!r} is not among {pools.names()}")
        return cls(
            Evaluation(
                embedder,
                TextMeasurer(embedder) if settings.text_measures else None,
                pools=pools,
                extractors={name: build_engine(spec) for name, spec in settings.extractors.items()},
                judges={name: build_engine(spec) for name, spec in settings.judges.items()},
                default_extractor=settings.default_extractor,
                extractor_output=OutputMode(settings.extractor_output),
                default_judge=settings.default_judge,
                judge_output=OutputMode(settings.judge_output),
                max_repairs=settings.max_repairs,
                top_logprobs=settings.top_logprobs,
                default_k=settings.default_k,
                tile_bytes=settings.knn_tile_mb << 20,
                knn_device=settings.knn_device,
                approximate_above=settings.approximate_above or None,
                nprobe=settings.nprobe,
                memorisation_threshold=settings.memorisation_threshold,
                seed=settings.seed,
                max_items_in_flight=settings.max_items_in_flight,
            ),
            max_image_pixels=settings.max_image_pixels,
        )

    def collectors(self) -> list[Collector]:
        return self.metrics.collectors()

    def register(self, server: grpc.aio.Server) -> list[str]:
        servicer = EvaluationServicer(self.core, self.max_image_pixels, self.metrics)
        evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
        return [evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name]

    async def start(self) -> None:
        """Loads the embedder and spaCy, starts engines; a failed engine leaves its evaluators NOT_RUN."""
        await asyncio.to_thread(self.core.embedder.load)
        if self.core.text:
            await asyncio.to_thread(self.core.text.load)
        for engine in self._engines():
            try:
                await engine.start()
            except ServiceError as exc:
                log.warning("engine %s did not start: %s", engine.model, exc.message)

    async def ready(self) -> tuple[bool, str]:
        if not self.core.embedder.loaded:
            return False, "loading the sentence embedder"
        if self.core.text and not self.core.text.loaded:
            return False, "loading spaCy en_core_web_sm"
        return True, ""

    async def stop(self) -> None:
        for engine in self._engines():
            await engine.aclose()

    def _engines(self) -> list:
        return [*self.core.extractors.values(), *self.core.judges.values()]
