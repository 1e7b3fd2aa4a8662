from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
