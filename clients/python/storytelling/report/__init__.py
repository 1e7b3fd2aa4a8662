"""The gallery report of a job directory, and the artifact layout it reads."""

from storytelling.report.gallery import FALLBACK_BADGE, render_gallery, write_gallery
from storytelling.report.layout import ItemRecord, JobFiles, JobRecord, load_job, write_item, write_message

__all__ = [
    "FALLBACK_BADGE",
    "ItemRecord",
    "JobFiles",
    "JobRecord",
    "load_job",
    "render_gallery",
    "write_gallery",
    "write_item",
    "write_message",
]
