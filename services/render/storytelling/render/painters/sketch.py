"""An honest offline fallback: a storyboard sketch of the story, drawn with Pillow, no weights needed.

Each sentence of the story becomes a panel (the story's visual clues, in order) and the footer lists
the scene's key elements. The picture says in its own pixels, and PainterRef says in its metadata,
that it is a fallback sketch and not a diffusion image.
"""

from __future__ import annotations

import random
import re
import textwrap
from collections import Counter

from PIL import Image, ImageDraw, ImageFont
from storytelling.render.painters.base import Painter, PainterRef, PainterSpec, Painting, PaintJob

NOTE = "fallback sketch, not a diffusion image: no painter weights available"
BANNER = "FALLBACK SKETCH - not a diffusion image"
MAX_PANELS = 6
_STOP = frozenset(
    "a an the and or but of to in on at by for with from into onto over under while as is are was were be "
    "been being his her their its our your my he she they it we you i him them this that these those who "
    "whose which what when where why how not no yes has have had does did do so than then there here all "
    "some one two very just about near beside behind because after before still out up down off".split()
)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def key_elements(text: str, limit: int = 10) -> list[str]:
    """The story's most frequent content words, a rough list of what the scene must show."""
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text)]
    counts = Counter(w for w in words if w not in _STOP and len(w) > 2)
    return [w for w, _ in counts.most_common(limit)]


class SketchPainter(Painter):
    def __init__(self, spec: PainterSpec | None = None) -> None:
        self.spec = spec or PainterSpec(default_steps=0, default_guidance_scale=0.0)

    @property
    def ref(self) -> PainterRef:
        return PainterRef(kind="sketch", model="storyboard-sketch/1", is_fallback=True, note=NOTE)

    async def paint(self, job: PaintJob) -> Painting:
        image, shown = self.draw(job)
        return Painting(
            image=image,
            painter=self.ref,
            prompt=job.prompt,
            long_prompt_strategy="none",
            prompt_tokens=len(job.prompt.split()),
            encoded_tokens=shown,
            steps=0,
            guidance_scale=0.0,
        )

    def draw(self, job: PaintJob) -> tuple[Image.Image, int]:
        """The storyboard, and how many words of the story it shows."""
        w, h = job.width, job.height
        rng = random.Random(job.seed)
        image = Image.new("RGB", (w, h), (250, 248, 240))
        draw = ImageDraw.Draw(image)
        size = max(8, min(w, h) // 40)
        font = ImageFont.load_default(size=size)
        band = size * 2 + 4
        draw.rectangle((0, 0, w, band), fill=(180, 30, 30))
        draw.text((4, 2), BANNER, fill="white", font=font)
        footer = "key elements: " + ", ".join(key_elements(job.prompt))
        footer_lines = textwrap.wrap(footer, width=max(10, w // (size * 0.6)))[:3]
        footer_h = (len(footer_lines) + 1) * (size + 2)
        panels = sentences(job.prompt)[:MAX_PANELS]
        cols = 1 if len(panels) == 1 else 2
        rows = -(-len(panels) // cols)
        pw, ph = w // cols, (h - band - footer_h) // max(rows, 1)
        shown = 0
        for i, sentence in enumerate(panels):
            x0, y0 = (i % cols) * pw, band + (i // cols) * ph
            shade = tuple(rng.randint(200, 240) for _ in range(3))
            draw.rectangle(
                (x0 + 3, y0 + 3, x0 + pw - 3, y0 + ph - 3), fill=shade, outline=(60, 60, 60), width=2
            )
            draw.text((x0 + 8, y0 + 6), f"{i + 1}", fill=(120, 20, 20), font=font)
            per_line = max(8, int((pw - 16) / (size * 0.6)))
            lines = textwrap.wrap(sentence, width=per_line, break_on_hyphens=False)[
                : max(1, (ph - size - 16) // (size + 2))
            ]
            shown += sum(len(line.split()) for line in lines)
            for j, line in enumerate(lines):
                draw.text((x0 + 8, y0 + 8 + (j + 1) * (size + 2)), line, fill=(20, 20, 20), font=font)
        for j, line in enumerate(footer_lines):
            draw.text((4, h - footer_h + j * (size + 2) + 4), line, fill=(40, 40, 90), font=font)
        return image, shown
