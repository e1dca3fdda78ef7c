"""Paragon<Backbone>: identity at initialisation, adapter vector I/O, frozen backbone, cached scoring."""
import pytest
import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_paragon import Config, get_model
from recbole_paragon.model.adapter import Adapter, adapter_size, apply_adapter_vector
from recbole_paragon.model.paragon import SCORE_HEADS

BACKBONES = sorted(SCORE_HEADS)
ML100K_OVERRIDES = {"MAX_ITEM_LIST_LENGTH": 20, "state": "WARNING", "eval_batch_size": 256, "show_progress": False}


@pytest.fixture(scope="module")
def ml100k():
    """ml-100k as RecBole ships it, one test batch of 256 users."""
    config = Config(model="ParagonSASRec", dataset="ml-100k", config_dict=ML100K_OVERRIDES)
    init_seed(config["seed"], True)
    train, _, test = data_preparation(config, create_dataset(config))
    return train._dataset, next(iter(test))[0]


def build_pair(name, dataset):
    """Plain backbone and Paragon<backbone> with identical backbone weights, both in eval mode."""
    config = Config(model=f"Paragon{name}", dataset="ml-100k", config_dict=ML100K_OVERRIDES)
    init_seed(config["seed"], True)
    plain = get_model(name)(config, dataset).eval()
    paragon = get_model(f"Paragon{name}")(config, dataset).eval()
    result = paragon.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(result.missing_keys) == sorted(f"adapter.{k}" for k in paragon.adapter.state_dict())
    assert not result.unexpected_keys
    return plain, paragon


@pytest.mark.parametrize("name", BACKBONES)
def test_untuned_adapter_reproduces_backbone_scores(ml100k, name):
    dataset, batch = ml100k
    plain, paragon = build_pair(name, dataset)
    with torch.no_grad():
        difference = (plain.full_sort_predict(batch) - paragon.full_sort_predict(batch)).abs().max().item()
    assert difference < 1e-6


@pytest.mark.parametrize("name", BACKBONES)
def test_cached_representation_rescored_matches_full_sort_predict(ml100k, name):
    dataset, batch = ml100k
    _, paragon = build_pair(name, dataset)
    torch.manual_seed(0)
    paragon.set_adapter_vector(0.3 * torch.randn(paragon.adapter.num_parameters))
    with torch.no_grad():
        expected = paragon.full_sort_predict(batch)
        hidden = paragon.sequence_representation(batch)
        rescored = paragon.score_representation(paragon.adapter(hidden))
    assert hidden.shape == (expected.shape[0], paragon.adapter.hidden_size)
    assert not torch.allclose(rescored, paragon.score_representation(hidden))  # the adapter really acts
    assert (rescored - expected).abs().max().item() < 1e-4
    items = torch.randint(1, expected.shape[1], (expected.shape[0], 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # scoring some items only gives the same columns
        subset = paragon.score_items(paragon.adapter(hidden), items)
    assert (subset - rescored.gather(1, items)).abs().max().item() < 1e-4


def test_adapter_vector_round_trip(ml100k):
    dataset, _ = ml100k
    _, paragon = build_pair("SASRec", dataset)
    vector = torch.randn(paragon.adapter.num_parameters)
    paragon.set_adapter_vector(vector)
    assert torch.equal(paragon.get_adapter_vector(), vector)


def test_reference_adapter_has_1096_parameters():
    assert Adapter(64, 8).num_parameters == adapter_size(64, 8) == 1096
    assert sum(p.numel() for p in Adapter(64, 8).parameters()) == 1096


def test_set_adapter_vector_rejects_wrong_size_and_nan():
    adapter = Adapter(16, 4)
    with pytest.raises(ValueError, match="1-D with"):
        adapter.set_vector(torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        adapter.set_vector(torch.full((adapter.num_parameters,), float("nan")))


def test_functional_adapter_matches_module():
    torch.manual_seed(0)
    adapter = Adapter(16, 4)
    adapter.set_vector(torch.randn(adapter.num_parameters))
    hidden = torch.randn(5, 16)
    vector = adapter.get_vector()
    expected = adapter(hidden)
    assert torch.allclose(apply_adapter_vector(hidden, vector, 4), expected, atol=1e-6)
    assert torch.allclose(apply_adapter_vector(hidden, vector.expand(5, -1), 4), expected, atol=1e-6)


def test_frozen_backbone_step_changes_only_adapter(ml100k):
    dataset, batch = ml100k
    _, paragon = build_pair("SASRec", dataset)
    paragon.freeze_backbone()
    before = {k: v.clone() for k, v in paragon.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in paragon.parameters() if p.requires_grad], lr=0.01)
    hidden = paragon.sequence_representation(batch)
    scores = paragon.score_representation(paragon.adapter(hidden))
    loss = torch.nn.functional.cross_entropy(scores, batch["item_id"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    changed = {k for k, v in paragon.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("adapter.") for k in changed)
    assert "adapter.up.weight" in changed


def test_backbone_fingerprint_ignores_adapter_and_tracks_backbone(ml100k):
    dataset, _ = ml100k
    _, paragon = build_pair("GRU4Rec", dataset)
    fingerprint = paragon.backbone_fingerprint()
    paragon.set_adapter_vector(torch.randn(paragon.adapter.num_parameters))
    assert paragon.backbone_fingerprint() == fingerprint
    with torch.no_grad():
        paragon.item_embedding.weight[1, 0] += 1.0
    assert paragon.backbone_fingerprint() != fingerprint
