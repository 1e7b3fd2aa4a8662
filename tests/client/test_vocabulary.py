"""The shared vocabulary: labels round-trip, one rule for stage outcomes, one set of default ports."""

import pytest
from storytelling.api import vocabulary
from storytelling.api.vocabulary import DEFAULT_PORTS, default_address, stage_outcome
from storytelling.client import AsyncEvaluationClient, Client, EvaluationClient, RenderClient, StoryClient
from storytelling.evaluation.settings import EvaluationSettings
from storytelling.orchestrator.settings import OrchestratorSettings
from storytelling.render.settings import RenderSettings
from storytelling.story.service import StorySettings
from storytelling.v1 import common_pb2, pipeline_pb2

P = pipeline_pb2


def test_labels_parse_back_to_their_enum_values() -> None:
    for enum in (vocabulary.Stage, vocabulary.JobState, vocabulary.ItemState, vocabulary.StoryMode):
        for name in vocabulary.choices(enum):
            assert vocabulary.label(enum, vocabulary.parse(enum, name)) == name
    assert vocabulary.parse(vocabulary.StoryMode, "cor-guided") == common_pb2.STORY_MODE_COR_GUIDED
    assert vocabulary.parse(vocabulary.StoryMode, "STORY_MODE_NAIVE") == common_pb2.STORY_MODE_NAIVE
    assert vocabulary.label(vocabulary.Stage, 99) == "unknown(99)"
    with pytest.raises(ValueError, match="choose from naive, cor_guided"):
        vocabulary.parse(vocabulary.StoryMode, "unspecified")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (P.Item(state=P.ITEM_STATE_PENDING), (None, None, None)),
        (P.Item(state=P.ITEM_STATE_RUNNING, stage=P.STAGE_STORY), ("running", None, None)),
        (P.Item(state=P.ITEM_STATE_RUNNING, stage=P.STAGE_RENDER), ("done", "running", None)),
        (P.Item(state=P.ITEM_STATE_FAILED, stage=P.STAGE_RENDER), ("done", "failed", None)),
        (P.Item(state=P.ITEM_STATE_SUCCEEDED, stage=P.STAGE_EVALUATE), ("done", "done", "done")),
        # A cancelled item keeps the stages whose output it has.
        (
            P.Item(state=P.ITEM_STATE_CANCELLED, stage=P.STAGE_RENDER, story=common_pb2.Story(text="s")),
            ("done", None, None),
        ),
    ],
)
def test_stage_outcome(item: P.Item, expected: tuple) -> None:
    assert tuple(stage_outcome(item, stage) for stage in vocabulary.STAGES) == expected


def test_services_and_clients_agree_on_default_ports() -> None:
    settings = {
        "orchestrator": OrchestratorSettings(),
        "story": StorySettings(),
        "render": RenderSettings(),
        "evaluation": EvaluationSettings(),
    }
    assert {name: (s.port, s.metrics_port) for name, s in settings.items()} == {
        name: (ports.grpc, ports.metrics) for name, ports in DEFAULT_PORTS.items()
    }
    assert len({p.grpc for p in DEFAULT_PORTS.values()} | {p.metrics for p in DEFAULT_PORTS.values()}) == 8
    orchestrator = settings["orchestrator"]
    assert [orchestrator.story_address, orchestrator.render_address, orchestrator.evaluation_address] == [
        default_address(name, "127.0.0.1") for name in ("story", "render", "evaluation")
    ]
    clients = {
        "orchestrator": Client,
        "story": StoryClient,
        "render": RenderClient,
        "evaluation": EvaluationClient,
    }
    assert {name: c.default_target for name, c in clients.items()} == {
        name: default_address(name) for name in DEFAULT_PORTS
    }
    assert AsyncEvaluationClient.default_target == EvaluationClient.default_target
