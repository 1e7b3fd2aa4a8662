"""Shared service runtime: one gRPC server shape for every StorytellingPainter service.

Services implement `storytelling.runtime.service.Service`; `storytelling.runtime.server.main` runs them
with health checking, reflection, Prometheus metrics, structured logs and graceful shutdown.
"""
