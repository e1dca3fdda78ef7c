"""The barycentric soup generator: the bank adapters around a preference blended, stored and served like a generator."""
import pytest
import torch

from conftest import TEST_CONFIG
from recbole_paragon import run_recbole_paragon
from recbole_paragon.bundle.load import load_bundle
from recbole_paragon.generators import BarycentricSoup, generator_from_state
from recbole_paragon.store import load_generator

SIMPLEX = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.4, 0.3, 0.3], [0.2, 0.2, 0.6]])


def bank_vectors(count: int, size: int = 7) -> torch.Tensor:
    return torch.randn(count, size, generator=torch.Generator().manual_seed(count))


def test_a_bank_preference_gets_its_own_adapter():
    vectors = bank_vectors(len(SIMPLEX))
    assert torch.allclose(BarycentricSoup(SIMPLEX, vectors)(SIMPLEX), vectors, atol=1e-5)


def test_a_bank_of_the_vertices_blends_by_the_weights_themselves():
    vectors = bank_vectors(3)
    preferences = torch.distributions.Dirichlet(torch.ones(3)).sample((6,))
    assert torch.allclose(BarycentricSoup(torch.eye(3), vectors)(preferences), preferences @ vectors, atol=1e-5)


def test_a_preference_blends_at_most_k_bank_adapters_that_surround_it():
    soup = BarycentricSoup(SIMPLEX, bank_vectors(len(SIMPLEX)))
    preferences = torch.distributions.Dirichlet(torch.ones(3)).sample((20,))
    weights = soup.weights(preferences)
    assert torch.allclose(weights.sum(1), torch.ones(20), atol=1e-5) and (weights >= 0).all()
    assert ((weights > 0).sum(1) <= 3).all()
    assert torch.allclose(weights @ SIMPLEX, preferences, atol=1e-5)  # barycentric: the corners average to w


def test_two_objectives_interpolate_between_the_nearest_bank_preferences_on_either_side():
    bank = torch.tensor([[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    vectors = bank_vectors(4)
    blended = BarycentricSoup(bank, vectors)(torch.tensor([[0.375, 0.625], [0.75, 0.25]]))
    assert torch.allclose(blended[0], (vectors[1] + vectors[2]) / 2, atol=1e-5)
    assert torch.allclose(blended[1], (vectors[2] + vectors[3]) / 2, atol=1e-5)


def test_outside_the_banks_hull_the_nearest_adapter_is_used():
    interior = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.3, 0.2, 0.5], [0.34, 0.33, 0.33]])
    vectors = bank_vectors(4)
    assert torch.allclose(BarycentricSoup(interior, vectors)(torch.tensor([[1.0, 0.0, 0.0]])), vectors[:1])


def test_its_state_is_plain_tensors_and_gives_the_same_adapters(tmp_path):
    soup = BarycentricSoup(SIMPLEX, bank_vectors(len(SIMPLEX)))
    soup.save(str(tmp_path / "soup.pt"))  # loaded with weights_only=True
    preferences = torch.distributions.Dirichlet(torch.ones(3)).sample((5,))
    assert torch.equal(BarycentricSoup.load(str(tmp_path / "soup.pt"))(preferences), soup(preferences))
    assert torch.equal(generator_from_state(soup.state_dict_plain())(preferences), soup(preferences))


def test_bad_banks_and_preferences_say_what_is_wrong():
    with pytest.raises(ValueError, match="one adapter per bank preference"):
        BarycentricSoup(torch.eye(3)[[0, 0, 1]], bank_vectors(3))
    with pytest.raises(ValueError, match=r"\[N, K\].*\[N, P\]"):
        BarycentricSoup(torch.eye(3), bank_vectors(2))
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        BarycentricSoup(torch.eye(3), bank_vectors(3))(torch.tensor([[0.5, 0.5]]))


def test_from_the_bank_it_takes_each_preferences_final_adapter_of_the_first_seed():
    preferences = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)
    steps, seeds = torch.tensor([10, 20, 10, 20] * 2), torch.tensor([0, 0, 1, 1] * 2)
    vectors = torch.arange(8.0)[:, None].repeat(1, 3)
    soup = BarycentricSoup.from_bank_rows({"preferences": preferences, "steps": steps, "seeds": seeds,
                                           "vectors": vectors})
    assert soup.preferences.tolist() == [[1.0, 0.0], [0.0, 1.0]] and soup.vectors[:, 0].tolist() == [1.0, 5.0]


def test_the_pipeline_builds_stores_and_exports_it(paragon_run):
    overrides = {**paragon_run, "bank_grid_step": 0.25, "bank_checkpoints": [45], "evaluation_holdout": False,
                 "generator_validation_fraction": 0.0, "export_grid_step": 0.25, "stage": "generate_one",
                 "generator": "barycentric_soup", "preference": [0.375, 0.625]}
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], overrides)
    bank = result["bank"].tensors()
    final = (bank["steps"] == bank["steps"].max()) & (bank["seeds"] == bank["seeds"].min())
    around = final & ((bank["preferences"][:, 0] - 0.375).abs() < 0.2)  # w1 = .25 and .5
    assert int(around.sum()) == 2
    expected = bank["vectors"][around].mean(0)
    assert torch.allclose(result["generated"]["vector"], expected, atol=1e-5)
    stored, metadata = load_generator(paragon_run["run_dir"], kind="barycentric_soup")
    assert metadata["kind"] == "barycentric_soup" and torch.allclose(stored(torch.tensor([[0.375, 0.625]]))[0],
                                                                     expected, atol=1e-5)
    served = load_bundle(paragon_run["run_dir"]).adapters
    assert torch.allclose(served.vectors(torch.tensor([[0.375, 0.625]]))[0], expected, atol=1e-5)


def test_the_diffusion_bank_phase_can_learn_seeded_blends_of_its_training_bank():
    from recbole_paragon.training.generator_trainer import GeneratorTrainer

    trainer = GeneratorTrainer.__new__(GeneratorTrainer)  # with_blends reads only the config and the seed
    trainer.seed = 3
    bank = {"preferences": torch.cat([SIMPLEX, SIMPLEX]), "steps": torch.tensor([5] * 5 + [10] * 5),
            "seeds": torch.zeros(10, dtype=torch.long), "vectors": bank_vectors(10)}
    trainer.config = {"diffusion_bank_blends": {4: 12, 6: 20}}  # by number of objectives: the largest K up to it
    assert trainer._blends_for(3) == 0 and trainer._blends_for(4) == trainer._blends_for(5) == 12
    assert trainer._blends_for(6) == trainer._blends_for(9) == 20
    trainer.config = {"diffusion_bank_blends": {"4": 12}}  # as a bundle's JSON stores it
    assert trainer._blends_for(3) == 0 and trainer._blends_for(4) == 12
    trainer.config = {"diffusion_bank_blends": 7}  # one count: every K
    assert trainer._blends_for(2) == trainer._blends_for(5) == 7
    trainer.bank_blends = 0
    assert trainer.with_blends(bank) is bank
    trainer.bank_blends = 12
    rows = trainer.with_blends(bank)
    assert all(torch.equal(rows[key][:10], bank[key]) for key in bank) and len(rows["vectors"]) == 22
    blends = {key: value[10:] for key, value in rows.items()}
    assert (blends["steps"] == 10).all() and (blends["seeds"] == -1).all()
    assert torch.allclose(blends["preferences"].sum(1), torch.ones(12)) and (blends["preferences"] > 0).all()
    assert torch.allclose(blends["vectors"], BarycentricSoup(SIMPLEX, bank["vectors"][5:])(blends["preferences"]),
                          atol=1e-5)  # the final-step adapters blended
    assert torch.equal(trainer.with_blends(bank)["preferences"], rows["preferences"])  # seeded
    trainer.seed = 4
    assert not torch.equal(trainer.with_blends(bank)["preferences"], rows["preferences"])


def test_a_flat_bank_has_no_cells_and_every_preference_gets_its_nearest_adapter():
    line = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])  # one edge of the 3-simplex
    vectors = bank_vectors(3)
    soup = BarycentricSoup(line, vectors)
    assert soup._cells is None
    assert torch.allclose(soup(torch.tensor([[0.6, 0.3, 0.1], [1.0, 0.0, 0.0]])), vectors[[1, 0]])
