"""Render service: paints stories through Triton, an OpenAI-compatible image API, in-process diffusers
or an offline storyboard sketch."""
