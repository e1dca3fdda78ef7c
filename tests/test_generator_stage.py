"""Generator stage on a tiny bank: reproduces bank adapters, follows the bank's direction, serves, rejects misuse."""

import pytest
import torch

from conftest import TEST_CONFIG, run_on_backbone_copy
from recbole_paragon import generate, generate_batch, run_recbole_paragon
from recbole_paragon.model.adapter import apply_adapter_vector
from recbole_paragon.preference import matches_any
from recbole_paragon.store import generator_exists, generator_paths, load_generator
from recbole_paragon.training.bank_interpolation import FunctionalInterpolation, adapter_outputs, neighbour_weights

GENERATOR_OVERRIDES = {
    "bank_grid_step": 0.25, "bank_checkpoints": [45], "evaluation_holdout": False,
    "generator_validation_fraction": 0.0, "generator_steps": 600, "generator_eval_interval": 600,
    "diffusion_batch_size": 32, "dit_d_model": 64, "dit_n_layers": 2, "dit_n_heads": 2,
    "diffusion_timesteps": 100, "diffusion_ema_decay": 0.99,
}


@pytest.fixture(scope="module")
def generator_run(tiny_backbone_dir, tmp_path_factory):
    """Bank (5 preferences x 2 checkpoints) and a diffusion generator trained on it, once for this module."""
    return run_on_backbone_copy(tiny_backbone_dir, tmp_path_factory.mktemp("generator"),
                                {**GENERATOR_OVERRIDES, "stage": "generate_one", "preference": [0.5, 0.5]})


def test_generated_adapter_reproduces_bank_adapter_metrics(generator_run):
    _, result = generator_run
    assert not any(key.startswith("diffusion_bank_blends") for key in result["generator"].metadata)  # K = 2: off
    bank = result["bank"]
    final = [i for i, step in enumerate(bank.steps) if step == max(bank.steps)]
    generated = result["generator"].vectors(torch.tensor([bank.preferences[i] for i in final]))
    # Tolerance: the tiny backbone's valid NDCG@10 is ~.05 over 300 users (one standard error ~.01); the generated
    # adapter must land within 0.03 (3 s.e.) on NDCG@10 and within 0.05 on AlphaNDCG@10 (range ~.3-.6 across the bank).
    assert "generated" in result and result["generated"]["seconds"] < 5
    errors = []
    trainer = result["adapter_trainer"]
    for i, vector in zip(final, generated):
        metrics = trainer.evaluate_vector(vector, "valid")
        errors.append((abs(metrics["ndcg@10"] - bank.metrics[i]["ndcg@10"]),
                       abs(metrics["alphandcg@10"] - bank.metrics[i]["alphandcg@10"])))
    assert max(e[0] for e in errors) < 0.03, errors
    assert max(e[1] for e in errors) < 0.05, errors
    # direction: the bank's diversity-only adapter is more diverse than its accuracy-only one; so must generation be
    ends = [trainer.evaluate_vector(v, "valid") for v in result["generator"].vectors(torch.tensor([[1.0, 0.0],
                                                                                                    [0.0, 1.0]]))]
    assert ends[1]["alphandcg@10"] > ends[0]["alphandcg@10"]


def test_same_seed_same_adapter_and_batched_generation(generator_run):
    config, _ = generator_run
    run_dir = config["run_dir"]
    first = generate_batch(run_dir, [[0.3, 0.7], [0.9, 0.1]], seed=7)
    second = generate_batch(run_dir, [[0.3, 0.7], [0.9, 0.1]], seed=7)
    assert torch.equal(first, second) and first.shape[0] == 2
    model = generate(run_dir, [0.3, 0.7], seed=7)
    assert torch.equal(model.get_adapter_vector(), generate_batch(run_dir, [[0.3, 0.7]], seed=7)[0])
    # every row of a batch starts from the same noise as a single call (sampling_shared_noise): a preference gets
    # the same adapter alone or batched, at any position; only float rounding of batched kernels differs
    assert torch.allclose(model.get_adapter_vector(), first[0], atol=1e-2)
    assert torch.allclose(generate(run_dir, [0.9, 0.1], seed=7).get_adapter_vector(), first[1], atol=1e-2)


def test_generator_artifact_is_plain_tensors_and_json(generator_run):
    config, result = generator_run
    state = torch.load(generator_paths(config["run_dir"], "diffusion")[0], weights_only=True)
    assert state["kind"] == "diffusion"
    _, metadata = load_generator(config["run_dir"])
    assert metadata["backbone_fingerprint"] == result["model"].backbone_fingerprint()
    assert metadata["bank_fingerprint"] == result["bank"].fingerprint()
    assert metadata["objectives"] == ["accuracy", "diversity"]


def test_generator_for_another_backbone_is_rejected(generator_run):
    config, _ = generator_run
    with pytest.raises(ValueError, match="backbone_fingerprint"):
        load_generator(config["run_dir"], {"backbone_fingerprint": "0" * 64})


@pytest.mark.parametrize("bad, message", [
    ([0.2, 0.3, 0.5], "needs 2 weights"), ([-1.0, 2.0], "non-negative"), ([float("nan"), 1.0], "finite")])
def test_generate_rejects_bad_preferences(generator_run, bad, message):
    with pytest.raises(ValueError, match=message):
        generate_batch(generator_run[0]["run_dir"], [bad])


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"steps": 10_000}, {"guidance_scale": -1.0},
                                    {"guidance_scale": float("inf")}])
def test_generate_rejects_out_of_range_sampling(generator_run, kwargs):
    with pytest.raises(ValueError):
        generate_batch(generator_run[0]["run_dir"], [[0.5, 0.5]], **kwargs)


def test_too_small_bank_is_rejected_before_training(paragon_run):
    with pytest.raises(ValueError, match="distinct preferences"):
        run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                            {**paragon_run, **GENERATOR_OVERRIDES, "stage": "generator",
                             "bank_preferences": [[1.0, 0.0], [0.0, 1.0]]})
    assert not generator_exists(paragon_run["run_dir"], "diffusion")


def test_hypernet_generator_trains_and_serves(paragon_run):
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                                 {**paragon_run, **GENERATOR_OVERRIDES, "stage": "generate_one", "generator": "hypernet",
                                  "preference": [0.2, 0.8], "generator_steps": 100, "generator_eval_interval": 100})
    assert result["generator"].metadata["kind"] == "hypernet"
    assert 0.0 <= result["generated"]["test_result"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize("strategy", ["pub", "pmtrec"])
def test_bank_and_generator_work_with_any_strategy(paragon_run, strategy):
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                                 {**paragon_run, **GENERATOR_OVERRIDES, "stage": "generate_one", "strategy": strategy,
                                  "preference": [0.5, 0.5], "generator_steps": 100, "generator_eval_interval": 100})
    assert result["bank"].settings["strategy"] == strategy and len(result["bank"]) == 10
    assert 0.0 <= result["generated"]["test_result"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize("kind", ["diffusion", "hypernet"])
def test_same_seed_gives_a_bit_identical_generator_within_its_step_budget(generator_run, kind):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    config, result = generator_run
    trainer, bank = result["adapter_trainer"], result["bank"]
    settings = {**trainer.config.final_config_dict, "generator_steps": 40, "generator_eval_interval": 20,
                "generator_validation_fraction": 0.0, "generator_patience": 5, "finetune_steps": 20}
    states, budgets = [], []
    for _ in range(2):
        generator_trainer = GeneratorTrainer(settings, trainer, bank, kind=kind)
        states.append(generator_trainer.fit(show_progress=False).state_dict_plain())
        budgets.append((generator_trainer.stopped_by, [r["step"] for r in generator_trainer.history]))
    expected = [20, 40] + ([20] if kind == "diffusion" else [])  # + the objective fine-tuning phase
    assert budgets[0] == ("step budget", expected) == budgets[1]
    first, second = (torch.cat([t.flatten().float() for t in _tensors(s)]) for s in states)
    assert first.numel() > 0 and torch.equal(first, second)


def _tensors(state):
    """Every tensor of a nested plain state, in a fixed order."""
    if torch.is_tensor(state):
        return [state]
    if isinstance(state, dict):
        return [t for key in sorted(state) for t in _tensors(state[key])]
    return []


def _fine_tuning(result, **extra):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = result["adapter_trainer"], result["bank"]
    settings = {**trainer.config.final_config_dict, "generator_steps": 40, "generator_eval_interval": 20,
                "generator_patience": 5, "finetune_steps": 40, **extra}
    generator_trainer = GeneratorTrainer(settings, trainer, bank, kind="diffusion")
    return generator_trainer, generator_trainer.fit(show_progress=False)


def test_objective_fine_tuning_lowers_the_weighted_objectives_through_the_sampler(generator_run):
    _, result = generator_run
    tuned_trainer, tuned = _fine_tuning(result, generator_validation_fraction=0.0, finetune_anchor=0.0,
                                        finetune_learning_rate=1e-3)
    _, plain = _fine_tuning(result, generator_validation_fraction=0.0, finetune_steps=0)
    assert [r["phase"] for r in tuned_trainer.history] == ["bank", "bank", "objectives", "objectives"]
    preferences = torch.stack([torch.linspace(0, 1, 16), 1 - torch.linspace(0, 1, 16)], 1)

    def weighted_loss(generator):
        vectors = generator.generate(tuned_trainer.conditions(preferences), steps=2, seed=3)
        with torch.no_grad():
            return float(tuned_trainer.objective_loss(preferences, vectors, torch.Generator().manual_seed(5)))

    assert weighted_loss(tuned) < weighted_loss(plain)
    sampled = tuned.generate_with_grad(tuned_trainer.conditions(preferences[:2]), 2)
    assert sampled.requires_grad and sampled.shape == (2, tuned.num_parameters)


def test_objective_fine_tuning_keeps_the_bank_generator_unless_it_validates_better(generator_run):
    _, result = generator_run
    trainer, generator = _fine_tuning(result, generator_validation_fraction=0.2, finetune_anchor=0.0,
                                      finetune_learning_rate=1e-3, finetune_keep_bank=True,
                                      finetune_selection="best")
    phase = [r for r in trainer.history if r["phase"] == "objectives"]
    assert phase[0]["step"] == 0 and len(phase) == 3
    assert len({r["validation_error"] for r in phase}) > 1, phase  # validated: the denoiser being fine-tuned
    validation = trainer.split()[1]
    reference = trainer.reference_metrics(validation)
    kept = trainer.validation_error(lambda p: generator.generate(trainer.conditions(p), **trainer.sampling()),
                                    validation, reference)
    assert kept == pytest.approx(min(r["validation_error"] for r in phase), abs=1e-6)


def test_objective_fine_tuning_with_an_ema_keeps_the_average_of_the_fine_tuned_weights(generator_run):
    _, result = generator_run
    settings = dict(generator_validation_fraction=0.0, finetune_anchor=0.0,
                    finetune_learning_rate=1e-3)
    _, raw = _fine_tuning(result, finetune_ema_decay=0, **settings)
    _, averaged = _fine_tuning(result, finetune_ema_decay=0.9, **settings)
    _, start = _fine_tuning(result, generator_validation_fraction=0.0, finetune_steps=0)

    def distance(generator, reference):
        return max(float((a - b).abs().max()) for a, b in zip(generator.ema.module.parameters(),
                                                              reference.ema.module.parameters()))

    # without the EMA, sampling uses the last fine-tuned weights; with it, an average that still lags behind them
    assert all(torch.equal(a, b) for a, b in zip(raw.ema.module.parameters(), raw.denoiser.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(averaged.ema.module.parameters(),
                                                     averaged.denoiser.parameters()))
    assert 0 < distance(averaged, start) < distance(raw, start)
    assert averaged.ema.decay == 0.9


@pytest.mark.parametrize("bad", [1, 1.5, -0.1, "fast", True])
def test_bad_fine_tuning_ema_decay_is_rejected_before_training(generator_run, bad):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]
    settings = {**trainer.config.final_config_dict, "finetune_ema_decay": bad}
    with pytest.raises(ValueError, match="finetune_ema_decay=.* is not allowed: .*< 1"):
        GeneratorTrainer(settings, trainer, bank, kind="diffusion")


@pytest.mark.parametrize("bad", [-1, 2.5, "many"])
def test_bad_objective_fine_tuning_steps_are_rejected(generator_run, bad):
    with pytest.raises(ValueError, match="finetune_steps=.* is not allowed: finetune_steps takes an integer >= 0"):
        _fine_tuning(generator_run[1], generator_validation_fraction=0.0, finetune_steps=bad)


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_bad_fine_tuning_concentration_is_rejected_before_training(generator_run, bad):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]
    settings = {**trainer.config.final_config_dict, "finetune_concentration": bad}
    with pytest.raises(ValueError, match="finetune_concentration=.* is not allowed: .*> 0"):
        GeneratorTrainer(settings, trainer, bank, kind="diffusion")


def test_fine_tuning_preferences_put_exact_zeros_on_the_simplex_when_asked(generator_run):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]
    base = trainer.config.final_config_dict

    def sampled(share):
        torch.manual_seed(0)
        settings = {**base, "finetune_zero_share": share}
        return GeneratorTrainer(settings, trainer, bank, kind="diffusion").fine_tuning_preferences(2000)

    plain, sparse = sampled(0.0), sampled(0.3)
    assert plain.shape == sparse.shape == (2000, len(trainer.objective_names))
    for preferences in (plain, sparse):
        assert torch.allclose(preferences.sum(1), torch.ones(2000)) and (preferences >= 0).all()
    assert not (plain == 0).any()
    vertices = (sparse == 0).any(1).float().mean()  # K = 2: one weight zeroed -> a vertex (never both)
    assert 0.35 < vertices < 0.5 and not (sparse == 0).all(1).any()
    with pytest.raises(ValueError, match="finetune_zero_share=.* is not allowed"):
        sampled(1.0)


def test_a_generator_conditioned_on_zero_weights_generates_through_its_metadata(generator_run):
    from recbole_paragon.generators.generated import GeneratedAdapters

    trainer, generator = _fine_tuning(generator_run[1], generator_validation_fraction=0.0,
                                      diffusion_condition_on_zero=True, finetune_zero_share=0.3)
    assert trainer.conditions(torch.tensor([[0.0, 1.0]])).shape == (1, 5)  # preference, two flags, step
    metadata = {**generator_run[1]["generator"].metadata, "condition_on_zero": True}
    adapters = GeneratedAdapters(generator, metadata)
    vectors = adapters.vectors(torch.tensor([[0.0, 1.0], [0.5, 0.5]]))
    assert vectors.shape == (2, generator.num_parameters) and torch.isfinite(vectors).all()
    with pytest.raises(ValueError):  # without the flags the condition no longer fits the generator
        GeneratedAdapters(generator, {**metadata, "condition_on_zero": False}).vectors(torch.tensor([[0.5, 0.5]]))


def test_objective_fine_tuning_replaces_the_bank_generator_by_default(generator_run):
    _, result = generator_run
    trainer, generator = _fine_tuning(result, generator_validation_fraction=0.2, finetune_anchor=0.0,
                                      finetune_learning_rate=1e-3, finetune_selection="best")
    phase = [r for r in trainer.history if r["phase"] == "objectives"]
    assert [r["step"] for r in phase] == [20, 40]  # no step-0 record: the bank-phase state is not a candidate
    validation = trainer.split()[1]
    used = trainer.validation_error(lambda p: generator.generate(trainer.conditions(p), **trainer.sampling()),
                                    validation, trainer.reference_metrics(validation))
    assert used == pytest.approx(min(r["validation_error"] for r in phase), abs=1e-6)


def test_bank_neighbours_interpolate_linearly_and_keep_vertices_to_themselves():
    bank = torch.tensor([[0.0, 1.0], [0.25, 0.75], [0.75, 0.25]])
    weights, found = neighbour_weights(bank, torch.tensor([[0.25, 0.75], [0.5, 0.5], [0.375, 0.625], [0.1, 0.9],
                                                           [0.0, 1.0], [1.0, 0.0], [0.9, 0.1]]))
    assert torch.allclose(weights[0], torch.tensor([0.0, 1.0, 0.0]))  # a bank preference is its own target
    assert torch.allclose(weights[1], torch.tensor([0.0, 0.5, 0.5]))
    assert torch.allclose(weights[2], torch.tensor([0.0, 0.75, 0.25]))  # a quarter of the way from .25 to .75
    assert torch.allclose(weights[4], torch.tensor([1.0, 0.0, 0.0]))  # the vertex the bank holds: itself
    # the interior is not interpolated from a vertex (.1 lies between (0, 1) and .25), a vertex the bank does not
    # hold is not extrapolated from the interior, and nothing beyond the bank's end is extrapolated
    assert found.tolist() == [True, True, True, False, True, False, False]
    assert float(weights[[3, 5, 6]].abs().sum()) == 0.0


def test_three_objective_neighbours_are_the_barycentric_coordinates_of_their_cell_on_the_same_face():
    grid = [(i / 10, j / 10, (10 - i - j) / 10) for i in range(11) for j in range(11 - i)]
    bank = torch.tensor(grid)
    queries = torch.tensor([[0.25, 0.25, 0.5], [0.33, 0.33, 0.34], [0.0, 0.25, 0.75], [0.3, 0.3, 0.4],
                            [0.05, 0.05, 0.9], [0.0, 0.0, 1.0]])
    weights, found = neighbour_weights(bank, queries)
    assert found.tolist() == [True, True, True, True, False, True]
    assert torch.allclose(weights[found] @ bank, queries[found], atol=1e-6)  # linear: the weights rebuild the row
    assert torch.allclose(weights.sum(1), found.float())
    used = [bank[w > 0] for w in weights]
    assert all(len(u) <= 3 for u in used) and (used[2][:, 0] == 0).all()  # the face (0, ., .) from its own edge
    assert (used[0] > 0).all() and (used[1] > 0).all()  # the interior only from interior bank preferences
    assert len(used[3]) == 1 and len(used[5]) == 1  # a bank preference, a vertex: themselves
    # (.05, .05, .9) lies between the interior bank preferences and the faces: not extrapolated


def test_functional_targets_are_the_bank_outputs_at_bank_preferences_and_interpolate_between():
    bank = torch.tensor([[0.0, 1.0], [0.25, 0.75], [0.75, 0.25]])
    rng = torch.Generator().manual_seed(0)
    vectors = torch.randn(4, 4 * 16 + 4 + 16 * 4 + 16, generator=rng)  # hidden 16, adapter_dim 4
    owners = torch.tensor([0, 1, 2, 2])  # two tuning seeds at (.75, .25): their outputs are averaged
    interpolation = FunctionalInterpolation(bank, vectors, owners, adapter_dim=4)
    hidden = torch.randn(32, 16, generator=rng)
    outputs = adapter_outputs(vectors, hidden, 4)
    targets, found = interpolation.targets(torch.tensor([[0.25, 0.75], [0.5, 0.5], [0.0, 1.0], [0.9, 0.1]]), hidden)
    assert torch.allclose(targets[0], outputs[1], atol=1e-5)
    assert torch.allclose(targets[1], (outputs[1] + (outputs[2] + outputs[3]) / 2) / 2, atol=1e-5)
    assert torch.allclose(targets[2], outputs[0], atol=1e-5)
    assert found.tolist() == [True, True, True, False]  # beyond the bank's last preference: nothing to interpolate
    # an adapter's output is the function it adds: what apply_adapter_vector adds to the states
    assert torch.allclose(apply_adapter_vector(hidden, vectors[1], 4), hidden + outputs[1], atol=1e-5)
    at_bank = interpolation.loss(torch.tensor([[0.25, 0.75], [1.0, 0.0]]), vectors[1:3], hidden)
    assert float(at_bank) < 1e-10  # the bank adapter itself, and a preference without neighbours, cost nothing
    assert float(interpolation.loss(torch.tensor([[0.5, 0.5]]), vectors[1:2], hidden)) > 0.01
    with pytest.raises(ValueError, match="one owner row"):
        FunctionalInterpolation(bank, vectors, owners[:2], adapter_dim=4)


def test_fine_tuning_towards_the_bank_behaviour_generates_nearer_to_it(generator_run):
    result = generator_run[1]
    settings = dict(generator_validation_fraction=0.0, finetune_ema_decay=0,
                    finetune_learning_rate=1e-3)
    trainer, free = _fine_tuning(result, finetune_functional=0.0, **settings)
    _, guided = _fine_tuning(result, finetune_functional=10.0, **settings)
    interpolation = FunctionalInterpolation.from_bank_rows(result["bank"].tensors(),
                                                           trainer.adapter_trainer.model.adapter.adapter_dim)
    between = torch.tensor([[0.125, 0.875], [0.375, 0.625], [0.625, 0.375], [0.875, 0.125]])
    hidden = trainer.adapter_trainer.caches["valid"].batch(torch.arange(200)).hidden

    def distance(generator):
        vectors = generator.generate(trainer.conditions(between), **trainer.sampling())
        return float(interpolation.loss(between, vectors, hidden))

    assert distance(guided) < distance(free)


def test_functional_target_draws_on_the_validation_preferences_but_not_the_excluded_ones(generator_run):
    result = generator_run[1]
    trainer, _ = _fine_tuning(result, finetune_steps=0, generator_steps=0,
                              generator_validation_fraction=0.2)
    excluded = torch.tensor([[0.25, 0.75]])
    train, validation = trainer.split(excluded)
    available = trainer.available_rows(excluded)
    seen = torch.unique(available["preferences"], dim=0)
    assert len(validation) == 1 and matches_any(validation, seen).all()  # the validation preference is a target
    assert not matches_any(excluded, seen).any() and len(available["vectors"]) == len(train["vectors"]) + 2


def test_objective_loss_weights_each_preference_row(generator_run):
    trainer, _ = _fine_tuning(generator_run[1], finetune_steps=0, generator_steps=0)
    preferences = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    vectors = torch.randn(2, trainer.adapter_trainer.model.adapter.num_parameters,
                          generator=torch.Generator().manual_seed(0)) * 0.1

    def loss(weights=None):
        return float(trainer.objective_loss(preferences, vectors, torch.Generator().manual_seed(1), weights))

    plain = loss()
    assert loss(torch.tensor([3.0, 3.0])) == pytest.approx(3 * plain, rel=1e-5)
    first, second = loss(torch.tensor([1.0, 0.0])), loss(torch.tensor([0.0, 1.0]))
    assert first + second == pytest.approx(plain, rel=1e-5) and abs(first - second) > 1e-4


@pytest.mark.parametrize("bad", [-0.5, "strong", True])
def test_bad_functional_weight_is_rejected_before_training(generator_run, bad):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]
    settings = {**trainer.config.final_config_dict, "finetune_functional": bad}
    with pytest.raises(ValueError, match="finetune_functional=.* is not allowed: .*>= 0"):
        GeneratorTrainer(settings, trainer, bank, kind="diffusion")


def test_functional_target_is_kept_to_runs_with_at_most_the_configured_objectives(generator_run):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]  # two objectives

    def weight(limit):
        settings = {**trainer.config.final_config_dict, "finetune_functional": 3.0,
                    "finetune_functional_max_objectives": limit}
        return GeneratorTrainer(settings, trainer, bank, kind="diffusion").objective_functional

    assert weight(None) == weight(2) == 3.0 and weight(1) == 0.0
    for bad in (0, "two", True):
        with pytest.raises(ValueError, match="finetune_functional_max_objectives=.* is not allowed: .*>= 1 or ~"):
            weight(bad)


@pytest.mark.parametrize("selection, functional, kept", [("last", 0.0, "last"), ("auto", 3.0, "last"),
                                                          ("auto", 0.0, "best"), ("best", 3.0, "best")])
def test_objective_phase_keeps_the_validated_best_or_the_final_state(generator_run, selection, functional, kept):
    trainer, generator = _fine_tuning(generator_run[1], generator_validation_fraction=0.2, generator_patience=1,
                                      finetune_steps=60, finetune_learning_rate=1e-3,
                                      finetune_selection=selection,
                                      finetune_functional=functional)
    phase = [r for r in trainer.history if r["phase"] == "objectives"]
    validation = trainer.split()[1]
    used = trainer.validation_error(lambda p: generator.generate(trainer.conditions(p), **trainer.sampling()),
                                    validation, trainer.reference_metrics(validation))
    if kept == "last":  # every step runs (no early stopping) and the final state is the one returned
        assert [r["step"] for r in phase] == [20, 40, 60] and used == pytest.approx(phase[-1]["validation_error"],
                                                                                      abs=1e-6)
    else:
        assert used == pytest.approx(min(r["validation_error"] for r in phase), abs=1e-6)


def test_unknown_objective_selection_is_rejected(generator_run):
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer, bank = generator_run[1]["adapter_trainer"], generator_run[1]["bank"]
    settings = {**trainer.config.final_config_dict, "finetune_selection": "newest"}
    with pytest.raises(ValueError, match="finetune_selection='newest' is not allowed: .*best, last, auto"):
        GeneratorTrainer(settings, trainer, bank, kind="diffusion")
