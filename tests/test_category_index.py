"""Category math in index form (padded ids) equals the multi-hot form: diversity loss and its ideal, the metrics,
MMR; on ml-tiny's genres and on random catalogues (repeated ids, items without categories)."""
import math
import os

import pytest
import torch

from conftest import TEST_DATA
from recbole_paragon.baselines.mmr import mmr_rerank
from recbole_paragon.metrics import alpha_dcg_at_k, category_coverage_at_k, ideal_alpha_dcg as metric_ideal, ild_at_k
from recbole_paragon.objectives.category_index import (dense_to_ids, distinct_category_ids, ideal_alpha_dcg_ids,
                                                       row_local_ids, shares_category)
from recbole_paragon.objectives.diversity import ideal_alpha_dcg, soft_alpha_dcg, soft_alpha_dcg_ids
from recbole_paragon.objectives.side_information import multi_hot


def ml_tiny_categories() -> torch.Tensor:
    """Padded genre ids ``[n_items, c]`` of ml-tiny's items (row = line of the .item file + 1, row 0 = padding)."""
    vocabulary, rows = {}, [[]]
    with open(os.path.join(TEST_DATA, "ml-tiny", "ml-tiny.item"), encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            genres = line.rstrip("\n").split("\t")[1].split()
            rows.append([vocabulary.setdefault(g, len(vocabulary) + 1) for g in genres])
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows])


def random_categories(n_items: int, n_categories: int, width: int, seed: int) -> torch.Tensor:
    """Random padded ids with repeats, padding inside rows and some items without any category."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, n_categories + 1, (n_items, width), generator=generator)
    ids[torch.rand(n_items, width, generator=generator) < 0.4] = 0
    ids[0] = 0
    return ids


CATALOGUES = {"ml-tiny": ml_tiny_categories, "random": lambda: random_categories(300, 40, 5, 0),
              "wide": lambda: random_categories(500, 900, 3, 1)}


def hot(ids: torch.Tensor) -> torch.Tensor:
    return multi_hot(ids, int(ids.max()) + 1)


@pytest.fixture(params=sorted(CATALOGUES))
def catalogue(request):
    return CATALOGUES[request.param]()


# ---------------------------------------------------------------- helpers


def test_distinct_ids_drop_repeats_and_trim():
    ids = torch.tensor([[3, 3, 0, 1], [0, 0, 0, 0], [2, 0, 2, 2]])
    assert distinct_category_ids(ids).tolist() == [[3, 1], [0, 0], [2, 0]]
    assert distinct_category_ids(torch.tensor([0, 2, 1])).tolist() == [[0], [2], [1]]


def test_dense_to_ids_and_back():
    dense = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert dense_to_ids(dense).tolist() == [[3, 2], [0, 0], [1, 0]]
    with pytest.raises(ValueError, match="0 or 1"):
        dense_to_ids(torch.tensor([[0.5, 1.0]]))


def test_row_local_ids_renumber_wide_ids_per_row_and_keep_narrow_ones():
    local, size = row_local_ids(torch.tensor([[[7, 0], [3, 7]], [[0, 0], [9, 0]]]))
    assert local.tolist() == [[[2, 0], [1, 2]], [[0, 0], [1, 0]]] and size == 3
    narrow = torch.tensor([[[2, 0], [3, 2]], [[0, 0], [1, 0]]])  # ids up to 3 <= 4 slots per row
    local, size = row_local_ids(narrow)
    assert torch.equal(local, narrow) and size == 4


def test_shares_category_matches_multi_hot(catalogue):
    items = torch.randint(0, len(catalogue), (6, 12), generator=torch.Generator().manual_seed(3))
    ids = distinct_category_ids(catalogue)[items]
    share = shares_category(ids)
    expected = torch.zeros_like(share)
    for b, i, k, j in torch.cartesian_prod(*(torch.arange(n) for n in share.shape)).tolist():
        category = int(ids[b, i, k])
        expected[b, i, k, j] = category > 0 and category in ids[b, j].tolist()
    assert torch.equal(share, expected)


# ---------------------------------------------------------------- diversity loss


@pytest.mark.parametrize("alpha, tau, k", [(0.5, 0.1, 10), (0.3, 0.5, 5), (0.8, 0.05, 20)])
def test_soft_alpha_dcg_index_form_equals_multi_hot_form(catalogue, alpha, tau, k):
    generator = torch.Generator().manual_seed(1)
    items = torch.randint(1, len(catalogue), (16, 30), generator=generator)
    dense_scores = torch.randn(16, 30, generator=generator, requires_grad=True)
    index_scores = dense_scores.detach().clone().requires_grad_(True)
    dense = soft_alpha_dcg(dense_scores, hot(catalogue)[items], k, alpha, tau)
    index = soft_alpha_dcg_ids(index_scores, distinct_category_ids(catalogue)[items], k, alpha, tau)
    torch.testing.assert_close(index, dense, rtol=1e-5, atol=1e-6)
    dense.sum().backward()
    index.sum().backward()
    torch.testing.assert_close(index_scores.grad, dense_scores.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha, k", [(0.5, 10), (0.3, 4), (0.9, 30)])
def test_greedy_ideal_index_form_equals_multi_hot_form(catalogue, alpha, k):
    items = torch.randint(0, len(catalogue), (32, 50), generator=torch.Generator().manual_seed(2))
    dense = ideal_alpha_dcg(hot(catalogue)[items], k, alpha)
    torch.testing.assert_close(ideal_alpha_dcg_ids(distinct_category_ids(catalogue)[items], k, alpha), dense)


# ---------------------------------------------------------------- metrics, against today's multi-hot arithmetic


def dense_alpha_dcg(topk, categories, k, alpha):
    y = hot(categories)[topk[:, :k]]
    seen = torch.cumsum(y, 1) - y  # items ranked above sharing each category
    gains = (y * (1 - alpha) ** seen).sum(-1)
    return (gains / torch.log2(torch.arange(2, k + 2).float())).sum(1)


def dense_ild(topk, categories, k):
    y = hot(categories)[topk[:, :k]]
    inter = y @ y.transpose(1, 2)
    size = y.sum(-1)
    union = size[:, :, None] + size[:, None, :] - inter
    distance = torch.where(union > 0, 1 - inter / union.clamp(min=1), torch.zeros_like(union))
    return distance.triu(1).sum((1, 2)) / (k * (k - 1) / 2)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_metrics_index_form_equal_multi_hot_form(catalogue, k):
    topk = torch.randint(0, len(catalogue), (64, 10), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(alpha_dcg_at_k(topk, catalogue, k, 0.5), dense_alpha_dcg(topk, catalogue, k, 0.5))
    if k > 1:
        torch.testing.assert_close(ild_at_k(topk, catalogue, k), dense_ild(topk, catalogue, k))
    n_categories = int((catalogue.unique() > 0).sum())
    coverage = hot(catalogue)[topk[:, :k]].amax(1).sum(-1) / n_categories
    torch.testing.assert_close(category_coverage_at_k(topk, catalogue, k), coverage)
    everything = hot(catalogue)[None]
    assert metric_ideal(catalogue, k, 0.5) == pytest.approx(float(ideal_alpha_dcg(everything, k, 0.5)[0]))


# ---------------------------------------------------------------- MMR


def mmr_by_definition(scores, dense, lam, k, candidates):
    """Each user's MMR picks straight from the definition, on multi-hot rows (weighted Jaccard = min / max)."""
    picks = []
    for row in scores:
        row = row.clone()
        row[0] = -math.inf
        top = [i for i in row.argsort(descending=True, stable=True).tolist()[:candidates] if math.isfinite(row[i])]
        values = row[top]
        spread = float(values.max() - values.min())
        rel = {i: (float(row[i] - values.min()) / spread if spread > 0 else 1.0) for i in top}
        chosen = []
        for _ in range(min(k, len(top))):
            def value(i):
                sims = [float(torch.minimum(dense[i], dense[j]).sum() / u) if (u := torch.maximum(dense[i], dense[j])
                                                                                  .sum()) > 0 else 0.0 for j in chosen]
                return lam * rel[i] - (1 - lam) * max(sims, default=0.0)
            chosen.append(max((i for i in top if i not in chosen), key=lambda i: (value(i), -top.index(i))))
        picks.append(chosen)
    return picks


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_mmr_on_ids_equals_mmr_on_multi_hot_and_the_definition(catalogue, lam):
    generator = torch.Generator().manual_seed(5)
    scores = torch.randn(6, len(catalogue), generator=generator)  # (similarity ties: lam = 0)
    scores[1, 3:40] = -math.inf
    dense = hot(catalogue)
    on_ids = mmr_rerank(scores, catalogue, lam, k=5, candidates=25)
    on_hot = mmr_rerank(scores, dense, lam, k=5, candidates=25)
    assert torch.equal(on_ids, on_hot)
    expected = mmr_by_definition(scores, dense, lam, 5, 25)
    assert on_ids.topk(5, dim=1).indices.tolist() == expected
