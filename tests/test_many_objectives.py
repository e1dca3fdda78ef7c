"""Many-objective control: budgeted banks of low-discrepancy preferences, uniform test preferences, the conditioned
adapter (MultiTRON-style), the barycentric soup, tuning that stops on validation, and a K = 4 run end to end."""
import json
import os

import pytest
import torch

from conftest import TEST_CONFIG, run_on_backbone_copy
from recbole_paragon import run_recbole_paragon
from recbole_paragon.generators import ConditionedAdapter, generator_from_state
from recbole_paragon.model.adapter import Adapter
from recbole_paragon.preference import (budgeted_preferences, matches_any, normalize_preference, ray_preferences,
                                        uniform_preferences)
from recbole_paragon.training.adapter_trainer import AdapterTrainer
from recbole_paragon.training.bank import bank_settings
from recbole_paragon.generators.barycentric import barycentric_weights

from test_adapter_bank import tuned_trainer


def test_a_budgeted_bank_is_the_vertices_then_nested_low_discrepancy_points():
    for sampler in ("sobol", "halton"):
        bank = budgeted_preferences(4, 30, sampler, seed=3)
        assert bank.shape == (30, 4) and torch.allclose(bank.sum(1), torch.ones(30)) and (bank >= 0).all()
        assert torch.equal(bank[:4], torch.eye(4)) and (bank[4:] > 0).all()  # interior points
        assert torch.equal(budgeted_preferences(4, 12, sampler, seed=3), bank[:12])  # nested budgets
        assert not torch.equal(budgeted_preferences(4, 30, sampler, seed=4), bank)
    spread = budgeted_preferences(3, 67, "sobol", 0)[3:]
    assert spread.min(0).values.max() < 0.05 and spread.max(0).values.min() > 0.8  # fills the simplex
    with pytest.raises(ValueError, match="bank_budget=3 is too small for 4 objectives"):
        budgeted_preferences(4, 3)


def test_uniform_test_preferences_are_seeded_and_never_a_bank_preference():
    bank = budgeted_preferences(5, 20)
    drawn = uniform_preferences(5, 25, seed=7, avoid=bank)
    assert drawn.shape == (25, 5) and torch.allclose(drawn.sum(1), torch.ones(25))
    assert torch.equal(drawn, uniform_preferences(5, 25, seed=7, avoid=bank))
    assert not matches_any(drawn, bank).any()
    assert not matches_any(uniform_preferences(5, 5, seed=7, avoid=drawn[:5]), drawn[:5]).any()


def test_rays_move_one_weight_while_the_others_keep_their_ratio():
    rays = ray_preferences(4, 2, seed=1)
    assert rays.shape == (4 * 2 * 4, 4) and torch.allclose(rays.sum(1), torch.ones(len(rays)))
    for start in range(0, len(rays), 4):
        ray, index = rays[start:start + 4], start // 8
        assert ray[:, index].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])
        others = torch.cat([ray[:, :index], ray[:, index + 1:]], 1)
        assert torch.allclose(others / others.sum(1, keepdim=True), (others / others.sum(1, keepdim=True))[:1])
    assert torch.equal(rays, ray_preferences(4, 2, seed=1)) and not torch.equal(rays, ray_preferences(4, 2, seed=2))


def test_a_preference_of_the_wrong_length_names_k_and_the_objectives():
    names = ["accuracy", "diversity", "exposure", "calibration"]
    with pytest.raises(ValueError, match=r"needs 4 weights, one per objective \(accuracy, diversity, exposure, "
                                         r"calibration\), got 5"):
        normalize_preference([0.2] * 5, names)


def test_the_conditioned_adapter_moves_only_the_first_bias_with_the_preference():
    adapter = Adapter(16, 4)
    model = ConditionedAdapter(3, 16, 4, base=adapter.get_vector())
    preferences = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    assert torch.equal(model(preferences), adapter.get_vector().expand(2, -1))  # untrained: the base adapter
    torch.nn.init.normal_(model.shift.weight)
    vectors = model(preferences)
    w1 = 16 * 4
    changed = (vectors[0] != vectors[1]).nonzero().flatten()
    assert changed.min() >= w1 and changed.max() < w1 + 4  # b1 only
    restored = generator_from_state(model.state_dict_plain())
    assert isinstance(restored, ConditionedAdapter) and torch.equal(restored(preferences), vectors)


def test_barycentric_weights_reproduce_a_corner_and_blend_inside_a_cell():
    points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.3, 0.3]], dtype=torch.float64)
    at_corner = barycentric_weights(points, points[3:])
    assert at_corner[0].tolist() == pytest.approx([0, 0, 0, 1])
    inside = barycentric_weights(points, torch.tensor([[0.2, 0.2]], dtype=torch.float64))[0]
    assert inside.sum().item() == pytest.approx(1.0) and (inside @ points).tolist() == pytest.approx([0.2, 0.2])


def test_tuning_stops_when_the_tuning_objective_stops_improving_on_validation(paragon_run):
    config, _, trainer = tuned_trainer(paragon_run, adapter_patience=1, adapter_validation_interval=5)
    # early stopping makes another bank: its settings say so (and banks of fixed steps keep their settings)
    assert bank_settings(config, trainer)["adapter_patience"] == 1
    assert "adapter_patience" not in bank_settings(*tuned_trainer(paragon_run)[::2])
    weights = torch.tensor([0.5, 0.5])
    calls = []
    original = trainer.validation_loss
    trainer.validation_loss = lambda *args: calls.append(original(*args)) or calls[-1]
    saved = trainer.tune(weights, seed=0, steps=400, checkpoints=[390])
    assert 2 <= len(calls) < 80  # stopped long before the cap of 400 steps
    assert [step for step, _ in saved] == [400]  # the checkpoint at 390 was never reached; the final is the cap
    trainer.model.set_adapter_vector(saved[-1][1])
    assert trainer.validation_loss(weights, None) == pytest.approx(min(calls), rel=1e-5)  # the best one is kept


def test_four_objectives_end_to_end_with_a_budgeted_bank(tiny_backbone_dir, tmp_path, monkeypatch):
    methods = ["diffusion", "conditioned", "retune", "barycentric_soup", "soup", "backbone"]
    config, _ = run_on_backbone_copy(tiny_backbone_dir, tmp_path, {
        "objectives": ["accuracy", "diversity", "exposure", "calibration"], "bank_budget": 8, "adapter_steps": 20,
        "bank_checkpoints": [10], "evaluation_sample": 3, "evaluation_rays": 1, "evaluation_methods": methods,
        "evaluation_retune_seeds": [0], "generator_validation_fraction": 0.0, "generator_steps": 20,
        "generator_eval_interval": 20, "finetune_steps": 5, "diffusion_batch_size": 16, "dit_d_model": 32,
        "dit_n_layers": 1, "dit_n_heads": 2, "diffusion_timesteps": 50, "lever_bootstrap": 20,
        "export_grid_step": 0.5})
    run_dir = config["run_dir"]
    report = json.load(open(os.path.join(run_dir, "report.json")))
    assert set(report["methods"]) == set(methods) and len(report["methods"]["diffusion"]) == 3 + 4 * 4
    assert len(report["hypervolume_reference"]["metrics"]) == 4 and report["hypervolume"]["diffusion"] >= 0
    assert set(report["ray_spearman"]["diffusion"]) == set(config["objectives"])
    assert os.path.isfile(os.path.join(run_dir, "pairs.png"))
    bank = json.load(open(os.path.join(run_dir, "bank.json")))
    assert len({tuple(a["preference"]) for a in bank["adapters"]}) == 8
    diffusion = json.load(open(os.path.join(run_dir, "generator-diffusion.json")))
    assert diffusion["diffusion_bank_blends"] > 0  # K = 4: the bank phase learns barycentric-soup blends too
    # evaluating again with other sampling settings reuses the generators and the re-tuned adapters (retuned.pt)
    def no_tuning(*args, **kwargs):
        raise AssertionError("re-tuned although retuned.pt holds the run")
    monkeypatch.setattr(AdapterTrainer, "tune", no_tuning)
    monkeypatch.chdir(tmp_path)
    steps = config.get("sampling_steps", 2) + 3
    run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config, "stage": "evaluate",
                                                                    "sampling_steps": steps})
    second = json.load(open(os.path.join(run_dir, "report.json")))
    assert [e["metrics"] for e in second["methods"]["retune"]] == [e["metrics"] for e in report["methods"]["retune"]]
    # the reused generator samples with the run's own sampling settings (more DDIM steps: other adapters)
    assert [e["metrics"] for e in second["methods"]["diffusion"]] != [e["metrics"]
                                                                      for e in report["methods"]["diffusion"]]


def test_a_bank_too_small_for_the_generator_says_how_many_it_has_and_needs(tiny_backbone_dir, tmp_path):
    with pytest.raises(ValueError, match=r"has 3 distinct preferences; the generator needs at least 5 "
                                         r"\(generator_min_bank\).*bank_budget"):
        run_on_backbone_copy(tiny_backbone_dir, tmp_path, {
            "objectives": ["accuracy", "diversity", "exposure"], "bank_budget": 3, "adapter_steps": 5,
            "bank_checkpoints": [5], "generator_min_bank": 5, "stage": "generator", "lever_bootstrap": 20})
