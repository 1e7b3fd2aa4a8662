"""`storytelling evaluate` against the real EvaluationService process (embedder and NLP models load)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from storytelling.runtime.testing import service_process

from tests.client.test_cli import _research_folder, storytelling


@pytest.mark.slow
def test_evaluate_a_research_folder_with_the_real_service(tmp_path: Path) -> None:
    folder = _research_folder(tmp_path)
    with service_process("storytelling.evaluation", ready_timeout=300) as proc:
        result = storytelling(
            "evaluate", str(folder), "--evaluation-address", proc.address, "--timeout", "300", timeout=300
        )
    assert result.returncode == 0, result.stderr
    assert "skipping 1 stories without an image (0003)" in result.stderr
    lines = result.stdout.splitlines()
    for story_id in ("0001", "0002"):
        line = next(line for line in lines if line.startswith(f"{story_id}: "))
        assert re.search(r"text \d/7 dimensions", line), line
    summary = next(line for line in lines if line.startswith("set of 2, diversity "))
    diversity = float(summary.split()[4])
    assert 0.0 < diversity <= 2.0
    page = (folder / "evaluation" / "gallery" / "index.html").read_text()
    assert "tipping stool" in page and "KNN diversity" in page
