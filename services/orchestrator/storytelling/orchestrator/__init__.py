"""Orchestrator: runs jobs of storytelling images through the story, render and evaluation services.

The core (`jobs`, `runner`, `pipeline`, `store`) knows nothing of gRPC and keeps a job's artifacts in the
layout that `storytelling.api.layout` owns; `clients` adapts the downstream services to the stage
protocols in `stages`, and `servicer` exposes the core as PipelineService.
"""
