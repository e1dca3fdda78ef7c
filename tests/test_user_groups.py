"""User groups for fairness (field, activity, popularity, length) and the fairness losses and group metrics,
each against a hand computation; a dataset without a ``.user`` file runs with derived groups."""
import math
import os
import shutil
from types import SimpleNamespace

import pytest
import torch
from recbole.evaluator import Evaluator
from recbole.evaluator.collector import DataStruct

from conftest import TEST_CONFIG, TEST_DATA
from recbole_paragon import run_recbole_paragon
from recbole_paragon.objectives.fairness import cvar_loss, group_spread, worst_group_loss
from recbole_paragon.objectives.user_groups import ranked_groups, user_groups

# Training interactions (user, target item) of a tiny table: users 1..5 (0 = padding), items 1..4.
#   user 1: items 1, 1, 2   user 2: item 1   user 3: items 3, 4, 4, 4   user 4: items 1, 2   user 5: none
USERS = torch.tensor([1, 1, 1, 2, 3, 3, 3, 3, 4, 4])
ITEMS = torch.tensor([1, 1, 2, 1, 3, 4, 4, 4, 1, 2])
LENGTHS = torch.tensor([1, 2, 3, 1, 1, 2, 3, 4, 1, 2])


def table(**extra):
    inter = {"user_id": USERS, "item_id": ITEMS, "item_length": LENGTHS}
    return SimpleNamespace(inter_feat=inter, uid_field="user_id", iid_field="item_id", user_num=6, item_num=5,
                           item_list_length_field="item_length", user_feat=None, dataset_name="toy", **extra)


def test_activity_groups_by_hand():
    # training interactions: u1 3, u2 1, u3 4, u4 2 (u5 has none: unknown). Top 25 % of 4 users = 1 user: u3.
    groups = user_groups({"group_by": "activity", "group_quantile": 0.25}, table())
    assert groups.ids.tolist() == [0, 2, 2, 1, 2, 0]
    assert groups.names == {1: "active", 2: "inactive"} and groups.sizes() == {"active": 1, "inactive": 3}


def test_popularity_groups_by_hand():
    # item popularity: i1 4, i2 2, i3 1, i4 3. Mean popularity: u1 (4+4+2)/3 = 3.33, u2 4, u3 (1+3+3+3)/4 = 2.5,
    # u4 (4+2)/2 = 3. Top half (2 users): u2, u1 mainstream; u4, u3 niche.
    groups = user_groups({"group_by": "popularity", "group_quantile": 0.5}, table())
    assert groups.ids.tolist() == [0, 1, 1, 2, 2, 0]
    assert groups.names == {1: "mainstream", 2: "niche"}


def test_length_groups_by_hand_and_more_than_two_bands():
    # longest history seen in training: u1 3, u2 1, u3 4, u4 2 -> bands top 25 % (u3), next 25 % (u1), rest.
    groups = user_groups({"group_by": "length", "group_quantile": [0.25, 0.5]}, table())
    assert groups.ids.tolist() == [0, 2, 3, 1, 3, 0]
    assert len(groups.names) == 3


def test_ties_break_by_user_id_so_group_sizes_are_exact():
    values = torch.tensor([0.0, 5.0, 5.0, 5.0, 1.0])
    assert ranked_groups(values, torch.tensor([False, True, True, True, True]), [0.5]).tolist() == [0, 1, 1, 2, 2]


@pytest.mark.parametrize("settings, message", [
    ({"group_by": "activity", "group_quantile": 0.05}, "non-empty user group"),  # round(0.05 * 4) = 0 users
    ({"group_by": "activity", "group_quantile": 1.5}, "group_quantile=1.5 is not allowed: .*a fraction in"),
    ({"group_by": "activity", "group_quantile": [0.5, 0.2]}, "increasing list"),
    ({"group_by": "age"}, "group_by='age' is not allowed: group_by takes one of"),
    ({"group_by": "field", "group_field": "gender"}, "group_field='gender'"),
])
def test_bad_group_settings_raise_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        user_groups(settings, table())


def test_fairness_losses_by_hand():
    ndcg = torch.tensor([0.9, 0.7, 0.2, 0.4, 0.6])
    groups = torch.tensor([1, 1, 2, 2, 2])  # means: group 1 .8, group 2 .4
    assert group_spread(ndcg, groups).item() == pytest.approx(0.4)
    assert worst_group_loss(ndcg, groups).item() == pytest.approx(0.6)
    assert cvar_loss(ndcg, 0.4).item() == pytest.approx((0.8 + 0.6) / 2)  # worst 2 of 5 users: losses .8, .6
    assert cvar_loss(ndcg, 1.0).item() == pytest.approx(1 - ndcg.mean().item())


def test_worst_group_loss_only_rewards_lifting_the_worst_group():
    ndcg = torch.tensor([0.9, 0.7, 0.2, 0.4], requires_grad=True)
    worst_group_loss(ndcg, torch.tensor([1, 1, 2, 2])).backward()
    assert ndcg.grad[:2].abs().sum() == 0 and (ndcg.grad[2:] < 0).all()


def test_group_metrics_by_hand():
    data = DataStruct()
    data.set("rec.topk", torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 2]]))  # hits | positives
    data.set("rec.users", torch.tensor([1, 3, 2, 4]))
    data.set("data.user_groups", torch.tensor([0, 1, 2, 1, 2]))
    data.set("data.user_group_names", {1: "active", 2: "inactive"})
    config = {"metrics": ["GroupGap", "GroupNDCG", "WorstGroupNDCG"], "topk": [2], "metric_decimal_place": 4}
    result = Evaluator(config).evaluate(data)
    d2 = 1 / math.log2(3)
    active, inactive = (1 + d2) / 2, (d2 / (1 + d2)) / 2  # NDCG@2 of users 1, 3 and of users 2, 4
    assert result["groupndcg@2[active]"] == pytest.approx(round(active, 4))
    assert result["groupndcg@2[inactive]"] == pytest.approx(round(inactive, 4))
    assert result["worstgroupndcg@2"] == pytest.approx(round(inactive, 4))
    assert result["groupgap@2"] == pytest.approx(round(active - inactive, 4))


def test_a_group_without_evaluated_users_is_an_error_not_a_nan():
    data = DataStruct()
    data.set("rec.topk", torch.tensor([[1, 0, 1], [0, 1, 1]]))
    data.set("rec.users", torch.tensor([1, 3]))  # both in group 1
    data.set("data.user_groups", torch.tensor([0, 1, 2, 1]))
    data.set("data.user_group_names", {1: "active", 2: "inactive"})
    with pytest.raises(ValueError, match=r"\['inactive'\] have no users"):
        Evaluator({"metrics": ["GroupGap"], "topk": [2], "metric_decimal_place": 4}).evaluate(data)


@pytest.fixture
def no_user_file(tmp_path):
    """ml-tiny without its .user file."""
    folder = tmp_path / "data" / "ml-nouser"
    folder.mkdir(parents=True)
    for kind in ("inter", "item"):
        shutil.copy(os.path.join(TEST_DATA, "ml-tiny", f"ml-tiny.{kind}"), folder / f"ml-nouser.{kind}")
    return tmp_path


def test_dataset_without_user_file_runs_with_activity_groups(no_user_file, monkeypatch):
    monkeypatch.chdir(no_user_file)
    settings = {"data_path": str(no_user_file / "data"), "checkpoint_dir": str(no_user_file / "saved"),
                "epochs": 1, "stage": "tune_one", "preference": [0.5, 0.5], "objectives": ["accuracy", "fairness"],
                "group_by": "activity", "adapter_steps": 20, "log_wandb": False}
    result = run_recbole_paragon("ParagonSASRec", "ml-nouser", [TEST_CONFIG], settings)
    metrics = result["adapter"]["test_result"]
    assert {"groupgap@10", "worstgroupndcg@10", "groupndcg@10[active]", "groupndcg@10[inactive]"} <= set(metrics)
    assert metrics["worstgroupndcg@10"] == min(metrics["groupndcg@10[active]"], metrics["groupndcg@10[inactive]"])
    sizes = result["adapter_trainer"].objectives[1].groups.sizes()
    assert sizes["active"] == round(0.2 * sum(sizes.values()))


def test_field_groups_without_the_field_name_group_field_and_the_fields_present(no_user_file, monkeypatch):
    monkeypatch.chdir(no_user_file)
    with pytest.raises(ValueError, match=r"group_field='gender'.*\.user fields: none loaded"):
        run_recbole_paragon("ParagonSASRec", "ml-nouser", [TEST_CONFIG],
                            {"data_path": str(no_user_file / "data"), "checkpoint_dir": str(no_user_file / "saved"),
                             "objectives": ["accuracy", "fairness"], "group_by": "field"})
    assert not (no_user_file / "saved").exists()
