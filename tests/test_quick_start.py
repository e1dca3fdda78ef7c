"""End-to-end runs through the CLI and the Python API on tiny data, and the RecBole 1.2.1 workarounds."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_DIR, TEST_CONFIG
from recbole_paragon import compat, run_recbole_paragon

CLI = os.path.join(REPO_DIR, "run_recbole_paragon.py")


def run_cli(tmp_path, *args):
    command = [sys.executable, CLI, "--dataset=ml-tiny", f"--config_files={TEST_CONFIG}",
               f"--data_path={os.path.join(REPO_DIR, 'tests', 'test_data')}",
               f"--checkpoint_dir={tmp_path / 'saved'}", *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_cli_trains_and_tests_paragon_gru4rec_with_overrides(tmp_path):
    result = run_cli(tmp_path, "--model=ParagonGRU4Rec", "--epochs=1", "--state=INFO", "--stage=backbone")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "test result" in log and "ndcg@10" in log
    assert (tmp_path / "saved" / "ParagonGRU4Rec-ml-tiny" / "backbone.pth").is_file()


def test_cli_rejects_unknown_paragon_model_listing_valid_names(tmp_path):
    result = run_cli(tmp_path, "--model=ParagonFoo")
    assert result.returncode != 0
    assert "unknown model 'ParagonFoo'" in result.stderr and "ParagonSASRec" in result.stderr
    assert not (tmp_path / "saved").exists()


def test_cli_rejects_non_sequential_backbone(tmp_path):
    result = run_cli(tmp_path, "--model=ParagonBPR")
    assert result.returncode != 0
    assert "only sequential models can be wrapped" in result.stderr
    assert not (tmp_path / "saved").exists()


def test_plain_recbole_model_runs_through_same_entry_and_reloads_checkpoint(in_tmp_dir, tiny_config_dict):
    """Plain SASRec, saved and reloaded for the test split: crashed under torch>=2.6 before the compat fix."""
    result = run_recbole_paragon(model="SASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                                 config_dict=tiny_config_dict)
    assert os.path.isfile(result["checkpoint"])
    assert 0.0 <= result["test_result"]["ndcg@10"] <= 1.0
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(result["checkpoint"])  # what RecBole's trainer did before the fix


def test_item_coverage_family_metrics_evaluate(in_tmp_dir, tiny_config_dict):
    metrics = ["NDCG", "ItemCoverage", "GiniIndex", "AveragePopularity", "TailPercentage"]
    result = run_recbole_paragon(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                                 config_dict={**tiny_config_dict, "metrics": metrics, "stage": "backbone"})
    test_result = result["test_result"]
    for key in ["itemcoverage@10", "giniindex@10", "averagepopularity@10", "tailpercentage@10"]:
        assert torch.isfinite(torch.tensor(test_result[key])), key
    assert 0.0 < test_result["itemcoverage@10"] <= 1.0


def test_unpatched_collector_crashes_on_integer_data():
    """The RecBole 1.2.1 bug the compat patch fixes: ``.cpu()`` called on ``data.num_items`` (an int)."""
    from recbole.evaluator.collector import Collector

    class FakeConfig(dict):
        def __getitem__(self, key):
            return dict.get(self, key)

    collector = Collector(FakeConfig(metrics=["ItemCoverage"], eval_args={"mode": "full"}, topk=[10],
                                     device="cpu"))
    collector.data_struct.set("data.num_items", 10)
    with pytest.raises(AttributeError, match="'int' object has no attribute 'cpu'"):
        compat.ORIGINAL_GET_DATA_STRUCT(collector)
    assert collector.get_data_struct().get("data.num_items") == 10


def test_recbole_sequential_models_leave_anomaly_detection_off():
    """RecBole's SINE module switches autograd anomaly detection on at import; the compat layer turns it off."""
    import recbole.model.sequential_recommender.sine  # noqa: F401

    assert not torch.is_anomaly_enabled()


def test_first_epoch_order_replays_a_fresh_loaders_order_and_restores_its_generator(tiny_config_dict):
    """RecBole's training loader draws each epoch's order from one generator seeded at construction (workaround 8)."""
    from recbole_paragon.quick_start import build_config, prepare_data

    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], tiny_config_dict)
    _, (train, _, _) = prepare_data(config)
    user, item = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]

    def epoch_rows():
        return torch.cat([torch.stack([batch[user], batch[item]], 1) for batch in train])

    first, second = epoch_rows(), epoch_rows()
    assert not torch.equal(first, second)  # the second epoch is shuffled otherwise
    state = train.generator.get_state()
    with compat.first_epoch_order(train):
        assert torch.equal(epoch_rows(), first)
    assert torch.equal(train.generator.get_state(), state)  # training that goes on draws what it would have drawn


def test_tuning_in_the_process_that_trained_the_backbone_equals_tuning_on_the_saved_one(tmp_path, monkeypatch,
                                                                                       tiny_config_dict):
    """The same tuning seed gives one adapter whether the backbone was just trained or loaded from the run directory:
    the cached training states come in one order either way."""
    monkeypatch.chdir(tmp_path)
    settings = {**tiny_config_dict, "epochs": 2, "adapter_steps": 20, "stage": "tune_one", "preference": [0.5, 0.5],
                "run_dir": str(tmp_path / "run")}
    trained = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], settings)
    loaded = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], settings)
    assert not trained["reused"] and loaded["reused"]
    assert torch.equal(trained["adapter"]["vector"], loaded["adapter"]["vector"])


@pytest.mark.parametrize("loss, distribution", [("CE", "none"), ("BPR", "uniform")])
def test_negative_sampling_follows_the_loss_type(tiny_config_dict, loss, distribution):
    from recbole_paragon.quick_start import build_config

    config = build_config("ParagonGRU4Rec", "ml-tiny", [TEST_CONFIG], {**tiny_config_dict, "loss_type": loss})
    assert config["train_neg_sample_args"]["distribution"] == distribution


def test_explicit_negative_sampling_is_respected_and_ce_with_it_gets_recboles_error(tiny_config_dict):
    from recbole_paragon.quick_start import build_config

    popular = {"distribution": "popularity", "sample_num": 2, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    config = build_config("ParagonGRU4Rec", "ml-tiny", [TEST_CONFIG],
                          {**tiny_config_dict, "loss_type": "BPR", "train_neg_sample_args": popular})
    assert (config["train_neg_sample_args"]["distribution"], config["train_neg_sample_args"]["sample_num"]) == \
        ("popularity", 2)
    with pytest.raises(ValueError, match="should be None when the loss_type is CE"):
        build_config("ParagonGRU4Rec", "ml-tiny", [TEST_CONFIG],
                     {**tiny_config_dict, "loss_type": "CE", "train_neg_sample_args": popular})
