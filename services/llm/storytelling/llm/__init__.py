"""LLM engines behind one interface, shared by the story and evaluation services.

`OpenAIChatEngine` talks to any OpenAI-compatible chat endpoint (vLLM in production, hosted APIs);
`EmbeddedChatEngine` runs a transformers model in-process (SmolLM2-135M-Instruct offline by default).
Both take text and image parts in messages, so one engine per backend serves the storyteller, the
key-point extractor and the vision-language judge, all built by `build_engine`.
"""

from storytelling.llm.engine import (
    ChatEngine,
    ChatMessage,
    Completion,
    ImagePart,
    JsonSchema,
    SamplingParams,
    TextPart,
    TokenLogprob,
)
from storytelling.llm.registry import EngineSpec, build_engine

__all__ = [
    "ChatEngine",
    "ChatMessage",
    "Completion",
    "EngineSpec",
    "ImagePart",
    "JsonSchema",
    "SamplingParams",
    "TextPart",
    "TokenLogprob",
    "build_engine",
]
