from storytelling.evaluation.service import EvaluationService
from storytelling.evaluation.settings import EvaluationSettings
from storytelling.runtime.server import main

main(EvaluationService.from_settings, EvaluationSettings)
