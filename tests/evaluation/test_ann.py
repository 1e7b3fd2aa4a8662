"""Approximate search for very large sets: recall measured against exact search and reported."""

import numpy as np
import pytest

from storytelling.evaluation.ann import approximate_self_knn, recall
from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.diversity import diversity
from storytelling.evaluation.knn import Neighbours, knn, normalize
from tests.evaluation.test_diversity_sets import DISTINCT, PARAPHRASES


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    return normalize(centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, 64)).astype(np.float32))


def test_recall_counts_the_share_of_true_neighbours_found() -> None:
    x = clustered(400)
    exact = knn(x, 3)
    rows = np.arange(400)
    assert recall(x, exact, rows) == pytest.approx(1.0)
    # Replace every row's nearest neighbour by its farthest row: a third of the neighbours are wrong.
    far = (x @ x.T).argmin(axis=1)
    wrong = Neighbours(
        indices=np.column_stack([far, exact.indices[:, 1:]]),
        similarities=np.column_stack([(x * x[far]).sum(axis=1), exact.similarities[:, 1:]]),
    )
    assert recall(x, wrong, rows) == pytest.approx(2 / 3, abs=0.01)


def test_approximate_diversity_reports_its_index_and_measured_recall() -> None:
    x = clustered(6000)
    exact = diversity(x, 5)
    approx = diversity(x, 5, approximate_above=5000)
    assert exact.search == "exact" and exact.recall is None
    assert approx.search.startswith("ivf(nlist=") and approx.recall_sample == 1000
    assert 0.95 <= approx.recall <= 1.0
    assert approx.diversity == pytest.approx(exact.diversity, abs=0.01)
    assert diversity(x, 5, approximate_above=10_000).search == "exact"  # below the threshold


def test_scanning_every_cell_finds_the_exact_neighbours() -> None:
    x = clustered(2000)
    exact = knn(x, 5)
    found = approximate_self_knn(x, 5, nprobe=10_000, recall_sample=100)  # nprobe clipped to nlist
    assert found.description == "ivf(nlist=88,nprobe=88)"
    np.testing.assert_allclose(found.neighbours.similarities, exact.similarities, atol=1e-5)
    assert found.recall == 1.0


def test_few_probed_cells_miss_neighbours_and_the_recall_says_so() -> None:
    x = normalize(np.random.default_rng(3).standard_normal((3000, 32)).astype(np.float32))  # no clusters
    found = approximate_self_knn(x, 5, nprobe=1, recall_sample=3000)
    exact = knn(x, 5)
    share = (found.neighbours.similarities >= exact.similarities[:, -1:] - 1e-5).mean()
    assert found.recall == pytest.approx(share) and found.recall < 0.9


def test_rows_without_k_others_in_their_cells_are_padded() -> None:
    x = clustered(16)  # 2 cells of about 8 rows, one probed: fewer than 10 others
    found = approximate_self_knn(x, 10, nprobe=1, recall_sample=16)
    padded = found.neighbours.indices == -1
    assert padded.any() and np.isneginf(found.neighbours.similarities[padded]).all()
    assert not (found.neighbours.indices == np.arange(16)[:, None]).any()


def test_the_self_search_never_returns_a_row_as_its_own_neighbour() -> None:
    x = clustered(3000)
    found = approximate_self_knn(x, 4, recall_sample=200)
    assert not (found.neighbours.indices == np.arange(3000)[:, None]).any()
    assert found.recall_sample == 200


async def test_the_service_reports_search_and_recall(embedder) -> None:
    from storytelling.evaluation import convert

    core = Evaluation(embedder, approximate_above=4)
    outcome = await core.diversity(PARAPHRASES + DISTINCT[1:], k=2)
    result = convert.diversity(outcome, embedder.name)
    assert result.search.startswith("ivf(nlist=") and result.HasField("recall") and result.recall_sample == 7
