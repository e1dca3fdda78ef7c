"""What keeps the cost bounded on large data: the seeded selection sample of validation users (bank checkpoints,
generator validation), CE over the backbone's candidates instead of the whole catalogue, quiet progress bars."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TEST_CONFIG
from recbole_paragon import pipeline
from recbole_paragon.objectives.accuracy import Accuracy, candidate_cross_entropy
from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.training.bank import collect_bank, pending_runs
from recbole_paragon.training.generator_trainer import GeneratorTrainer
from recbole_paragon.training.progress import progress


def trainer_for(config_dict, **overrides):
    config = build_config("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config_dict, **overrides})
    _, splits = prepare_data(config)
    backbone = pipeline.backbone_stage(config, *splits)
    return config, pipeline.adapter_trainer(config, backbone["model"], *splits)


# ---------------------------------------------------------------- selection sample


def test_bank_checkpoints_are_measured_on_a_seeded_sample_of_validation_users(paragon_run):
    config, trainer = trainer_for(paragon_run, selection_users=50, bank_grid_step=0.5)
    selection, valid = trainer.caches["selection"], trainer.caches["valid"]
    assert len(torch.unique(selection.users)) == 50 == trainer.selection_users
    assert set(selection.users.tolist()) <= set(valid.users.tolist())
    _, again = trainer_for(paragon_run, selection_users=50)
    assert torch.equal(again.caches["selection"].users, selection.users)  # seeded by `seed`
    bank = collect_bank(trainer, config, paragon_run["run_dir"], show_progress=False)
    assert bank.settings["selection_users"] == 50
    on_sample = trainer.split_evaluator.vector(bank.vectors[-1], "selection")
    assert bank.metrics[-1] == pytest.approx(dict(on_sample))
    assert on_sample != trainer.split_evaluator.vector(bank.vectors[-1], "valid")

    splits = []
    original = trainer.split_evaluator.vector
    trainer.split_evaluator.vector = lambda vector, split: splits.append(split) or original(vector, split)
    generator = GeneratorTrainer(config, trainer, bank, kind="hypernet")
    preferences = torch.tensor([[0.0, 1.0]])
    reference = generator.reference_metrics(preferences)
    generator.validation_error(lambda p: [bank.vectors[0]] * len(p), preferences, reference)
    assert splits == ["selection"]  # once per generated adapter, on the bank's sample


def test_a_sample_covering_every_user_is_the_validation_split_and_another_sample_another_bank(paragon_run):
    config, trainer = trainer_for(paragon_run, selection_users=50, bank_grid_step=1.0)
    collect_bank(trainer, config, paragon_run["run_dir"], show_progress=False)
    everyone_config, everyone = trainer_for(paragon_run, selection_users=100_000, bank_grid_step=1.0)
    assert everyone.caches["selection"] is everyone.caches["valid"] and everyone.selection_users is None
    with pytest.raises(ValueError, match="selection_users: bank has 50, run has None"):
        pending_runs(everyone, everyone_config, paragon_run["run_dir"])


# ---------------------------------------------------------------- accuracy over candidates


class _Head:
    """A dot-product score head over 30 items (item 0 = padding)."""

    n_items = 30

    def __init__(self):
        self.table = torch.randn(self.n_items, 4, generator=torch.Generator().manual_seed(0))

    def score_representation(self, rows):
        return rows @ self.table.T

    def score_items(self, rows, items):
        return (self.table[items] @ rows[:, :, None]).squeeze(-1)


def _batch(rows: int = 8):
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(rows, 4, generator=generator)
    scores = _Head().score_representation(hidden)
    scores[:, 0] = -math.inf
    candidates = scores.argsort(1, descending=True)[:, :-1]  # every item but the padding, best first
    target = torch.randint(1, _Head.n_items, (rows,), generator=generator)
    return CachedBatch(hidden, target, torch.arange(rows), candidates), hidden


def test_candidate_ce_is_exact_when_the_candidates_cover_the_catalogue():
    batch, hidden = _batch()
    scores = Scores(hidden, _Head())
    negatives = torch.randint(1, _Head.n_items, (len(batch.target), 50))
    exact = F.cross_entropy(_Head().score_representation(hidden)[:, 1:], batch.target - 1)
    torch.testing.assert_close(candidate_cross_entropy(scores, batch.target, batch.candidates, negatives), exact)


def test_candidate_ce_estimates_the_partition_function_without_bias_and_the_loss_from_below():
    batch, hidden = _batch(rows=1)
    exact = float(F.cross_entropy(_Head().score_representation(hidden)[:, 1:], batch.target - 1))
    torch.manual_seed(0)
    draws = torch.stack([candidate_cross_entropy(Scores(hidden, _Head()), batch.target, batch.candidates[:, :5],
                                                 torch.randint(1, _Head.n_items, (1, 6))) for _ in range(4000)])
    # CE = log Z − s_target: the sampled Z is unbiased, so exp(CE) is on average exp(exact CE) ...
    assert float(draws.exp().mean()) == pytest.approx(math.exp(exact), rel=0.03)
    # ... and its log, the loss, is biased low (Jensen)
    assert float(draws.mean()) < exact


def test_accuracy_option_reads_candidates_and_never_scores_the_whole_catalogue():
    config = {"loss_type": "CE", "accuracy_candidates": 5, "accuracy_negatives": 7, "topk": [10]}
    objective = Accuracy(config, None, None)
    assert objective.candidates == 5
    batch, hidden = _batch()
    head = _Head()
    head.score_representation = None  # any all-item scoring would fail
    loss = objective.loss(batch, hidden, Scores(hidden, head))
    assert torch.isfinite(loss)
    assert Accuracy({"loss_type": "CE", "topk": [10]}, None, None).candidates == 0  # default: the full CE
    with pytest.raises(ValueError, match="accuracy_candidates"):
        Accuracy({**config, "accuracy_candidates": 0}, None, None)


def test_tuning_with_candidate_ce_and_diversity_never_scores_the_whole_catalogue(paragon_run, monkeypatch):
    _, trainer = trainer_for(paragon_run, accuracy_candidates=20, accuracy_negatives=30)
    assert trainer.caches["train"].candidates.shape[1] == 50  # the most any objective reads
    monkeypatch.setattr(trainer.model, "score_representation", lambda hidden: pytest.fail("all-item scores"))
    (_, vector), = trainer.tune([0.5, 0.5], steps=5)
    assert torch.isfinite(vector).all()


# ---------------------------------------------------------------- progress bars


def test_progress_bars_stay_off_when_output_is_not_a_terminal(capsys):
    assert list(progress(range(3), "bar", enabled=True)) == [0, 1, 2]
    assert "\r" not in capsys.readouterr().err  # pytest's captured stderr is not a terminal


def test_recbole_training_with_show_progress_draws_no_bar_off_a_terminal(in_tmp_dir, tiny_config_dict, capfd):
    from recbole_paragon import run_recbole_paragon

    run_recbole_paragon(model="SASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                        config_dict={**tiny_config_dict, "show_progress": True, "stage": "backbone"})
    captured = capfd.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out


# ---------------------------------------------------------------- evaluation


@pytest.mark.parametrize("metrics, positives, fast", [(["Recall", "NDCG", "AlphaNDCG"], 1, True),
                                                      (["NDCG", "MRR"], 1, True), (["NDCG"], 2, False),
                                                      (["NDCG", "GAUC"], 1, False)])
def test_one_topk_collection_equals_recboles(metrics, positives, fast, monkeypatch):
    from recbole.data.interaction import Interaction
    from recbole.evaluator.collector import Collector

    from recbole_paragon import compat

    config = {"metrics": metrics, "topk": [5, 10], "metric_decimal_place": 4, "eval_args": {"mode": "full"},
              "device": "cpu", "USER_ID_FIELD": "user_id", "LABEL_FIELD": "label", "category_field": "class"}
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 300, generator=generator).round(decimals=1)  # ties: both must break them alike
    scores[:, 0] = -math.inf
    rows = torch.arange(64).repeat_interleave(positives)
    items = torch.randint(1, 300, (64 * positives,), generator=generator)
    args = (scores, Interaction({"user_id": torch.arange(64)}), rows, items)
    patched, recbole = Collector(config), Collector(config)
    dense = []
    zeros_like = torch.zeros_like
    monkeypatch.setattr(torch, "zeros_like", lambda *a, **k: dense.append(1) or zeros_like(*a, **k))
    Collector.eval_batch_collect(patched, *args)
    assert bool(dense) != fast  # the fast path builds no [rows, n_items] positives matrix
    monkeypatch.undo()
    compat.ORIGINAL_EVAL_BATCH_COLLECT(recbole, *args)
    for key in ("rec.items", "rec.topk"):
        if key in recbole.data_struct:
            assert torch.equal(patched.data_struct.get(key), recbole.data_struct.get(key)), key


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
def test_mmr_on_ranked_candidates_equals_mmr_on_score_matrices(paragon_run, lam):
    from recbole_paragon.baselines.mmr import category_similarity, mmr_order, mmr_rerank

    _, trainer = trainer_for(paragon_run, topk=[5, 10])
    evaluator, ids = trainer.split_evaluator, trainer.objectives_by_name("diversity").category_ids
    scores, items = evaluator.backbone_top("test", 30)
    lists = mmr_order(scores, items, category_similarity(ids[items].int()), lam, 5)
    matrices = evaluator.rescored("test", lambda s: mmr_rerank(s, ids, lam, 5, 30))
    assert evaluator.ranked("test", lists) == matrices
    if lam == 1.0:  # no re-ranking: the plain backbone's metrics
        assert evaluator.ranked("test", items) == evaluator.vector(None, "test")
