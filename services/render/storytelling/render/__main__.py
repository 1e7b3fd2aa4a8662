"""`python -m storytelling.render`: the render service."""

from storytelling.render.service import RenderService
from storytelling.render.settings import RenderSettings
from storytelling.runtime.server import main

main(RenderService.from_settings, RenderSettings)
