"""DiffusionEngine (shared by the Triton model and the embedded painter) on the tiny random pipeline."""

import numpy as np
import pytest
from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job, LoraAdapter

from tests.render.stories import LONG, LONG_OTHER_ENDING, SHORT


@pytest.fixture(scope="module")
def engine(tiny_painter) -> DiffusionEngine:
    return DiffusionEngine(
        EngineConfig(model=str(tiny_painter), steps=2, guidance_scale=5.0, width=64, height=64)
    )


def test_loads_through_from_pretrained_and_is_labelled_random(engine, tiny_painter):
    assert type(engine.pipe).__name__ == "StableDiffusionPipeline"
    assert engine.random_weights
    [out] = engine.generate([Job(prompt=SHORT, seed=1)])
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.metadata["random_weights"] is True
    assert out.metadata["model"] == str(tiny_painter)


def test_same_seed_same_image_other_seed_other_image(engine):
    a, b, c = (engine.generate([Job(prompt=SHORT, seed=s)])[0].image for s in (7, 7, 8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_long_prompt_ending_changes_the_image(engine):
    a, b = engine.generate([Job(prompt=LONG, seed=3), Job(prompt=LONG_OTHER_ENDING, seed=3)])
    assert a.metadata["strategy"] == "chunked"
    assert a.metadata["encoded_tokens"] == a.metadata["prompt_tokens"] > 77
    assert not np.array_equal(a.image, b.image)


def test_compatible_jobs_share_one_call_and_keep_their_own_seed(engine):
    steps: list[tuple[list[int], int, int]] = []
    jobs = [
        Job(prompt=SHORT, seed=1),
        Job(prompt="a harbour at dawn", seed=2),
        Job(prompt=SHORT, seed=1, steps=3),
    ]
    batched = engine.generate(jobs, lambda idx, step, total: steps.append((idx, step, total)))
    assert [o.metadata["batch_size"] for o in batched] == [2, 2, 1]
    assert steps == [([0, 1], 1, 2), ([0, 1], 2, 2), ([2], 1, 3), ([2], 2, 3), ([2], 3, 3)]
    alone = engine.generate([jobs[0]])[0].image
    assert np.abs(alone.astype(int) - batched[0].image.astype(int)).max() <= 1  # batch mates do not matter


def test_on_step_returning_true_stops_the_batch(engine):
    seen: list[int] = []
    [out] = engine.generate(
        [Job(prompt=SHORT, seed=1, steps=5)], lambda idx, step, total: seen.append(step) or True
    )
    assert seen == [1]  # the remaining four steps were skipped
    assert out.image.shape == (64, 64, 3)


# The bottom-right 3x3 pixels (blue channel) of the tiny pipeline's image for a fixed prompt and seed, on
# CPU in float32; recorded once, as diffusers' own tests pin an output slice. A silent numerical change
# (a scheduler, the chunked prompt encoder, a diffusers or torch upgrade that alters the results) moves
# them by more than float noise.
PINNED_SLICE = [[122, 134, 148], [123, 135, 144], [128, 121, 136]]


def test_a_slice_of_the_output_is_pinned(tiny_painter):
    engine = DiffusionEngine(
        EngineConfig(model=str(tiny_painter), steps=2, guidance_scale=5.0, width=64, height=64, device="cpu")
    )
    prompt = "A boy on a tipping stool steals cookies while his mother dries a plate."
    [out] = engine.generate([Job(prompt=prompt, seed=0)])
    assert out.image.std() > 10  # a slice of a flat image would pin nothing
    np.testing.assert_allclose(out.image[-3:, -3:, -1].astype(int), PINNED_SLICE, atol=2)


def test_lora_adapters_are_fused_into_the_pipeline_at_load(tiny_painter, tmp_path):
    """A painter LoRA (as a profile names it) changes the picture, at its scale, and leaves no adapter
    layers behind: fused weights cost nothing per step."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(tiny_painter)
    torch.manual_seed(0)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=targets))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(tmp_path, unet_lora_layers=layers, safe_serialization=True)

    def paint(*lora: LoraAdapter) -> np.ndarray:
        config = EngineConfig(model=str(tiny_painter), steps=2, width=64, height=64, device="cpu", lora=lora)
        engine = DiffusionEngine(config)
        assert not [name for name, _ in engine.pipe.unet.named_modules() if "lora" in name]
        return engine.generate([Job(prompt=SHORT, seed=1)])[0].image.astype(int)

    base, full, half = (
        paint(),
        paint(LoraAdapter("style", str(tmp_path))),
        paint(LoraAdapter("s", str(tmp_path), 0.5)),
    )
    assert np.abs(full - base).mean() > 1.0
    assert 0 < np.abs(half - base).mean() < np.abs(full - base).mean()
    with pytest.raises(ValueError, match=r"^lora 'missing' \("):
        paint(LoraAdapter("missing", str(tmp_path / "absent")))
