"""Adapter tuning on cached states and the adapter bank, on a backbone trained on ml-tiny."""
import json
import os

import pytest
import torch
from scipy.stats import spearmanr

from conftest import TEST_CONFIG
from recbole_paragon import pipeline, run_recbole_paragon
from recbole_paragon.training.bank import BANK_METADATA, BANK_TENSORS, AdapterBank, collect_bank
from recbole_paragon.quick_start import build_config, prepare_data


def tuned_trainer(config_dict, **overrides):
    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config_dict, **overrides})
    _, (train, valid, test) = prepare_data(config)
    backbone = pipeline.backbone_stage(config, train, valid, test)
    assert backbone["reused"]
    return config, backbone, pipeline.adapter_trainer(config, backbone["model"], train, valid, test)


def test_identity_adapter_on_cached_states_reproduces_backbone_test_result(paragon_run):
    _, backbone, trainer = tuned_trainer(paragon_run)
    result = trainer.evaluate_vector(None, "test")
    for key in ("recall@10", "ndcg@10"):
        assert result[key] == pytest.approx(backbone["test_result"][key], abs=1e-4)


def test_diversity_weight_trades_accuracy_for_alpha_ndcg(paragon_run):
    _, _, trainer = tuned_trainer(paragon_run)
    weights = [0.0, 0.25, 0.5, 0.75, 1.0]
    results = [trainer.evaluate_vector(trainer.tune([w, 1 - w])[-1][1], "valid") for w in weights]
    ndcg = [r["ndcg@10"] for r in results]
    alpha_ndcg = [r["alphandcg@10"] for r in results]
    assert spearmanr(weights, ndcg).statistic >= 0.7, ndcg
    assert spearmanr(weights, alpha_ndcg).statistic <= -0.7, alpha_ndcg
    assert alpha_ndcg[0] > alpha_ndcg[-1] + 0.02


def test_fairness_weight_reduces_group_gap(paragon_run):
    _, _, trainer = tuned_trainer(paragon_run, objectives=["accuracy", "fairness"])
    gaps = [trainer.evaluate_vector(trainer.tune([w, 1 - w], steps=120)[-1][1], "valid")["groupgap@10"]
            for w in (1.0, 0.0)]
    assert gaps[1] < gaps[0]


def test_same_seed_same_adapter_and_checkpoints_kept(paragon_run):
    _, _, trainer = tuned_trainer(paragon_run)
    first = trainer.tune([0.4, 0.6], seed=3, checkpoints=[20, 40])
    second = trainer.tune([0.4, 0.6], seed=3, checkpoints=[20, 40])
    assert [s for s, _ in first] == [20, 40, 60]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(first, second))
    assert not torch.equal(first[0][1], first[-1][1])


def test_bank_stage_collects_grid_and_loads_weights_only(paragon_run):
    result = run_recbole_paragon(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                                 config_dict={**paragon_run, "stage": "bank", "bank_grid_step": 0.5})
    bank = result["bank"]
    assert len(bank) == 3 * 2  # 3 preferences x (checkpoint 30 + final 60)
    tensors = torch.load(os.path.join(paragon_run["run_dir"], BANK_TENSORS), weights_only=True)
    assert tensors["vectors"].shape == (6, bank.vectors[0].numel())
    assert sorted(set(tensors["steps"].tolist())) == [30, 60]
    with open(os.path.join(paragon_run["run_dir"], BANK_METADATA)) as handle:
        metadata = json.load(handle)
    assert metadata["settings"]["backbone_fingerprint"] == result["model"].backbone_fingerprint()
    assert metadata["settings"]["objectives"] == ["accuracy", "diversity"]
    assert {"preference", "step", "seed", "metrics"} <= set(metadata["adapters"][0])
    assert "ndcg@10" in metadata["adapters"][0]["metrics"]


def test_interrupted_bank_resumes_without_redoing_finished_preferences(paragon_run, monkeypatch):
    config, _, trainer = tuned_trainer(paragon_run, bank_grid_step=0.5)
    directory = paragon_run["run_dir"]
    full = collect_bank(trainer, config, directory, show_progress=False)
    partial = AdapterBank.load(directory)
    for values in (partial.vectors, partial.preferences, partial.steps, partial.seeds, partial.metrics):
        del values[-2:]  # as if the run stopped before the last preference finished
    partial.save(directory)
    tuned = []
    original_tune = trainer.tune
    monkeypatch.setattr(trainer, "tune", lambda w, **kw: tuned.append(w) or original_tune(w, **kw))
    resumed = collect_bank(trainer, config, directory, show_progress=False)
    assert len(tuned) == 1 and tuned[0].tolist() == full.preferences[-1]
    assert torch.allclose(torch.stack(resumed.vectors), torch.stack(full.vectors), atol=1e-6)


def test_bank_of_another_backbone_is_rejected_and_kept(paragon_run):
    config, _, trainer = tuned_trainer(paragon_run, bank_grid_step=0.5)
    directory = paragon_run["run_dir"]
    collect_bank(trainer, config, directory, show_progress=False)
    before = open(os.path.join(directory, BANK_METADATA)).read()
    with torch.no_grad():
        trainer.model.item_embedding.weight[1] += 1.0
    with pytest.raises(ValueError, match="backbone_fingerprint"):
        collect_bank(trainer, config, directory, show_progress=False)
    assert open(os.path.join(directory, BANK_METADATA)).read() == before


def test_tune_stage_validates_preference_before_tuning(paragon_run):
    with pytest.raises(ValueError, match="needs 2 weights"):
        run_recbole_paragon(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                            config_dict={**paragon_run, "stage": "tune_one", "preference": [0.2, 0.3, 0.5]})


def test_unknown_objective_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="unknown objective"):
        run_recbole_paragon(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                            config_dict={"data_path": os.path.join(os.path.dirname(__file__), "test_data"),
                                         "checkpoint_dir": str(tmp_path / "saved"),
                                         "objectives": ["accuracy", "serendipity"]})
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_bank_file_names_the_file_and_the_fix_and_is_left_alone(paragon_run, damage):
    config, _, trainer = tuned_trainer(paragon_run, bank_grid_step=0.5)
    directory = paragon_run["run_dir"]
    collect_bank(trainer, config, directory, show_progress=False)
    path = os.path.join(directory, BANK_TENSORS)
    data = open(path, "rb").read()
    damaged = data[: len(data) // 2] if damage == "truncate" else b"not a torch file"
    with open(path, "wb") as handle:
        handle.write(damaged)
    with pytest.raises(ValueError, match=r"bank\.pt cannot be loaded as plain tensors .*delete .*bank\.pt"):
        collect_bank(trainer, config, directory, show_progress=False)
    assert open(path, "rb").read() == damaged  # nothing overwritten half-way


def test_stage_tune_with_one_number_for_two_objectives_says_what_is_missing(paragon_run):
    with pytest.raises(ValueError, match="preference needs 2 weights, one per objective"):
        run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                            {**paragon_run, "stage": "tune_one", "preference": 0.5})
