"""Job seeds drawn for jobs that come without one."""

from storytelling.orchestrator.seeds import random_seed
from storytelling.v1 import pipeline_pb2


def test_random_job_seeds_use_63_bits_and_fit_the_int64_seed_field():
    seeds = [random_seed() for _ in range(256)]
    assert all(0 <= seed < 2**63 for seed in seeds)  # a 64-bit draw would overflow int64 half the time
    assert max(seeds) >= 2**62  # the whole range is used (all 256 below 2^62: probability 2^-256)
    assert len(set(seeds)) == 256
    assert pipeline_pb2.JobSpec(seed=max(seeds)).seed == max(seeds)
