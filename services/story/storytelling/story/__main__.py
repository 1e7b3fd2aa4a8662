from storytelling.runtime.server import main
from storytelling.story.service import StorySettings, StoryService

main(StoryService.from_settings, StorySettings)
