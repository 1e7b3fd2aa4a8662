"""The gallery page built from a job directory: content, escaping, relative paths, not-run reasons."""

from __future__ import annotations

import json

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from storytelling.api.gallery import FALLBACK_BADGE, write_gallery
from storytelling.api.layout import load_job
from storytelling.v1 import common_pb2, pipeline_pb2

from tests.report.jobdir import HOSTILE_STORY, make_job_dir


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, str]:
    path = write_gallery(make_job_dir(tmp_path))
    return path, path.read_text(encoding="utf-8")


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_layout_round_trips(tmp_path: Path) -> None:
    record = load_job(make_job_dir(tmp_path))
    assert record.job.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert [i.index for i in record.items] == [0, 1, 2]
    assert record.items[0].image.width == 96 and not record.items[0].image.data
    assert record.items[1].image_path.name == "image.jpg"
    assert record.items[2].image is None and record.items[2].evaluation is None
    assert record.summary.diversity.vendi_score == pytest.approx(2.4)


def test_written_atomically_at_the_documented_place(page: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = page
    assert path == tmp_path / "jobs" / "job-123" / "gallery" / "index.html"
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]


def test_text_is_escaped(page: tuple[Path, str]) -> None:
    _, html = page
    assert "<script" not in html
    assert "A boy &lt;script&gt;window.__pwned = 1&lt;/script&gt; &amp; his &quot;mother&quot;" in html
    assert "Cookie &lt;theft&gt; &amp; co" in html
    assert "There is a &lt;b&gt;Christmas&lt;/b&gt; tree." in html
    tags = _tags(html)
    assert [a["src"] for t, a in tags if t == "img"] == [
        "../items/00000/image.png",
        "../items/00001/image.jpg",
    ]
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs)
    assert HOSTILE_STORY not in html


def test_painter_fallback_badge_only_on_fallback_images(page: tuple[Path, str]) -> None:
    _, html = page
    item0, item1, item2 = re.findall(r'<article class="item".*?</article>', html, re.DOTALL)
    assert FALLBACK_BADGE in item0 and "painter: sketch · storyboard" in item0
    assert "no diffusion weights available offline" in item0
    assert FALLBACK_BADGE not in item1 and "painter: triton · sd-turbo" in item1
    assert "no image" in item2 and "Not evaluated." in item2


def test_key_points_are_coloured_by_the_judge(page: tuple[Path, str]) -> None:
    _, html = page
    points = [(a["class"], a["title"]) for t, a in _tags(html) if t == "li"]
    assert points == [
        ("kp kp-yes", "Q: Is there a boy on a stool?\nA: Yes"),
        ("kp kp-no", "Q: Is the sink overflowing?\nA: No"),
        ("kp kp-no kp-control", "Q: Is there a Christmas tree?\nA: no"),
    ]
    assert "judge: yes, P(yes) 0.91" in html and "(from story story-9)" in html


def test_scores_and_not_run_reasons(page: tuple[Path, str]) -> None:
    _, html = page
    item0, item1, _ = re.findall(r'<article class="item".*?</article>', html, re.DOTALL)
    assert "0.520 (judge false-yes rate 0.00)" in item0 and "0.400 (rules/1)" in item0
    assert "4 of 7 dimensions, 42 words, 1 causal links" in item0
    assert "not run: no vision-language judge configured" in item1
    assert "failed: judge timed out after 30 s" in item1
    assert "not run: no result recorded" in item1  # text measures absent
    assert "0.610 (k=2)" in html and "2.40 of 3" in html and "no reference given" in html
    assert "not run: no vision-language model available offline" in html


def test_chart_has_a_row_per_dimension(page: tuple[Path, str]) -> None:
    _, html = page
    svg = re.search(r"<svg.*?</svg>", html, re.DOTALL).group(0)
    bars = {
        a["data-dimension"]: float(a["width"]) for t, a in _tags(svg) if t == "rect" and a["class"] == "bar"
    }
    assert bars == {
        "character role": pytest.approx(0.91 * 260, abs=0.1),
        "event": pytest.approx(0.12 * 260, abs=0.1),
    }
    assert svg.count("no key points") == 5


def test_without_summary_no_set_number_is_made_up(tmp_path: Path) -> None:
    """Set numbers come from the evaluation service's summary only; the gallery never merges items."""
    job_dir = make_job_dir(tmp_path)
    (job_dir / "summary.json").unlink()
    html = write_gallery(job_dir).read_text()
    assert "No set summary" in html
    assert "data-dimension=" not in html and html.count("no key points") == 7


def test_a_false_yes_rate_that_was_not_measured_reads_so(tmp_path: Path) -> None:
    job_dir = make_job_dir(tmp_path)
    summary = json.loads((job_dir / "summary.json").read_text())
    summary.pop("meanFalseYesRate", None)
    (job_dir / "summary.json").write_text(json.dumps(summary))
    html = write_gallery(job_dir).read_text()
    assert "<th>Judge false-yes rate</th><td>not measured</td>" in html


def test_not_a_job_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a job directory"):
        write_gallery(tmp_path)


def test_a_large_job_is_paged_and_a_waiting_job_says_what_for(tmp_path: Path) -> None:
    from storytelling.api.layout import write_item

    from tests.report.jobdir import picture

    job_dir = tmp_path / "big"
    for index in range(5):
        story = common_pb2.Story(id=f"s{index}", text=f"Story number {index}.")
        image = common_pb2.Image(data=picture(index), format=common_pb2.IMAGE_FORMAT_PNG, width=96, height=64)
        write_item(job_dir, index, story=story, image=image)
    job = pipeline_pb2.Job(id="big", state=pipeline_pb2.JOB_STATE_RUNNING, spec=pipeline_pb2.JobSpec(items=5))
    counts = job.stages.add(stage=pipeline_pb2.STAGE_RENDER, waiting=3)
    counts.wait.CopyFrom(pipeline_pb2.ServiceWait(service="render", reason="triton is unreachable"))

    index = write_gallery(job_dir, job, page_items=2)
    pages = sorted(p.name for p in index.parent.iterdir())
    assert pages == ["index.html", "page-2.html", "page-3.html"]
    first, second, last = (index.parent / name for name in pages)
    assert "Story number 1." in first.read_text() and "Story number 2." not in first.read_text()
    assert "<h2>Set</h2>" in first.read_text() and "<h2>Set</h2>" not in second.read_text()
    assert 'href="page-2.html"' in first.read_text() and 'href="index.html"' in second.read_text()
    assert 'href="page-3.html"' in second.read_text() and 'rel="next"' not in last.read_text()
    assert "Story number 4." in last.read_text() and "items 4–4" in last.read_text()
    assert "waiting for render since now: triton is unreachable" in first.read_text()

    write_gallery(job_dir, job, page_items=3)  # fewer pages now: the old last page goes
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.html", "page-2.html"]


def test_cut_short_artifacts_are_taken_as_absent_and_written_again(tmp_path: Path) -> None:
    from storytelling.api.layout import JobFiles

    from tests.report.jobdir import picture

    files = JobFiles(tmp_path / "job", fsync=False)
    story = common_pb2.Story(id="s0", text="A nurse drops a tray of glasses.")
    image = common_pb2.Image(data=picture(0), format=common_pb2.IMAGE_FORMAT_PNG, width=96, height=64)
    files.write_story(0, story)
    files.write_image(0, image)
    assert files.read_story(0) == story and files.read_image(0, with_data=True) == image

    # What a crash in the middle of a write leaves: a story cut short, an empty image.
    story_file = files.story_path(0)
    story_file.write_bytes(story_file.read_bytes()[:20])
    files.image_path(0, image.format).write_bytes(b"")
    assert files.read_story(0) is None and files.read_image(0, with_data=False) is None
    files.write_story(0, story)  # the stage runs again and replaces them
    files.write_image(0, image)
    assert files.read_story(0) == story and files.read_image(0, with_data=True) == image
    assert not list(files.directory.rglob("*.tmp"))
