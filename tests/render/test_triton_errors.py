"""How Triton's answers become our errors: whatever a restart or rollout answers must be Unavailable, so the
orchestrator waits for the painter instead of failing the item."""

import pytest
from storytelling.render.painters.triton import _domain_error
from storytelling.runtime.errors import DeadlineExceeded, Internal, InvalidArgument, Unavailable
from tritonclient.utils import InferenceServerException

URL = "127.0.0.1:8001"


@pytest.mark.parametrize(
    ("status", "message", "kind", "text"),
    [
        (
            "StatusCode.INTERNAL",
            "[request id: 3] Server is stopping, scheduler for model has stopped accepting new inference requests",
            Unavailable,
            "triton at 127.0.0.1:8001 has not loaded the model: [request id: 3] Server is stopping",
        ),
        (
            "StatusCode.UNAVAILABLE",
            "Request for unknown model: 'painter' is not found",
            Unavailable,
            "triton at 127.0.0.1:8001 has not loaded the model: Request for unknown model",
        ),
        (
            "StatusCode.INTERNAL",
            "Request for unknown model: 'painter' has no available versions",
            Unavailable,
            "triton at 127.0.0.1:8001 has not loaded the model",
        ),
        ("StatusCode.UNAVAILABLE", "failed to connect", Unavailable, "triton at 127.0.0.1:8001 is unreachable"),
        ("StatusCode.INVALID_ARGUMENT", "WIDTH must be a multiple of 8", InvalidArgument, "triton: WIDTH"),
        ("StatusCode.INTERNAL", "Request timeout expired", DeadlineExceeded, "triton: Request timeout"),
        ("StatusCode.INTERNAL", "CUDA out of memory", Internal, "triton: CUDA out of memory"),
    ],
)
def test_triton_answers_map_to_domain_errors(status, message, kind, text) -> None:
    error = _domain_error(InferenceServerException(message, status=status), URL)
    assert type(error) is kind
    assert str(error.message).startswith(text), error.message
