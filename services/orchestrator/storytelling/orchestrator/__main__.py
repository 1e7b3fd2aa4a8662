"""`python -m storytelling.orchestrator`: the orchestrator (PipelineService)."""

from storytelling.orchestrator.service import PipelineService
from storytelling.orchestrator.settings import OrchestratorSettings
from storytelling.runtime.server import main

main(PipelineService.from_settings, OrchestratorSettings)
