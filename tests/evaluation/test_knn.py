"""Blocked exact search and Vendi score against independent brute-force references."""

import numpy as np
import pytest
import torch

from storytelling.evaluation.diversity import clip_k, diversity
from storytelling.evaluation.knn import knn, normalize, vendi_score


def brute_force_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 distance matrix, self excluded, fully sorted."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = 1.0 - unit.astype(np.float64) @ unit.T.astype(np.float64)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


def brute_force_vendi(x: np.ndarray) -> float:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    kernel = unit.astype(np.float64) @ unit.T.astype(np.float64) / len(x)
    lam = np.clip(np.linalg.eigvalsh(kernel), 0, None)
    lam = lam[lam > 1e-15]
    return float(np.exp(-(lam * np.log(lam)).sum()))


@pytest.mark.parametrize("tile_bytes", [4 * 3 * 5, 4 * 64 * 64, 1 << 24])
def test_blocked_search_matches_brute_force(tile_bytes: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((301, 24)).astype(np.float32)
    order, dist = brute_force_neighbours(x, 7)
    got = knn(normalize(x), 7, tile_bytes=tile_bytes)
    np.testing.assert_allclose(1.0 - got.similarities, dist, atol=1e-5)
    assert (got.indices != np.arange(301)[:, None]).all()
    # Indices agree wherever distances are not tied.
    assert (got.indices == order).mean() > 0.99


def test_diversity_matches_brute_force_on_random_embeddings() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 384)).astype(np.float32)
    report = diversity(x, k=10, tile_bytes=1 << 16)
    _, dist = brute_force_neighbours(x, 10)
    np.testing.assert_allclose(report.per_story, dist.mean(axis=1), atol=1e-5)
    assert report.diversity == pytest.approx(dist.mean(), abs=1e-5)
    assert report.k == 10 and report.search == "exact"


def test_novelty_is_distance_to_nearest_reference() -> None:
    rng = np.random.default_rng(2)
    x, ref = rng.standard_normal((50, 16)), rng.standard_normal((7, 16))
    report = diversity(x, k=3, reference=ref)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref_unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    expected = (1.0 - unit @ ref_unit.T).min(axis=1)
    np.testing.assert_allclose(report.per_story_novelty, expected, atol=1e-5)
    assert report.novelty == pytest.approx(expected.mean(), abs=1e-5)
    # A reference set that contains a story makes that story not novel.
    assert diversity(x, k=3, reference=x[:1]).per_story_novelty[0] == pytest.approx(0.0, abs=1e-6)


def test_no_reference_means_no_novelty() -> None:
    report = diversity(np.eye(3), k=1, reference=np.empty((0, 3)))
    assert report.novelty is None and report.per_story_novelty is None


@pytest.mark.parametrize("n", [50, 400])  # n <= d uses the n x n kernel, n > d the d x d trick
def test_vendi_matches_eigenvalues_of_the_kernel(n: int) -> None:
    x = np.random.default_rng(3).standard_normal((n, 64))
    assert vendi_score(x, block_rows=37) == pytest.approx(brute_force_vendi(x), rel=1e-6)


def test_vendi_bounds() -> None:
    assert vendi_score(np.tile([[1.0, 2.0, 3.0]], (10, 1))) == pytest.approx(1.0)
    assert vendi_score(np.eye(8)) == pytest.approx(8.0)


def test_normalize_scales_every_row_to_unit_length_as_float32() -> None:
    # A row shorter than 1 is scaled up, a zero row stays zero (no division by zero).
    got = normalize(np.array([[0.3, 0.4], [0.0, 0.0], [6.0, 8.0]]))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0], [0.6, 0.8]], rtol=1e-6)


def test_vendi_of_a_set_with_an_all_zero_row_counts_the_others() -> None:
    # An all-zero embedding has no direction: two orthogonal stories next to it are 2 distinct ones,
    # with n > d (3 rows, 2 dimensions) as with n <= d.
    assert vendi_score(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx(2.0)
    # Blocks of 2 rows: each row is counted once however the rows are cut.
    assert vendi_score(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), block_rows=2) == pytest.approx(2.0)
    assert vendi_score(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])) == pytest.approx(1.0)
    assert vendi_score(np.zeros((3, 4))) == 0.0


def test_knn_results_are_float32_similarities_and_int64_indices() -> None:
    got = knn(np.eye(3, dtype=np.float32), 2)
    assert got.similarities.dtype == np.float32 and got.indices.dtype == np.int64
    np.testing.assert_array_equal(got.similarities, np.zeros((3, 2), dtype=np.float32))


def test_knn_takes_float64_rows_for_corpus_and_queries() -> None:
    corpus = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # float64, unit rows
    got = knn(corpus, 1, queries=np.array([[0.8, 0.6], [0.0, 1.0]]))
    np.testing.assert_array_equal(got.indices, [[2], [1]])
    np.testing.assert_allclose(got.similarities, [[0.96], [1.0]], rtol=1e-6)
    itself = knn(corpus, 1)
    np.testing.assert_array_equal(itself.indices, [[2], [2], [1]])
    np.testing.assert_allclose(itself.similarities, [[0.6], [0.8], [0.8]], rtol=1e-6)


@pytest.mark.parametrize(
    "rows, queries, k, message",
    [
        (4, None, 4, r"k must be in \[1, 3\], got 4"),  # a row is never its own neighbour
        (4, None, 0, r"k must be in \[1, 3\], got 0"),
        (4, 2, 5, r"k must be in \[1, 4\], got 5"),  # other queries may find every corpus row
    ],
)
def test_knn_rejects_k_beyond_the_rows_it_may_return(
    rows: int, queries: int | None, k: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        knn(np.eye(rows), k, queries=None if queries is None else np.ones((queries, rows)))


def test_knn_returns_every_row_it_may() -> None:
    assert knn(np.eye(4), 3).indices.shape == (4, 3)
    np.testing.assert_array_equal(np.sort(knn(np.eye(4), 3).indices[0]), [1, 2, 3])
    assert knn(np.eye(4), 4, queries=np.ones((2, 4))).indices.shape == (2, 4)


def test_k_is_clipped_to_the_other_stories() -> None:
    x = np.eye(4)
    assert clip_k(100, 4) == 3
    report = diversity(x, k=100)
    assert report.k == 3
    np.testing.assert_allclose(report.per_story, 1.0)  # orthogonal: every distance is 1


def test_two_stories_use_each_other() -> None:
    report = diversity(np.array([[1.0, 0.0], [0.0, 1.0]]), k=5)
    assert report.k == 1 and report.diversity == pytest.approx(1.0)
    assert report.vendi_score == pytest.approx(2.0)
    assert report.search == "exact" and report.recall is None and report.recall_sample == 0


def test_distances_stay_in_0_2_when_float32_similarities_overshoot() -> None:
    # (1, 1, 4) normalized in float32 has a self-similarity of 1.0000001: distance 0 and 2, not beyond.
    report = diversity(np.array([[1.0, 1.0, 4.0], [1.0, 1.0, 4.0], [-1.0, -1.0, -4.0]]), k=2)
    np.testing.assert_array_equal(report.per_story, [1.0, 1.0, 2.0])
    assert report.diversity == pytest.approx(4 / 3)


def test_a_set_above_the_threshold_is_searched_approximately_with_its_recall_measured() -> None:
    x = np.random.default_rng(5).standard_normal((200, 8))
    exact = diversity(x, 3)
    # 200 rows make 25 cells (n // 8); probing all 25 finds exactly what the exact search finds.
    approx = diversity(x, 3, approximate_above=199, nprobe=25, recall_sample=50, tile_bytes=4 * 16 * 16)
    assert (approx.search, approx.recall, approx.recall_sample) == ("ivf(nlist=25,nprobe=25)", 1.0, 50)
    np.testing.assert_allclose(approx.per_story, exact.per_story, atol=1e-6)
    assert approx.k == 3 and approx.vendi_score == pytest.approx(exact.vendi_score)
    at_threshold = diversity(x, 3, approximate_above=200, device="cpu")
    assert (at_threshold.search, at_threshold.recall, at_threshold.recall_sample) == ("exact", None, 0)


def test_exact_duplicates_are_neighbours_at_distance_zero() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    report = diversity(x, k=1)
    np.testing.assert_allclose(report.per_story, [0.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    "k, n, message",
    [
        (0, 5, "k must be >= 1, got 0"),
        (-1, 5, "k must be >= 1, got -1"),
        (1, 1, "diversity needs at least 2 stories, got 1"),
        (3, 0, "diversity needs at least 2 stories, got 0"),
    ],
)
def test_invalid_k_or_set_size(k: int, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        diversity(np.ones((n, 4)), k=k)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_blocked_search_on_cuda_matches_brute_force() -> None:
    x = np.random.default_rng(4).standard_normal((3000, 384)).astype(np.float32)
    order, dist = brute_force_neighbours(x, 5)
    got = knn(normalize(x), 5, tile_bytes=4 * 700 * 900, device="cuda")
    np.testing.assert_allclose(1.0 - got.similarities, dist, atol=1e-4)
    assert (got.indices == order).mean() > 0.99
    report = diversity(x, k=5, device="cuda")
    assert report.diversity == pytest.approx(dist.mean(), abs=1e-4)
