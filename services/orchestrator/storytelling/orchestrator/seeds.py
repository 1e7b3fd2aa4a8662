"""Deterministic per-item seeds, so that a rerun of a job with the same seed reproduces every item."""

import hashlib
import secrets

_INT63 = (1 << 63) - 1


def derive_seed(job_seed: int, index: int, stage: str) -> int:
    """Seed of `stage` for item `index`: a hash of (job seed, index, stage), independent across stages."""
    digest = hashlib.blake2b(f"{job_seed}:{index}:{stage}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _INT63


def random_seed() -> int:
    return secrets.randbits(63)
