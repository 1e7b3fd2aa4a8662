"""The gallery in headless Chromium from file:// (no server): it renders, images load, no console errors.

Needs the Debian packages `chromium` and `chromium-driver` and the Python package playwright (which
drives the system Chromium; it never downloads a browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from storytelling.api.gallery import FALLBACK_BADGE, write_gallery

from tests.report.jobdir import make_job_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
]

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(
        "chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )


def test_gallery_renders_with_every_image_and_no_errors(tmp_path: Path) -> None:
    page_path = write_gallery(make_job_dir(tmp_path))
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(page_path.as_uri(), wait_until="load")

            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])"
            )
            assert images == [["../items/00000/image.png", True, 96], ["../items/00001/image.jpg", True, 96]]
            assert page.title() == "Cookie <theft> & co — StorytellingPainter"
            assert page.locator("article.item").count() == 3
            badge = page.locator(".badge-fallback")
            assert badge.count() == 1 and badge.is_visible() and badge.inner_text() == FALLBACK_BADGE
            story = page.locator("#item-00000 .story").inner_text()
            assert story.startswith("A boy <script>window.__pwned = 1</script>")
            assert page.evaluate("window.__pwned") is None
            assert page.locator("svg.chart rect.bar").count() == 2
            assert page.locator("svg.chart").bounding_box()["width"] > 300
            colours = page.eval_on_selector_all(
                "li.kp", "els => els.map(e => getComputedStyle(e).backgroundColor)"
            )
            assert colours[0] != colours[1] != colours[2]
            page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
