"""Objectives beyond accuracy and categories: exposure (long tail), novelty, embedding diversity, calibration —
their side information and metrics by hand, their soft losses against the hard metrics, and the lever each gives
on a backbone trained on ml-tiny."""
import math
from types import SimpleNamespace

import pytest
import torch

from recbole_paragon.metrics import embedding_ild_at_k, miscalibration_at_k, novelty_at_k, tail_exposure_at_k
from recbole_paragon.objectives.calibration import list_category_mix, miscalibration
from recbole_paragon.objectives.embedding_diversity import pairwise_distance, soft_ild
from recbole_paragon.objectives.exposure import soft_exposure
from recbole_paragon.objectives.side_information import (self_information, tail_items, user_category_profiles)
from recbole_paragon.objectives.soft_rank import in_top_k, soft_rank

from test_adapter_bank import tuned_trainer

# interactions per item id (0 = padding): 100 in all; the head holding 50 % is item 1 alone
POPULARITY = torch.tensor([0.0, 50.0, 30.0, 10.0, 5.0, 5.0])


def test_tail_is_everything_outside_the_head_holding_the_share():
    assert tail_items(POPULARITY, 0.5).tolist() == [False, False, True, True, True, True]
    assert tail_items(POPULARITY, 0.6).tolist() == [False, False, False, True, True, True]  # 50 < 60: item 2 too
    assert tail_items(POPULARITY, 0.01).tolist() == [False, False, True, True, True, True]


def test_self_information_and_novelty_by_hand():
    bits = self_information(POPULARITY)
    assert bits[1].item() == pytest.approx(1.0) and bits[2].item() == pytest.approx(math.log2(100 / 30))
    assert bits[0].item() == pytest.approx(math.log2(100))  # never seen: counted once
    lists = torch.tensor([[1, 2], [4, 5]])
    assert novelty_at_k(lists, bits, 2).tolist() == pytest.approx([(1 + math.log2(100 / 30)) / 2, math.log2(20)])


def test_tail_exposure_is_the_discounted_tail_share():
    tail = tail_items(POPULARITY, 0.5)
    d2 = 1 / math.log2(3)
    lists = torch.tensor([[1, 3], [3, 1], [4, 5], [1, 2]])
    assert tail_exposure_at_k(lists, tail, 2).tolist() == pytest.approx([d2 / (1 + d2), 1 / (1 + d2), 1.0, d2 / (1 + d2)])


def test_soft_exposure_approaches_the_metric_at_a_small_temperature():
    tail = tail_items(POPULARITY, 0.5)
    candidates = torch.tensor([[1, 3, 2, 4, 5]])
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])  # the candidates' order is the ranking
    soft = (soft_exposure(scores, 3, tau=0.01) * tail[candidates].float()).sum(1)
    assert soft.item() == pytest.approx(tail_exposure_at_k(candidates, tail, 3).item(), abs=1e-3)


def test_embedding_ild_by_hand_and_its_soft_version():
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # items 1, 2, 3
    # 1 - cos: (1,2) orthogonal -> 1, (1,3) opposite -> 2, (2,3) orthogonal -> 1
    assert embedding_ild_at_k(torch.tensor([[1, 2], [1, 3]]), embeddings, 2).tolist() == pytest.approx([1.0, 2.0])
    assert embedding_ild_at_k(torch.tensor([[1, 2, 3]]), embeddings, 3).tolist() == pytest.approx([4 / 3])
    unit = torch.nn.functional.normalize(embeddings, dim=-1)[torch.tensor([[1, 2, 3]])]
    hard = soft_ild(torch.tensor([[1.0, 1.0, 0.0]]), pairwise_distance(unit))
    assert hard.item() == pytest.approx(1.0)


class _Interactions(SimpleNamespace):
    def __getitem__(self, field):
        return getattr(self, field)


def test_user_profiles_share_each_items_weight_over_its_categories():
    categories = torch.tensor([[0, 0], [1, 2], [1, 0], [0, 0]])  # item 1 {1, 2}, item 2 {1}, item 3 none
    dataset = SimpleNamespace(uid_field="user_id", iid_field="item_id", user_num=3,
                              inter_feat=_Interactions(user_id=torch.tensor([1, 1, 2]),
                                                       item_id=torch.tensor([1, 2, 3])))
    profiles = user_category_profiles(dataset, categories)
    assert profiles[1].tolist() == pytest.approx([0.0, 0.75, 0.25])  # item 1: ½ + ½, item 2: 1 -> (1.5, .5) / 2
    assert profiles[2].tolist() == [0.0, 0.0, 0.0] and profiles[0].tolist() == [0.0, 0.0, 0.0]


def test_miscalibration_by_hand():
    categories = torch.tensor([[0], [1], [2]])
    profiles = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    users = torch.tensor([1, 1])
    lists = torch.tensor([[1, 2], [1, 1]])  # a calibrated list, and one of category 1 only
    alpha = 0.01
    values = miscalibration_at_k(lists, users, categories, profiles, 2, alpha)
    off = 0.5 * math.log(0.5 / ((1 - alpha) * 1 + alpha * 0.5)) + 0.5 * math.log(0.5 / (alpha * 0.5))
    assert values.tolist() == pytest.approx([0.0, off], abs=1e-6)
    mix = list_category_mix(torch.tensor([[1.0, 1.0]]), categories[lists[:1]], 3, 2)
    assert miscalibration(profiles[1:], mix, alpha).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_top_k_weights_are_hard_at_a_small_temperature():
    weights = in_top_k(soft_rank(torch.tensor([[0.3, 2.0, 1.0, -1.0]]), 0.01), 2, 0.01)
    assert weights.tolist()[0] == pytest.approx([0.0, 1.0, 1.0, 0.0], abs=1e-4)


@pytest.mark.parametrize("objective, metric, bigger", [
    ("exposure", "tailexposure@10", True), ("embedding_diversity", "embeddingild@10", True),
    ("calibration", "miscalibration@10", False), ("novelty", "novelty@10", True)])
def test_each_objectives_vertex_moves_its_metric_from_the_backbone(paragon_run, objective, metric, bigger):
    metrics = {"exposure": "TailExposure", "embedding_diversity": "EmbeddingILD", "calibration": "Miscalibration",
               "novelty": "Novelty"}
    _, _, trainer = tuned_trainer(paragon_run, objectives=["accuracy", objective], metrics=["NDCG", metrics[objective]])
    backbone = trainer.evaluate_vector(None, "valid")[metric]
    vertex = trainer.evaluate_vector(trainer.tune([0.0, 1.0], steps=60)[-1][1], "valid")[metric]
    assert (vertex - backbone if bigger else backbone - vertex) > 0.01 * max(abs(backbone), 1e-3), \
        (backbone, vertex)
