"""The same painter code on a CUDA machine: fp16 on the GPU chosen at initialize, and Triton's KIND_AUTO
instance placed on the GPU by the unchanged deploy config. Skipped where torch sees no CUDA device."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job
from storytelling.render.painters.base import PaintJob
from storytelling.render.tiny import ensure_tiny_pipeline
from storytelling.stack.triton import triton_server

from tests.render.stories import LONG, SHORT

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_engine_paints_in_fp16_on_cuda():
    engine = DiffusionEngine(EngineConfig(model=str(ensure_tiny_pipeline()), steps=4, width=256, height=256))
    assert engine.device.type == "cuda" and engine.dtype == torch.float16
    a, long, b = engine.generate([Job(SHORT, seed=1), Job(LONG, seed=2), Job(SHORT, seed=1)])
    assert a.metadata["batch_size"] == 2 and np.array_equal(a.image, b.image)
    assert long.metadata["strategy"] == "chunked" and long.metadata["encoded_tokens"] > 77
    assert engine.generate([Job(SHORT, seed=1)])[0].image.std() > 0  # fp16 did not collapse to NaN/black


def test_triton_places_the_unchanged_config_on_the_gpu(tmp_path):
    import tritonclient.grpc as grpcclient
    from storytelling.render.painters.triton import infer_inputs

    params = {"model": str(ensure_tiny_pipeline()), "steps": "4", "width": "256", "height": "256"}
    with triton_server(["painter"], {"painter": params}, workdir=tmp_path) as server:
        assert "GPU device 0" in server.log_tail(200_000)
        client = grpcclient.InferenceServerClient(server.grpc_url)
        job = PaintJob(SHORT, "", 256, 256, 4, 5.0, seed=3)

        def paint(_):
            return client.infer("painter", infer_inputs(job))

        first = paint(0)
        meta = first.as_numpy("METADATA").reshape(-1)[0].decode()
        assert '"device": "cuda:0"' in meta and '"dtype": "float16"' in meta
        rates = {}
        for concurrency in (1, 8):
            before = client.get_inference_statistics("painter").model_stats[0]
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                results = list(pool.map(paint, range(32)))
            rates[concurrency] = 32 / (time.perf_counter() - start)
            after = client.get_inference_statistics("painter").model_stats[0]
            batch = (after.inference_count - before.inference_count) / (
                after.execution_count - before.execution_count
            )
            print(
                f"GPU triton painter 256x256x4 steps: concurrency {concurrency}: "
                f"{rates[concurrency]:.1f} images/s, average batch {batch:.2f}"
            )
        assert all(r.as_numpy("IMAGE").shape == (1, 256, 256, 3) for r in results)
        assert batch > 1
        client.close()
