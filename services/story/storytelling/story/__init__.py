"""The storyteller: one-moment stories for storytelling images, naive or chains-of-reasoning guided."""
