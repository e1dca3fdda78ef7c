"""The compare stage on ml-tiny (RecBole's models beside Paragon) and sampled evaluation (the paper's protocol)."""
import json
import os

import pytest
import torch
from recbole.data import data_preparation

from conftest import TEST_CONFIG, TEST_DATA
from recbole_paragon import compat, pipeline
from recbole_paragon.compare import (comparison_runs, model_config, model_settings, result_path, runner,
                                     saved_comparison)
from recbole_paragon.compat import first_epoch_order
from recbole_paragon.datasets import load_dataset
from recbole_paragon.evaluation.comparison import add_comparison, comparison_section, comparison_table
from recbole_paragon.evaluation.evaluator import SplitEvaluator
from recbole_paragon.evaluation.protocol import check_protocol
from recbole_paragon.model.cache import RepresentationCache
from recbole_paragon.quick_start import build_config
from recbole_paragon.registry import get_model, get_trainer

UNI100 = {"mode": "uni100"}


def compare_config(tmp_path, **overrides):
    """A run's config for the compare stage: Pop and GRU4Rec, one seed, one epoch, in this process."""
    return build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {
        "data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"), "stage": "compare", "epochs": 1,
        "compare_models": ["Pop", "GRU4Rec"], "compare_seeds": 1, "compare_ray": False, "log_wandb": False,
        **overrides})


# -- refusing bad input before anything trains ----------------------------------------------------------------------
def test_unknown_compare_model_is_refused_naming_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown model.*NoSuchRec.*sequential models.*SASRec.*general models.*Pop"):
        compare_config(tmp_path, compare_models=["SASRec", "NoSuchRec"])
    with pytest.raises(ValueError, match="ParagonSASRec: Paragon's own fronts"):
        compare_config(tmp_path, compare_models=["ParagonSASRec"])
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("eval_args, reason", [
    ({"mode": "labeled"}, "ranks nothing"),
    ({"mode": "uni100", "split": {"RS": [0.8, 0.1, 0.1]}}, "one held-out item per user"),
])
def test_protocols_paragon_cannot_evaluate_are_refused(tmp_path, eval_args, reason):
    with pytest.raises(ValueError, match=reason):
        check_protocol(compare_config(tmp_path, eval_args=eval_args))


def test_partial_eval_args_keep_the_plugins_split_and_order(tmp_path):
    config = compare_config(tmp_path, eval_args=UNI100)
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"} and config["eval_args"]["order"] == "TO"
    assert config["test_neg_sample_args"] == {"distribution": "uniform", "sample_num": 100}


# -- a sweep's best.yaml feeds a model, never the protocol -----------------------------------------------------------
def test_compare_file_tunes_the_model_not_the_protocol(tmp_path):
    best = tmp_path / "best.yaml"
    best.write_text("# best of 8 trials\nembedding_size: 8\nlearning_rate: 0.01\nepochs: 99\nMAX_ITEM_LIST_LENGTH: 3\n")
    config = compare_config(tmp_path, compare_config_files={"GRU4Rec": str(best)})
    settings = model_settings(config, "GRU4Rec", 7)
    assert settings["embedding_size"] == 8 and settings["learning_rate"] == 0.01 and settings["seed"] == 7
    assert settings["epochs"] == 1 and settings.get("MAX_ITEM_LIST_LENGTH") == 10  # the run's, not the file's
    assert model_settings(config, "Pop", 7)["embedding_size"] == 16  # only GRU4Rec's file applies to GRU4Rec
    with pytest.raises(ValueError, match="not found.*python -m recbole_paragon.sweep --model=SASRec"):
        compare_config(tmp_path, compare_models=["SASRec"], compare_config_files={"SASRec": "sweep"})


# -- training, saving, resuming --------------------------------------------------------------------------------------
@pytest.mark.parametrize("eval_args", [None, UNI100], ids=["full", "uni100"])
def test_two_models_are_measured_saved_and_reused(tmp_path, monkeypatch, eval_args):
    monkeypatch.chdir(tmp_path)
    config = compare_config(tmp_path, **({"eval_args": eval_args} if eval_args else {}))
    pipeline.add_objective_metrics(config)
    first = comparison_runs(config)
    assert [(r["model"], r["seed"]) for r in first["runs"]] == [("Pop", 2020), ("GRU4Rec", 2020)]
    assert first["trained"] == 2 and not any(r["error"] for r in first["runs"])
    for run in first["runs"]:
        assert {"ndcg@10", "recall@10", "alphandcg@10", "ild@10"} <= set(run["metrics"]) and not run["unavailable"]
        saved = json.loads(open(result_path(config, run["model"], run["seed"])).read())
        assert saved["metrics"] == run["metrics"] and saved["fingerprint"] == run["fingerprint"]
    assert sorted(os.listdir(os.path.dirname(result_path(config, "Pop", 0)))) == [
        "GRU4Rec-seed2020.json", "Pop-seed2020.json"]  # RecBole's checkpoints are gone, the results kept
    saved = saved_comparison(config)  # what the evaluation stage's report shows: nothing trained
    assert saved["trained"] == 0 and [r["metrics"] for r in saved["runs"]] == [r["metrics"] for r in first["runs"]]
    os.remove(result_path(config, "Pop", 2020))  # as if interrupted before Pop's result was written
    again = comparison_runs(config)
    assert again["trained"] == 1 and not again["runs"][0].get("reused") and again["runs"][1].get("reused")
    assert again["runs"][0]["metrics"] == first["runs"][0]["metrics"]  # same seed, same model
    # among 100 sampled negatives the held-out item is far easier to rank high than among all 1,000+ items
    assert (first["runs"][0]["metrics"]["recall@10"] > 0.15) == bool(eval_args)


def test_failed_model_is_reported_while_the_others_finish(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("dropout_prob: 2.0\n")  # passes the settings check, fails in the model
    config = compare_config(tmp_path, compare_config_files={"GRU4Rec": str(broken)})
    pipeline.add_objective_metrics(config)
    pop, gru = comparison_runs(config)["runs"]
    assert not pop["error"] and pop["metrics"]["ndcg@10"] >= 0
    assert "dropout probability" in gru["error"] and not gru["metrics"]
    assert comparison_runs(config)["trained"] == 1  # the failure is tried again, the success reused


def test_a_metric_the_model_cannot_take_is_reported_unavailable(monkeypatch):
    def tested(trainer, config, train, test, metrics, seed):
        if "EmbeddingSpread" in metrics:
            raise ValueError("Pop has no item embeddings")
        return {f"{m.lower()}@10": 0.5 for m in metrics}

    monkeypatch.setattr(runner, "tested", tested)
    values, unavailable = runner.measured_metrics(None, None, None, None, ["NDCG", "EmbeddingSpread"], 0)
    assert values == {"ndcg@10": 0.5}
    assert unavailable == {"EmbeddingSpread": "ValueError: Pop has no item embeddings"}


# -- the report ------------------------------------------------------------------------------------------------------
def test_report_section_keeps_unmeasurable_and_failed_models():
    report = {"hypervolume_reference": {"metrics": ["ndcg@10", "embeddingspread@10"]},
              "methods": {"retune": [{"preference": [1, 0], "metrics": {"ndcg@10": 0.05, "embeddingspread@10": .2}},
                                     {"preference": [0, 1], "metrics": {"ndcg@10": 0.02, "embeddingspread@10": .6}}]}}
    runs = [{"model": "Pop", "seed": s, "metrics": {"ndcg@10": v}, "unavailable": {"EmbeddingSpread": "no embeddings"},
             "error": None, "seconds": 1.0} for s, v in ((0, 0.03), (1, 0.05))]
    runs.append({"model": "NARM", "seed": 0, "metrics": {}, "unavailable": {}, "error": "RuntimeError: out of memory",
                 "seconds": 2.0})
    add_comparison(report, {"runs": runs, "seeds": [0, 1], "settings": {"epochs": 1}})
    pop = report["compare"]["models"]["Pop"]
    assert pop["mean"]["ndcg@10"] == pytest.approx(0.04) and pop["sd"]["ndcg@10"] == pytest.approx(0.0141, abs=1e-4)
    assert pop["unavailable"] == {"embeddingspread@10": "no embeddings"}
    assert report["compare"]["models"]["NARM"]["errors"] == {"0": "RuntimeError: out of memory"}
    text = "\n".join(comparison_section(report))
    assert "| Pop | 2 | 0.0400 ± 0.0141 | n/a |" in text and "not measurable (no embeddings)" in text
    assert "| NARM | 0 |" in text and "seed 0 failed: RuntimeError: out of memory" in text
    assert "0.0200 – 0.0500" in comparison_table(report)  # Paragon's re-tuned front, min – max


# -- sampled evaluation of cached splits -----------------------------------------------------------------------------
def test_sampled_cache_scores_as_recbole_evaluates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = compare_config(tmp_path, eval_args=UNI100, metrics=["NDCG", "Recall", "AlphaNDCG"])
    train, _, test = data_preparation(config, load_dataset(config))
    torch.manual_seed(0)
    model = get_model("ParagonSASRec")(config, train.dataset).eval()
    cache = RepresentationCache.build(model, test, 5)
    users = len(torch.unique(cache.users))
    assert len(cache) == users and cache.sampled.shape == (users, 101)
    assert torch.equal(cache.sampled[:, 0], cache.target)  # the held-out item first, then its negatives
    ours = SplitEvaluator(config, model, train, {"test": cache}).vector(None, "test")
    trainer = get_trainer(config["MODEL_TYPE"], "ParagonSASRec")(config, model)
    trainer.eval_collector.data_collect(train)
    with first_epoch_order(test):  # the same negatives as the cache drew
        theirs = trainer.evaluate(test, load_best_model=False)
    assert dict(ours) == pytest.approx(dict(theirs), abs=1e-4)
    batch = next(iter(test))  # RecBole's own sampled scoring (101 encodings per user) gives the same scores
    fast, slow = (method(trainer, batch)[1] for method in (type(trainer)._neg_sample_batch_eval,
                                                           compat.ORIGINAL_NEG_SAMPLE_BATCH_EVAL))
    assert compat.SHARED_HISTORY_SCORES[type(model)] and torch.allclose(fast, slow, atol=1e-5)
    _, top = SplitEvaluator(config, model, train, {"test": cache}).backbone_top("test", 20)
    assert all(set(row.tolist()) <= set(items.tolist()) for row, items in zip(top, cache.sampled))  # MMR's candidates
    sasrec = model_config(config, "SASRec", 2021)  # a compared sequential model ranks the very same candidates
    sasrec_test = data_preparation(sasrec, load_dataset(sasrec))[2]
    with first_epoch_order(sasrec_test, int(config["seed"])):
        rows = [batch[0][sasrec["ITEM_ID_FIELD"]].view(len(batch[2]), -1) for batch in sasrec_test]
    assert torch.equal(torch.cat(rows), cache.sampled)
