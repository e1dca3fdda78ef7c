"""Beyond-accuracy metrics: hand-computed values, RecBole registration and collection, one run on ml-tiny."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from recbole.data.interaction import Interaction
from recbole.evaluator import Evaluator, metric_types, metrics_dict, smaller_metrics
from recbole.evaluator.collector import Collector, DataStruct
from recbole.evaluator.metrics import NDCG

from conftest import TEST_CONFIG
from recbole_paragon import run_recbole_paragon
from recbole_paragon.metrics import (
    alpha_dcg_at_k, alpha_ndcg_at_k, category_coverage_at_k, group_gap, ideal_alpha_dcg, ild_at_k, ndcg_at_k,
)
from recbole_paragon.quick_start import build_config

# Categories A=1, B=2, C=3 (0 = padding). Item 0 is RecBole's padding item; items 5 and 6 have no category.
CATEGORIES = torch.tensor([
    [0, 0],  # item 0
    [1, 2],  # item 1: {A, B}
    [1, 0],  # item 2: {A}
    [3, 0],  # item 3: {C}
    [2, 3],  # item 4: {B, C}
    [0, 0],  # item 5: {}
    [0, 0],  # item 6: {}
])
D2, D3 = 1 / math.log2(3), 1 / math.log2(4)  # discounts of ranks 2 and 3 (rank 1: 1/log2(2) = 1)
# Greedy ideal, alpha = .5: item 1 (gain 1 + 1 = 2); then item 4 (B seen once: .5, C new: 1 -> 1.5, beats item 3's 1
# and item 2's .5); then item 2 or 3 (A resp. C seen once: .5).
IDEAL_3 = 2 + 1.5 * D2 + 0.5 * D3


def items(*rows):
    return torch.tensor(rows)


# ---------------------------------------------------------------- alpha-NDCG


def test_alpha_dcg_penalises_categories_already_ranked_above():
    # [1, 2, 3]: item 1 -> A, B new: 2; item 2 -> A seen once: .5; item 3 -> C new: 1.
    # [3, 4, 5]: item 3 -> C new: 1; item 4 -> B new 1 + C seen once .5 = 1.5; item 5 -> no category: 0.
    dcg = alpha_dcg_at_k(items([1, 2, 3], [3, 4, 5]), CATEGORIES, k=3, alpha=0.5)
    torch.testing.assert_close(dcg, torch.tensor([2 + 0.5 * D2 + D3, 1 + 1.5 * D2]))


def test_alpha_dcg_counts_items_ranked_above_not_below():
    # [2, 1]: item 2 first, nothing above it -> A: 1; item 1 -> A seen once .5 + B new 1 = 1.5.
    # The reversed (reference-code) direction would give item 2 .5 (item 1 below shares A) and item 1 2: .5 + 2*D2.
    dcg = alpha_dcg_at_k(items([2, 1]), CATEGORIES, k=2, alpha=0.5)
    torch.testing.assert_close(dcg, torch.tensor([1 + 1.5 * D2]))
    assert not torch.isclose(dcg, torch.tensor([0.5 + 2 * D2])).any()


def test_first_ranked_item_gains_one_per_category_whatever_follows():
    # [1, 2] and [1, 4] share rank 1: item 1 has 2 categories and nothing above it -> gain 2 in both lists.
    dcg_at_1 = alpha_dcg_at_k(items([1, 2], [1, 4]), CATEGORIES, k=1, alpha=0.5)
    torch.testing.assert_close(dcg_at_1, torch.tensor([2.0, 2.0]))


def test_alpha_zero_ignores_redundancy():
    # alpha = 0: every category counts fully: [1, 2, 4] -> 2 + 1*D2 + 2*D3.
    dcg = alpha_dcg_at_k(items([1, 2, 4]), CATEGORIES, k=3, alpha=0.0)
    torch.testing.assert_close(dcg, torch.tensor([2 + D2 + 2 * D3]))


def test_ideal_alpha_dcg_is_greedy_over_all_items():
    assert ideal_alpha_dcg(CATEGORIES, k=3, alpha=0.5) == pytest.approx(IDEAL_3)
    assert ideal_alpha_dcg(CATEGORIES, k=1, alpha=0.5) == pytest.approx(2.0)


def test_alpha_ndcg_normalises_by_greedy_ideal():
    ndcg = alpha_ndcg_at_k(items([1, 2, 3], [1, 4, 2], [5, 6, 0]), CATEGORIES, k=3, alpha=0.5)
    # [1, 2, 3]: (2 + .5*D2 + D3) / IDEAL_3 = .8808; the greedy list [1, 4, 2] scores 1; no categories scores 0.
    torch.testing.assert_close(ndcg, torch.tensor([(2 + 0.5 * D2 + D3) / IDEAL_3, 1.0, 0.0]))
    given = alpha_ndcg_at_k(items([1, 2, 3]), CATEGORIES, k=3, alpha=0.5, ideal=2.0)
    torch.testing.assert_close(given, torch.tensor([(2 + 0.5 * D2 + D3) / 2.0]))


# ---------------------------------------------------------------- ILD and category coverage


def test_ild_is_mean_pairwise_jaccard_distance():
    # [1, 2, 3]: (1,2) {A,B}|{A}: 1 - 1/2 = .5; (1,3): 1 - 0/3 = 1; (2,3): 1 -> 2.5 / 3.
    # [1, 4, 5]: (1,4) {A,B}|{B,C}: 1 - 1/3 = 2/3; (1,5), (4,5) vs {}: 1 each -> (2/3 + 2) / 3 = 8/9.
    # [5, 6]: two empty sets are identical: distance 0.  [3, 3]: same item twice: 0.
    ild = ild_at_k(items([1, 2, 3], [1, 4, 5]), CATEGORIES, k=3)
    torch.testing.assert_close(ild, torch.tensor([2.5 / 3, 8 / 9]))
    torch.testing.assert_close(ild_at_k(items([5, 6], [3, 3]), CATEGORIES, k=2), torch.tensor([0.0, 0.0]))


def test_ild_of_a_single_item_is_zero():
    torch.testing.assert_close(ild_at_k(items([1, 2]), CATEGORIES, k=1), torch.tensor([0.0]))


def test_category_coverage_is_share_of_all_categories_in_top_k():
    # 3 categories overall. [3, 5, 2]: @2 {C} -> 1/3, @3 {A, C} -> 2/3.  [1, 4, 6]: @2 {A, B, C} -> 1.
    topk = items([3, 5, 2], [1, 4, 6])
    torch.testing.assert_close(category_coverage_at_k(topk, CATEGORIES, k=2), torch.tensor([1 / 3, 1.0]))
    torch.testing.assert_close(category_coverage_at_k(topk, CATEGORIES, k=3), torch.tensor([2 / 3, 1.0]))
    torch.testing.assert_close(category_coverage_at_k(topk, CATEGORIES, k=2, n_categories=6),
                               torch.tensor([1 / 6, 3 / 6]))


def test_single_token_category_field_is_one_column():
    from recbole_paragon.objectives.side_information import item_category_tokens

    dataset = SimpleNamespace(item_feat=Interaction({"genre": torch.tensor([0, 2, 1])}), dataset_name="x")
    assert item_category_tokens(dataset, "genre").tolist() == [[0], [2], [1]]


# ---------------------------------------------------------------- NDCG and group gap


def test_ndcg_at_k_by_hand():
    # user 1: hits at ranks 1 and 3, 2 positives: (1 + D3) / (1 + D2) = .9197; user 2: no hit: 0;
    # user 3: hit at rank 2, 1 positive: D2 / 1; user 4: no positives at all: 0.
    hits = torch.tensor([[1, 0, 1], [0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    ndcg = ndcg_at_k(hits, torch.tensor([2, 1, 1, 0]))
    torch.testing.assert_close(ndcg, torch.tensor([(1 + D3) / (1 + D2), 0.0, D2, 0.0]))


def test_ndcg_at_k_matches_recbole_ndcg():
    generator = np.random.default_rng(0)
    hits, positives = generator.random((50, 10)) < 0.3, generator.integers(1, 15, 50)
    positives = np.maximum(positives, hits.sum(1))
    expected = NDCG({"topk": [10], "metric_decimal_place": 4}).metric_info(hits, positives)
    for k in (1, 5, 10):
        ours = ndcg_at_k(torch.from_numpy(hits), torch.from_numpy(positives), k)
        np.testing.assert_allclose(ours.numpy(), expected[:, k - 1], rtol=1e-5)


def test_group_gap_two_groups_by_hand():
    # group 1: (1 + .5) / 2 = .75; group 2: (0 + .25) / 2 = .125 -> .625. The group-0 user (missing) is ignored.
    values = torch.tensor([1.0, 0.5, 0.0, 0.25, 100.0])
    assert group_gap(values, torch.tensor([1, 1, 2, 2, 0])) == pytest.approx(0.625)


def test_group_gap_many_groups_is_max_minus_min_and_one_group_is_zero():
    # means: group 1 .2, group 2 .9, group 3 .5 -> .9 - .2
    assert group_gap(torch.tensor([0.2, 0.9, 0.5]), torch.tensor([1, 2, 3])) == pytest.approx(0.7)
    assert group_gap(torch.tensor([0.2, 0.9]), torch.tensor([1, 1])) == 0.0


# ---------------------------------------------------------------- RecBole registration and collection

EVAL_CONFIG = {"metrics": ["AlphaNDCG", "ILD", "CategoryCoverage", "GroupGap"], "topk": [2],
               "metric_decimal_place": 4, "alpha_ndcg_alpha": 0.5, "eval_args": {"mode": "full"}, "device": "cpu",
               "USER_ID_FIELD": "user_id", "category_field": "class", "group_field": "gender"}


def test_metrics_are_registered_for_every_recbole_importer():
    import recbole.config.configurator as configurator
    import recbole.evaluator.evaluator as evaluator

    for name in ["alphandcg", "ild", "categorycoverage", "groupgap"]:
        assert name in metrics_dict and name in evaluator.metrics_dict and name in configurator.metric_types
    assert "groupgap" in smaller_metrics and "groupgap" in configurator.smaller_metrics
    assert {"alphandcg", "ild", "categorycoverage"}.isdisjoint(smaller_metrics)
    assert metric_types["groupgap"] == metric_types["ndcg"]


def test_group_gap_is_smaller_is_better_as_valid_metric():
    config = build_config("SASRec", "ml-tiny", [TEST_CONFIG],
                          {"metrics": ["NDCG", "GroupGap"], "valid_metric": "GroupGap@10"})
    assert config["valid_metric_bigger"] is False


def test_evaluator_computes_every_metric_from_data_struct_by_hand():
    # Four users (ids 1, 3, 2, 4; groups 1, 1, 2, 2 looked up by id); top-2 lists and hits as below.
    data = DataStruct()
    data.set("rec.items", items([1, 2], [1, 4], [3, 5], [2, 3]))
    data.set("data.item_categories", CATEGORIES)
    data.set("rec.topk", torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 2]]))  # hits | number of positives
    data.set("rec.users", torch.tensor([1, 3, 2, 4]))
    data.set("data.user_groups", torch.tensor([0, 1, 2, 1, 2]))
    result = Evaluator(EVAL_CONFIG).evaluate(data)
    ideal = 2 + 1.5 * D2  # greedy: item 1, then item 4
    # alpha-DCG: [1,2] 2 + .5*D2; [1,4] 2 + 1.5*D2; [3,5] 1; [2,3] 1 + D2
    alpha_ndcg = (2 + 0.5 * D2 + ideal + 1 + 1 + D2) / ideal / 4
    ild = (0.5 + 2 / 3 + 1 + 1) / 4  # Jaccard distances of the four pairs
    coverage = (2 / 3 + 1 + 1 / 3 + 2 / 3) / 4  # {A,B}, {A,B,C}, {C}, {A,C}
    # NDCG@2: group 1 (users 1, 3): 1 and D2; group 2 (users 2, 4): 0 and D2 / (1 + D2)
    gap = (1 + D2) / 2 - (D2 / (1 + D2)) / 2
    expected = {"alphandcg@2": alpha_ndcg, "ild@2": ild, "categorycoverage@2": coverage, "groupgap@2": gap}
    assert result == pytest.approx({key: round(value, 4) for key, value in expected.items()})


def _dataset(**item_and_user_fields):
    item = {key: value for key, value in item_and_user_fields.items() if key == "class"}
    user = {key: value for key, value in item_and_user_fields.items() if key == "gender"}
    return SimpleNamespace(item_feat=Interaction(item) if item else None, user_feat=Interaction(user) if user else None,
                           dataset_name="toy")


def test_collector_collects_categories_groups_and_users_per_evaluation():
    collector = Collector(EVAL_CONFIG)
    collector.data_collect(SimpleNamespace(dataset=_dataset(**{"class": CATEGORIES, "gender": torch.tensor([0, 1])})))
    for user_ids in ([1, 2], [3]):
        scores = torch.rand(len(user_ids), 7)
        collector.eval_batch_collect(scores, Interaction({"user_id": torch.tensor(user_ids)}),
                                     torch.tensor([0]), torch.tensor([1]))
    first = collector.get_data_struct()
    assert first.get("rec.users").tolist() == [1, 2, 3] and first.get("rec.items").shape == (3, 2)
    assert torch.equal(first.get("data.item_categories"), CATEGORIES)
    assert first.get("data.user_groups").tolist() == [0, 1]
    collector.eval_batch_collect(torch.rand(1, 7), Interaction({"user_id": torch.tensor([2])}),
                                 torch.tensor([0]), torch.tensor([1]))
    second = collector.get_data_struct()  # rec.users starts afresh; dataset features stay
    assert second.get("rec.users").tolist() == [2] and "data.item_categories" in second


def test_collector_maps_sampled_evaluation_rows_to_users():
    # Negative-sampled evaluation: one interaction per (user, candidate), one score row per user.
    collector = Collector(EVAL_CONFIG)
    interaction = Interaction({"user_id": torch.tensor([5, 5, 5, 7, 7, 7])})
    collector.eval_batch_collect(torch.rand(2, 7), interaction, torch.tensor([0, 1]), torch.tensor([1, 2]))
    assert collector.get_data_struct().get("rec.users").tolist() == [5, 7]


@pytest.mark.parametrize("missing, config_key", [("class", "category_field"), ("gender", "group_field")])
def test_missing_feature_raises_clear_error(missing, config_key):
    present = {"class": CATEGORIES, "gender": torch.tensor([0, 1])}
    del present[missing]
    collector = Collector(EVAL_CONFIG)
    with pytest.raises(ValueError, match=f"{config_key}='{missing}'.*dataset 'toy'.*set '{config_key}'"):
        collector.data_collect(SimpleNamespace(dataset=_dataset(**present)))


# ---------------------------------------------------------------- end to end


def test_plain_sasrec_run_reports_all_metrics_on_ml_tiny(in_tmp_dir, tiny_config_dict):
    metrics = ["NDCG", "AlphaNDCG", "ILD", "CategoryCoverage", "GroupGap"]
    result = run_recbole_paragon(model="SASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                                 config_dict={**tiny_config_dict, "metrics": metrics, "stage": "backbone"})
    test_result = result["test_result"]
    assert 0.0 < test_result["alphandcg@10"] <= 1.0
    assert 0.0 < test_result["ild@10"] <= 1.0
    assert 0.0 < test_result["categorycoverage@10"] <= 1.0
    assert 0.0 <= test_result["groupgap@10"] <= 1.0
    assert set(result["best_valid_result"]) == set(test_result)


def test_run_without_group_field_in_dataset_names_the_setting(in_tmp_dir, tiny_config_dict):
    with pytest.raises(ValueError, match="group_field='age'"):
        run_recbole_paragon(model="SASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                            config_dict={**tiny_config_dict, "metrics": ["NDCG", "GroupGap"], "group_field": "age"})
