"""Ray: adapter bank with one Ray task per tuning run, and hyper-parameter sweeps on Ray Tune (ml-tiny)."""
import csv
import math
import os
import time

import pytest
import torch
import yaml

from conftest import TEST_CONFIG, TEST_DATA
from recbole_paragon import pipeline
from recbole_paragon.training.bank import BANK_METADATA, BANK_TENSORS, AdapterBank, collect_bank
from recbole_paragon.quick_start import build_config, prepare_data

ray = pytest.importorskip("ray")
from ray.tune.search import sample  # noqa: E402

from recbole_paragon import tune  # noqa: E402
from recbole_paragon.training.distributed import collect_bank_ray  # noqa: E402


@pytest.fixture(autouse=True)
def ray_shutdown():
    yield
    ray.shutdown()


def bank_trainer(config_dict):
    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], config_dict)
    _, (train, valid, test) = prepare_data(config)
    backbone = pipeline.backbone_stage(config, train, valid, test)
    assert backbone["reused"]
    return config, pipeline.adapter_trainer(config, backbone["model"], train, valid, test)


# -- params files ----------------------------------------------------------------------------------------------------
def test_params_file_lines_become_ray_tune_spaces():
    space = tune.parse_params(
        "# RecBole's format\n"
        "learning_rate loguniform -8,0\n"
        "\n"
        "embedding_size choice [64, 96]\n"
        "dropout uniform 0.1,0.5   # trailing comment\n"
        "hidden_size quniform 16,64,16\n"
        "temperature quniform 0.05,0.2,0.05\n")
    assert list(space) == ["learning_rate", "embedding_size", "dropout", "hidden_size", "temperature"]
    lr = space["learning_rate"]
    assert isinstance(lr, sample.Float) and isinstance(lr.get_sampler(), sample.Float._LogUniform)
    assert (lr.lower, lr.upper) == (pytest.approx(math.exp(-8)), pytest.approx(1.0))
    assert isinstance(space["embedding_size"], sample.Categorical)
    assert space["embedding_size"].categories == [64, 96]
    dropout = space["dropout"]
    assert isinstance(dropout.get_sampler(), sample.Float._Uniform) and (dropout.lower, dropout.upper) == (0.1, 0.5)
    assert space["hidden_size"].categories == [16, 32, 48, 64]  # ints for the model (tune.qrandint gives floats)
    sizes = space["hidden_size"].sample(size=200, random_state=0)
    assert set(sizes) == {16, 32, 48, 64} and all(isinstance(s, int) for s in sizes)
    temperatures = space["temperature"].sample(size=50, random_state=0)
    assert all(0.05 - 1e-9 <= t <= 0.2 + 1e-9 and abs(t / 0.05 - round(t / 0.05)) < 1e-6 for t in temperatures)
    rates = lr.sample(size=200, random_state=0)
    assert all(math.exp(-8) <= r <= 1 for r in rates) and min(rates) < math.exp(-6)  # log-uniform, not uniform


@pytest.mark.parametrize("line, reason", [
    ("hidden_size choise [16,32]", "unknown type"),
    ("learning_rate loguniform -8", "low,high"),
    ("embedding_size choice 64", "list"),
    ("dropout uniform 0.5,0.1", "smaller"),
    ("learning_rate", "name, a type and a value"),
])
def test_malformed_params_line_is_named(tmp_path, line, reason):
    path = tmp_path / "params.test"
    path.write_text(f"learning_rate loguniform -8,0\n# comment\n{line}\n")
    with pytest.raises(ValueError, match=r"line 3: .*" + reason) as error:
        tune.parse_params_file(str(path))
    assert line in str(error.value)


# -- sweeps ----------------------------------------------------------------------------------------------------------
def test_two_trial_sweep_writes_best_yaml_and_trials_csv(in_tmp_dir):
    params = in_tmp_dir / "params.test"
    params.write_text("learning_rate loguniform -7,-4\nhidden_size choice [16,32]\n")
    output = in_tmp_dir / "sweep"
    start = time.perf_counter()
    summary = tune.main(["--model=ParagonSASRec", "--dataset=ml-tiny", f"--params_file={params}",
                         f"--config_files={TEST_CONFIG}", "--num_samples=2", "--max_concurrent=2",
                         "--ray_address=local", f"--output={output}", "--epochs=2", f"--data_path={TEST_DATA}",
                         f"--checkpoint_dir={in_tmp_dir / 'saved'}", "--log_wandb=False"])
    print(f"2-trial sweep: {time.perf_counter() - start:.1f}s")
    assert summary["metric"] == "ndcg@10" and summary["mode"] == "max"

    with open(output / "best.yaml") as handle:
        best = yaml.safe_load(handle)
    assert set(best) >= {"learning_rate", "hidden_size", "epochs", "data_path"}
    assert best["hidden_size"] in (16, 32) and math.exp(-7) <= best["learning_rate"] <= math.exp(-4)
    assert best["epochs"] == 2
    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG, str(output / "best.yaml")], None)
    assert config["hidden_size"] == best["hidden_size"] and config["learning_rate"] == best["learning_rate"]

    with open(output / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert {"trial_id", "config/learning_rate", "config/hidden_size", "best_ndcg@10", "status"} <= set(rows[0])
    assert all(row["status"] in ("completed", "stopped early") for row in rows), rows
    assert max(float(row["best_ndcg@10"]) for row in rows) == pytest.approx(summary["best_score"])
    # every completed trial left a backbone run directory, reusable as run_dir
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed and all(os.path.isfile(output / "runs" / row["trial_id"] / "ParagonSASRec-ml-tiny" /
                                            "backbone.json") for row in completed)


# -- adapter bank ------------------------------------------------------------------------------------------------------
def test_local_ray_bank_equals_serial_bank_and_resumes(paragon_run, tmp_path):
    config, trainer = bank_trainer({**paragon_run, "bank_grid_step": 0.5, "bank_seeds": [0, 1]})
    serial = collect_bank(trainer, config, str(tmp_path / "serial"), show_progress=False)
    assert len(serial) == 3 * 2 * 2  # 3 preferences x 2 seeds x (checkpoint 30 + final 60)
    # an interrupted bank: the first two tuning runs (of six) are done; Ray must do the other four, in grid order
    partial = AdapterBank.load(str(tmp_path / "serial"))
    for values in (partial.vectors, partial.preferences, partial.steps, partial.seeds, partial.metrics):
        del values[4:]
    partial.save(paragon_run["run_dir"])
    config["ray_address"], config["num_workers"] = "local", 2
    start = time.perf_counter()
    distributed = pipeline.bank_stage(config, trainer)  # dispatches to collect_bank_ray (run_dir)
    print(f"bank on local Ray, 2 workers: {time.perf_counter() - start:.1f}s for 4 tuning runs")

    assert distributed.preferences == serial.preferences
    assert distributed.steps == serial.steps and distributed.seeds == serial.seeds
    difference = (torch.stack(distributed.vectors) - torch.stack(serial.vectors)).abs().max().item()
    assert difference < 1e-6, difference
    for a, b in zip(distributed.metrics, serial.metrics):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a)
    stored = AdapterBank.load(paragon_run["run_dir"])  # saved after each run
    assert torch.equal(torch.stack(stored.vectors), torch.stack(distributed.vectors))
    assert stored.metrics == distributed.metrics
    assert all(seconds > 0 for seconds in stored.seconds[4:])  # tuning time measured on the workers
    assert not ray.is_initialized()  # the local Ray it started is stopped again
    # nothing left to do: no Ray at all
    assert len(collect_bank_ray(trainer, config, paragon_run["run_dir"], show_progress=False)) == len(serial)
    assert not ray.is_initialized()


def test_unreachable_ray_address_fails_fast_and_writes_nothing(paragon_run):
    config, trainer = bank_trainer({**paragon_run, "bank_grid_step": 0.5, "ray_address": "ray://127.0.0.1:1"})
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"ray://127\.0\.0\.1:1"):
        pipeline.bank_stage(config, trainer)
    assert time.perf_counter() - start < 10
    files = os.listdir(paragon_run["run_dir"])
    assert BANK_METADATA not in files and BANK_TENSORS not in files
    assert not [f for f in files if f.startswith(".bank")]  # no temporary bank files either
    assert not ray.is_initialized()


# -- the compare stage on Ray ----------------------------------------------------------------------------------------
def test_compare_runs_one_ray_task_per_model_and_seed(tmp_path, monkeypatch):
    from recbole_paragon.compare import comparison_runs

    monkeypatch.chdir(tmp_path)
    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {
        "data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"), "stage": "compare", "epochs": 1,
        "compare_models": ["Pop"], "compare_seeds": 2, "compare_ray": True, "ray_address": "local",
        "num_workers": 2, "metrics": ["NDCG"]})
    comparison = comparison_runs(config)
    assert comparison["execution"].startswith("Ray at local, 2 tasks at a time")
    assert [(r["model"], r["seed"], r["error"]) for r in comparison["runs"]] == [("Pop", 2020, None), ("Pop", 2021, None)]
    assert all(0 < r["metrics"]["ndcg@10"] < 1 and r["seconds"] > 0 for r in comparison["runs"])

