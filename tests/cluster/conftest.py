from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
from tests.engines.vllm import vllm_server  # noqa: F401
