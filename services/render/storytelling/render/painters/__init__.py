"""Painters behind one interface: Triton, an OpenAI-compatible image API, embedded diffusers, sketch."""
