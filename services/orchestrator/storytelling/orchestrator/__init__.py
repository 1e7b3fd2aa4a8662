"""Orchestrator: runs jobs of storytelling images through the story, render and evaluation services.

The core (`jobs`, `runner`, `pipeline`, `store`, `artifacts`) knows nothing of gRPC; `clients` adapts the
downstream services to the stage protocols in `stages`, and `servicer` exposes the core as PipelineService.
"""
