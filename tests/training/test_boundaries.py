"""The services never import the training stack: TRL, datasets and the training package stay out of them."""

import subprocess
import sys

SERVICES = [
    "storytelling.story.service",
    "storytelling.evaluation.service",
    "storytelling.render.service",
    "storytelling.orchestrator.service",
    "storytelling.llm.embedded",
]


def test_services_do_not_import_training_libraries():
    probe = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in SERVICES)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trl', 'datasets') "
        "or m.startswith('storytelling.training')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
