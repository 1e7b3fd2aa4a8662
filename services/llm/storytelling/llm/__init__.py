"""LLM engines behind one interface, shared by the story and evaluation services.

`OpenAIChatEngine` talks to any OpenAI-compatible chat endpoint (vLLM in production, hosted APIs);
`EmbeddedChatEngine` runs a transformers model in-process (SmolLM2-135M-Instruct offline by default).
"""

from storytelling.llm.engine import ChatEngine, ChatMessage, Completion, SamplingParams, TokenLogprob
from storytelling.llm.registry import EngineSpec, build_engine

__all__ = [
    "ChatEngine",
    "ChatMessage",
    "Completion",
    "EngineSpec",
    "SamplingParams",
    "TokenLogprob",
    "build_engine",
]
