"""Objectives: soft α-NDCG against exact α-NDCG by hand, fairness gap, registry and side-information checks."""
import math

import pytest
import torch

from recbole_paragon.objectives import OBJECTIVES, check_objective_names
from recbole_paragon.objectives.diversity import ideal_alpha_dcg, soft_alpha_dcg
from recbole_paragon.objectives.fairness import group_spread, soft_ndcg
from recbole_paragon.objectives.side_information import item_category_matrix, user_group_vector

ALPHA = 0.5
# Four candidates over categories (A, B): item0 {A}, item1 {A}, item2 {B}, item3 {A, B}
CATEGORIES = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])


def exact_alpha_dcg(order, categories, k, alpha):
    """α-DCG@k of a hard ranking, straight from the definition (items ranked *above* discount a category)."""
    counts = torch.zeros(categories.shape[-1])
    total = 0.0
    for position, item in enumerate(order[:k]):
        total += float((categories[item] * (1 - alpha) ** counts).sum()) / math.log2(position + 2)
        counts += categories[item]
    return total


def test_soft_alpha_dcg_matches_hand_computed_exact_value_at_small_temperature():
    # Ranking by score: item0 (4) > item1 (3) > item2 (2) > item3 (1).
    # gains: item0 A fresh = 1; item1 A seen once = .5; item2 B fresh = 1; item3 A seen twice .25 + B seen once .5
    # α-DCG@4 = 1/log2(2) + .5/log2(3) + 1/log2(4) + .75/log2(5)
    hand = 1 + 0.5 / math.log2(3) + 1 / math.log2(4) + 0.75 / math.log2(5)
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert exact_alpha_dcg([0, 1, 2, 3], CATEGORIES[0], 4, ALPHA) == pytest.approx(hand)
    assert soft_alpha_dcg(scores, CATEGORIES, 4, ALPHA, tau=0.01).item() == pytest.approx(hand, rel=1e-4)


def test_soft_alpha_dcg_top_k_cut_and_reverse_direction_would_differ():
    # Top-2 of ranking item3 > item0 > item2 > item1: item3 gains A+B = 2 at rank 1; item0 A seen once = .5 at rank 2.
    hand = 2 / math.log2(2) + 0.5 / math.log2(3)
    scores = torch.tensor([[3.0, 1.0, 2.0, 4.0]])
    assert soft_alpha_dcg(scores, CATEGORIES, 2, ALPHA, tau=0.01).item() == pytest.approx(hand, rel=1e-4)
    # Counting items ranked *below* (the reference bug) gives item3 gain (.5²+.5) and item0 gain 1, i.e. different:
    reversed_direction = (0.25 + 0.5) / math.log2(2) + 1 / math.log2(3)
    assert abs(hand - reversed_direction) > 0.5


def test_ideal_alpha_dcg_is_greedy_by_hand():
    # Greedy: item3 (A+B: 2) -> then item0/1 (A seen: .5) or item2 (B seen: .5) -> first max = item0 (.5)
    # -> then item1 (A seen twice: .25) vs item2 (B seen once: .5) -> item2 (.5) -> item1 (A seen twice .25)
    hand = 2 + 0.5 / math.log2(3) + 0.5 / math.log2(4) + 0.25 / math.log2(5)
    assert ideal_alpha_dcg(CATEGORIES, 4, ALPHA).item() == pytest.approx(hand)
    assert ideal_alpha_dcg(CATEGORIES, 1, ALPHA).item() == pytest.approx(2.0)


def test_soft_alpha_ndcg_gradient_promotes_an_uncovered_category():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]], requires_grad=True)
    soft_alpha_dcg(scores, CATEGORIES, 2, ALPHA, tau=0.5).backward()
    # raising item2 (category B, not yet in the top-2) helps more than raising item1 (a second A)
    assert scores.grad[0, 2] > scores.grad[0, 1]


def test_soft_ndcg_matches_hard_ndcg_at_small_temperature():
    scores = torch.tensor([[-1e9, 5.0, 4.0, 3.0, 2.0]])  # item 0 is padding
    for target, rank in [(1, 1), (3, 3), (4, 4)]:
        value = soft_ndcg(scores, torch.tensor([target]), tau=0.01).item()
        assert value == pytest.approx(1 / math.log2(1 + rank), rel=1e-4)


def test_group_spread_is_gap_of_group_means():
    values = torch.tensor([0.2, 0.4, 0.9, 0.5])
    groups = torch.tensor([1, 1, 2, 2])  # means .3 and .7
    assert group_spread(values, groups).item() == pytest.approx(0.4)
    assert group_spread(values, torch.tensor([1, 1, 1, 1])).item() == 0.0


def test_registry_lists_available_objectives_on_unknown_name():
    assert {"accuracy", "diversity", "fairness", "exposure", "novelty", "embedding_diversity",
            "calibration"} <= set(OBJECTIVES)
    with pytest.raises(ValueError, match="available: accuracy, calibration, diversity, embedding_diversity, "
                                         "exposure, fairness, novelty"):
        check_objective_names(["accuracy", "serendipity"])
    with pytest.raises(ValueError, match="at least two"):
        check_objective_names(["accuracy"])


class _Features(dict):
    @property
    def columns(self):
        return list(self.keys())


class _Dataset:
    item_feat = _Features(item_id=torch.arange(3), genre=torch.tensor([[0, 0], [1, 2], [2, 0]]))
    user_feat = _Features(user_id=torch.arange(3))

    def num(self, field):
        return 3


def test_category_matrix_is_multi_hot_without_padding():
    matrix = item_category_matrix(_Dataset(), "genre")
    assert torch.equal(matrix, torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))


def test_missing_side_information_names_field_and_config_key():
    with pytest.raises(ValueError, match=r"item feature category_field='class'"):
        item_category_matrix(_Dataset(), "class")
    with pytest.raises(ValueError, match=r"user feature group_field='gender'"):
        user_group_vector(_Dataset(), "gender")
