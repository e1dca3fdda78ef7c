"""The whole pipeline on tiny data: every stage, the report, artifact reuse, early failure on bad side information."""
import json
import os

import pytest

from conftest import TEST_CONFIG, TEST_DATA, run_on_backbone_copy
from recbole_paragon import run_recbole_paragon
from recbole_paragon.training.bank import BANK_METADATA
from recbole_paragon.store import generator_paths

METHODS = ["diffusion", "hypernet", "retune", "soup", "mmr", "nearest", "neighbour_soup", "backbone"]
PIPELINE_OVERRIDES = {
    "bank_grid_step": 0.125, "bank_checkpoints": [45], "evaluation_grid_step": 0.5,
    "generator_validation_fraction": 0.2, "generator_steps": 200, "generator_eval_interval": 100,
    "diffusion_batch_size": 32, "dit_d_model": 64, "dit_n_layers": 2, "dit_n_heads": 2,
    "diffusion_timesteps": 100, "evaluation_methods": METHODS, "evaluation_retune_seeds": [0, 1],
    "evaluation_retrain_preferences": [[1.0, 0.0]], "evaluation_retrain_epochs": 1,
}


@pytest.fixture(scope="module")
def pipeline_run(tiny_backbone_dir, tmp_path_factory):
    return run_on_backbone_copy(tiny_backbone_dir, tmp_path_factory.mktemp("pipeline"), PIPELINE_OVERRIDES)


def test_report_has_every_method_and_key(pipeline_run):
    config, _ = pipeline_run
    with open(os.path.join(config["run_dir"], "report.json")) as handle:
        report = json.load(handle)
    assert {"methods", "pearson", "spearman", "hypervolume", "timing", "config"} <= set(report)
    assert set(METHODS + ["retrain"]) == set(report["methods"])
    for name in METHODS:
        entries = report["methods"][name]
        assert [e["preference"][0] for e in entries] == [0.0, 0.5, 1.0]
        assert {"ndcg@10", "recall@10", "alphandcg@10", "ild@10"} <= set(entries[0]["metrics"])
        assert entries[0]["seconds"] >= 0
    assert len(report["methods"]["retrain"]) == 1
    assert os.path.isfile(os.path.join(config["run_dir"], "report.md"))
    assert os.path.isfile(os.path.join(config["run_dir"], "pareto.png"))
    assert set(report["fidelity"]) >= set(METHODS) and set(report["noise_floor"]) == {"ndcg@10", "alphandcg@10"}
    with open(generator_paths(config["run_dir"], "diffusion")[1]) as handle:
        assert json.load(handle)["holdout_adapters"] == 3 * 2  # test preferences 0, .5, 1 x 2 checkpoints held out


def test_rerun_reuses_every_artifact(pipeline_run):
    config, _ = pipeline_run
    paths = [os.path.join(config["run_dir"], name) for name in ("backbone.pth", BANK_METADATA)]
    paths += list(generator_paths(config["run_dir"], "diffusion")) + list(generator_paths(config["run_dir"], "hypernet"))
    before = {p: os.path.getmtime(p) for p in paths}
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config, "stage": "generator"})
    assert result["reused"]
    assert {p: os.path.getmtime(p) for p in paths} == before


def test_interrupted_run_continues_from_last_finished_stage(pipeline_run):
    config, _ = pipeline_run
    bank_time = os.path.getmtime(os.path.join(config["run_dir"], BANK_METADATA))
    for path in generator_paths(config["run_dir"], "diffusion"):
        os.remove(path)  # as if the run stopped while training the generator
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config, "stage": "generator"})
    assert result["reused"] and os.path.getmtime(os.path.join(config["run_dir"], BANK_METADATA)) == bank_time
    assert all(os.path.isfile(p) for p in generator_paths(config["run_dir"], "diffusion"))


def test_compare_stage_puts_recbole_models_beside_the_fronts(pipeline_run):
    config, _ = pipeline_run
    path = os.path.join(config["run_dir"], "report.json")
    with open(path) as handle:
        before = json.load(handle)
    run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {
        **config, "stage": "compare", "compare_models": ["Pop", "Random"], "compare_seeds": 1, "compare_ray": False})
    with open(path) as handle:
        report = json.load(handle)
    assert report["methods"] == before["methods"]  # the evaluation is reused, not run again
    assert list(report["compare"]["models"]) == ["Pop", "Random"] and report["compare"]["trained"] == 2
    for summary in report["compare"]["models"].values():
        assert {"ndcg@10", "alphandcg@10", "ild@10"} <= set(summary["mean"]) and summary["seeds"] == [2020]
    assert os.path.isfile(os.path.join(config["run_dir"], "compare.png"))
    with open(os.path.join(config["run_dir"], "report.md")) as handle:
        assert "| Random | 1 |" in handle.read()


def test_missing_category_field_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="category_field='genre'"):
        run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                            {"data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"),
                             "category_field": "genre"})
    assert not (tmp_path / "saved").exists()


def test_bpr_backbone_runs_the_whole_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = {**PIPELINE_OVERRIDES, "data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"),
                 "loss_type": "BPR", "epochs": 2, "adapter_steps": 40, "bank_checkpoints": [20],
                 "bank_grid_step": 0.25, "evaluation_methods": ["diffusion", "retune", "nearest", "backbone"],
                 "evaluation_retrain_preferences": [], "evaluation_retune_seeds": [0, 1], "log_wandb": False}
    result = run_recbole_paragon("ParagonGRU4Rec", "ml-tiny", [TEST_CONFIG], overrides)
    config = result["adapter_trainer"].config
    assert config["train_neg_sample_args"]["distribution"] == "uniform"  # BPR trains on sampled negatives
    assert result["adapter_trainer"].objectives[0].loss_type == "BPR"
    report = result["report"]
    assert set(report["methods"]) == {"diffusion", "retune", "nearest", "backbone"}
    for entries in report["methods"].values():
        assert len(entries) == 3 and all(0.0 <= e["metrics"]["ndcg@10"] <= 1.0 for e in entries)
    assert os.path.isfile(os.path.join(str(tmp_path / "saved"), "ParagonGRU4Rec-ml-tiny", "report.json"))
