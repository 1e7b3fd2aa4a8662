"""The container images' build files, checked against the tree: a moved file breaks the build here.

No container engine runs on our machines (the docker client is installed, no daemon; ENGINEERING.md), so
the images are not built here: the Dockerfiles are parsed, and every file they copy, every base image,
stage, user and entrypoint is checked against the repository and the Helm chart that runs them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster.chart import ROOT, container, render, workloads

DOCKER = ROOT / "deploy" / "docker"
IMAGES = {"services": DOCKER / "services.Dockerfile", "painter": DOCKER / "painter.Dockerfile"}


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    joined, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def stages(path: Path) -> list[Stage]:
    args: dict[str, str] = {}
    result: list[Stage] = []
    for keyword, rest in instructions(path):
        if keyword == "ARG" and not result:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
            result.append(Stage(image, name.strip()))
        elif result:
            result[-1].instructions.append((keyword, rest))
    return result


def copies(stage: Stage) -> list[tuple[list[str], str, str]]:
    """(sources, destination, --from stage or '') of each COPY/ADD."""
    found = []
    for keyword, rest in stage.instructions:
        if keyword not in ("COPY", "ADD"):
            continue
        words = rest.split()
        origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), "")
        paths = [w for w in words if not w.startswith("--")]
        found.append((paths[:-1], paths[-1], origin))
    return found


def ignored(relative: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    parts = Path(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(c, p.removeprefix("**/")) or fnmatch.fnmatch(c, p)
        for c in candidates
        for p in patterns
    )


def label(stage: Stage, key: str) -> str:
    text = " ".join(rest for keyword, rest in stage.instructions if keyword == "LABEL")
    match = re.search(rf'{re.escape(key)}="([^"]*)"', text)
    assert match, f"no LABEL {key}"
    return match.group(1)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_images_are_multi_stage_from_pinned_bases(image):
    built = stages(IMAGES[image])
    assert len(built) >= 2, "multi-stage"
    names = {s.name for s in built if s.name}
    for stage in built:
        if stage.image in names:
            continue
        assert re.search(r"(:[^:/]*\d[^:/]*|@sha256:[0-9a-f]{64})$", stage.image), (
            f"unpinned base {stage.image}"
        )
        assert not stage.image.endswith(":latest")


def test_the_painter_is_built_from_the_official_triton_container():
    final = stages(IMAGES["painter"])[-1]
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", final.image)
    requirements = (ROOT / "requirements" / "painter.txt").read_text()
    assert re.search(r"^numpy>=[\d.]+,<2$", requirements, re.M), "Triton's Python backend needs numpy < 2"
    assert re.search(r"^diffusers==", requirements, re.M)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_copied_file_is_in_the_tree_and_in_the_build_context(image):
    built = stages(IMAGES[image])
    for index, stage in enumerate(built):
        earlier = {s.name for s in built[:index] if s.name}
        for sources, _, origin in copies(stage):
            if origin:
                assert origin in earlier, f"COPY --from={origin}: no earlier stage of that name"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"{image}: COPY {source}: not in the repository"
                assert not ignored(source), f"{image}: COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_final_stage_runs_as_an_unprivileged_user(image):
    users = [rest for keyword, rest in stages(IMAGES[image])[-1].instructions if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0


def module_exists(module: str) -> bool:
    parts = module.split(".")
    return any((root / Path(*parts) / "__main__.py").is_file() or (root / Path(*parts[:-1]) / f"{parts[-1]}.py").is_file()
               for root in (ROOT / "services").glob("*"))  # fmt: skip


def test_the_services_image_entrypoints_exist_and_the_chart_uses_them():
    final = stages(IMAGES["services"])[-1]
    entrypoints = label(final, "dev.storytelling.entrypoints").split()
    assert sorted(entrypoints) == sorted(
        f"storytelling.{s}" for s in ("orchestrator", "story", "render", "evaluation")
    )
    for module in entrypoints:
        assert module_exists(module), module
    commands = dict(instructions(IMAGES["services"]))
    assert commands["ENTRYPOINT"] == '["python", "-m"]'
    used = set()
    for values in ({}, {"profile": "offline"}):
        for component, workload in workloads(render(values)).items():
            if container(workload)["image"].startswith("ghcr.io/storytelling-painter/services:"):
                used.update(container(workload)["args"])
    assert used == set(entrypoints)


def test_the_painter_image_holds_what_the_chart_runs_in_it():
    final = stages(IMAGES["painter"])[-1]
    entrypoints = label(final, "dev.storytelling.entrypoints").split()
    for module in entrypoints[1:]:
        assert module_exists(module), module
    destinations = {destination: sources for sources, destination, _ in copies(final)}
    assert destinations["/opt/storytelling/model_repository"] == ["deploy/triton/model_repository"]
    painter = workloads(render())["painter"]["spec"]["template"]["spec"]
    modules = {c["command"][2] for c in painter["initContainers"]}
    assert modules <= set(entrypoints)
    assert painter["containers"][0]["command"] == [entrypoints[0]]
    # The init container that fetches vLLM's weights runs in the services image, which has the module too.
    assert module_exists("storytelling.stack.fetch")


def make_images(**extra: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **extra}
    return subprocess.run(
        ["make", "--no-print-directory", "images"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_make_images_builds_both_images_with_the_engine_there_is():
    dry = make_images(DRY_RUN="1", ENGINE="podman", REGISTRY="registry.example/sp", TAG="1.2.3")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-2:] == [
        "podman build -f deploy/docker/services.Dockerfile -t registry.example/sp/services:1.2.3 .",
        "podman build -f deploy/docker/painter.Dockerfile -t registry.example/sp/painter:1.2.3 .",
    ]
    buildah = make_images(DRY_RUN="1", ENGINE="buildah")
    assert (
        "buildah bud --layers -f deploy/docker/painter.Dockerfile -t ghcr.io/storytelling-painter/painter:0.1.0 ."
        in buildah.stdout
    )


def test_make_images_says_what_is_missing_without_an_engine(tmp_path):
    """Here the docker client exists but no daemon runs; podman and buildah are absent (PATH without them)."""
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "podman").exists()
    )
    result = make_images(PATH=path)
    assert result.returncode != 0
    assert "no usable container engine" in result.stderr
