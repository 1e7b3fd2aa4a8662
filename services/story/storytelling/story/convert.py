"""Protobuf <-> core types; the only module of the story core that knows the wire format."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from storytelling.llm import SamplingParams
from storytelling.runtime.errors import InvalidArgument
from storytelling.story.core import InlinePool, Story, StoryOptions
from storytelling.api.pools import Pool
from storytelling.story.prompts import Mode, Prompt
from storytelling.v1 import common_pb2, story_pb2

MODES = {
    common_pb2.STORY_MODE_NAIVE: Mode.NAIVE,
    common_pb2.STORY_MODE_COR_GUIDED: Mode.COR_GUIDED,
    common_pb2.STORY_MODE_SHORT: Mode.SHORT,
}
MODE_ENUMS = {mode: enum for enum, mode in MODES.items()}


def options(message: story_pb2.StoryRequestOptions) -> StoryOptions:
    if message.mode != common_pb2.STORY_MODE_UNSPECIFIED and message.mode not in MODES:
        raise InvalidArgument(f"unknown mode {message.mode}", field="options.mode")
    sampling = message.sampling
    return StoryOptions(
        mode=MODES.get(message.mode),
        pool=message.pool,
        inline_pool=InlinePool(
            message.inline_pool.name, message.inline_pool.content, message.inline_pool.format
        )
        if message.HasField("inline_pool")
        else None,
        num_exemplars=message.num_exemplars,
        split=message.split,
        engine=message.engine,
        temperature=sampling.temperature if sampling.HasField("temperature") else None,
        top_p=sampling.top_p if sampling.HasField("top_p") else None,
        max_tokens=sampling.max_tokens if sampling.HasField("max_tokens") else None,
        sampling_seed=sampling.seed if sampling.HasField("seed") else None,
        max_attempts=message.max_attempts,
        theme=message.theme,
    )


def sampling_params(params: SamplingParams) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(
        temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens, seed=params.seed
    )


def story(value: Story) -> common_pb2.Story:
    p = value.provenance
    created = Timestamp()
    created.FromDatetime(p.created_at)
    return common_pb2.Story(
        id=value.id,
        text=value.text,
        provenance=common_pb2.StoryProvenance(
            mode=MODE_ENUMS[p.mode],
            prompt_version=p.prompt_version,
            exemplars=[common_pb2.ExemplarRef(pool=p.pool, id=i) for i in p.exemplar_ids],
            engine=common_pb2.EngineRef(kind=p.engine.kind, endpoint=p.engine.endpoint, model=p.engine.model),
            sampling=sampling_params(p.sampling),
            seed=p.seed,
            rejected=[
                common_pb2.RejectedOutput(reason=r.reason, detail=r.detail, text=r.text) for r in p.rejected
            ],
            created_at=created,
            prompt_tokens=p.prompt_tokens,
            completion_tokens=p.completion_tokens,
            salvaged=p.salvaged,
        ),
    )


def pool_info(pool: Pool) -> story_pb2.PoolInfo:
    return story_pb2.PoolInfo(
        name=pool.name,
        description=pool.description,
        size=len(pool.entries),
        splits=pool.splits,
        dimension_counts={f"DIMENSION_{name.upper()}": n for name, n in pool.dimension_counts().items()},
        source=pool.source,
    )


def mode_info(prompt: Prompt) -> story_pb2.ModeInfo:
    return story_pb2.ModeInfo(
        mode=MODE_ENUMS[prompt.mode], prompt_version=prompt.version, description=prompt.description
    )
