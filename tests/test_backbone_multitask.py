"""Multi-task backbone training: the category auxiliary task and the backbone trainer's strategies (PMTRec's setting)."""
import pathlib

import pytest
import torch
import torch.nn.functional as F
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from conftest import TEST_CONFIG, TEST_DATA
from recbole_paragon import run_recbole_paragon
from recbole_paragon.config import Config
from recbole_paragon.model.auxiliary import auxiliary_preference, configured_auxiliary
from recbole_paragon.store import backbone_config_fingerprint
from recbole_paragon.training import BackboneTrainer
from recbole_paragon.registry import get_model

TINY = {"data_path": TEST_DATA, "state": "WARNING", "log_wandb": False}
MULTITASK = {**TINY, "backbone_auxiliary": ["category"], "backbone_auxiliary_weights": [0.5]}


def tiny_config(tmp_path, **overrides):
    return Config(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                  config_dict={**MULTITASK, "checkpoint_dir": str(tmp_path / "saved"), **overrides})


@pytest.fixture(scope="module")
def tiny_multitask(tmp_path_factory):
    """A ParagonSASRec with the category task on ml-tiny, and one training batch."""
    config = tiny_config(tmp_path_factory.mktemp("multitask"))
    init_seed(config["seed"], True)
    train, _, _ = data_preparation(config, create_dataset(config))
    model = get_model("ParagonSASRec")(config, train._dataset)
    return config, model, next(iter(train)), train


def test_backbone_losses_are_own_loss_then_category_loss(tiny_multitask):
    config, model, batch, train = tiny_multitask
    model.eval()  # no dropout: both computations see the same network
    losses, representation = model.backbone_losses(batch)
    assert len(losses) == 2
    assert torch.allclose(losses[0], model.calculate_loss(batch))
    task = model.auxiliary_tasks["category"]
    assert torch.allclose(representation, model.differentiable_representation(batch))  # the scored representation
    categories = task.item_categories[batch["item_id"]]
    assert categories.sum(1).min() >= 1  # every target item has at least one genre
    expected = F.binary_cross_entropy_with_logits(task.head(representation), categories)
    assert torch.allclose(losses[1], expected)
    (gradient,) = torch.autograd.grad(losses[1], representation)
    assert gradient.abs().sum() > 0  # the task loss reaches the representation strategies weight per user


def test_auxiliary_heads_do_not_change_scores(tiny_multitask):
    config, model, batch, train = tiny_multitask
    plain_config = tiny_config(pathlib.Path(config["checkpoint_dir"]).parent, backbone_auxiliary=[])
    plain = get_model("ParagonSASRec")(plain_config, train._dataset)
    result = plain.load_state_dict(model.state_dict(), strict=False)
    assert result.unexpected_keys and all(k.startswith("auxiliary_tasks.") for k in result.unexpected_keys)
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(model.full_sort_predict(batch), plain.full_sort_predict(batch))


@pytest.mark.parametrize("strategy", ["linear", "pub", "pmtrec"])
def test_each_strategy_trains_backbone_and_auxiliary_task(tiny_multitask, strategy):
    config, _, _, train = tiny_multitask
    config["backbone_strategy"] = strategy
    init_seed(config["seed"], True)
    model = get_model("ParagonSASRec")(config, train._dataset)
    trainer = BackboneTrainer(config, model)
    assert trainer.strategy.name == strategy
    head_before = model.auxiliary_tasks["category"].head.weight.detach().clone()
    embedding_before = model.item_embedding.weight.detach().clone()
    adapter_before = model.get_adapter_vector()
    first = trainer._train_epoch(train, 0)
    second = trainer._train_epoch(train, 1)
    assert len(first) == 2 and all(torch.isfinite(torch.tensor(first)))
    assert second[0] < first[0] and second[1] < first[1]  # both losses fall
    assert not torch.equal(model.auxiliary_tasks["category"].head.weight, head_before)
    assert not torch.equal(model.item_embedding.weight, embedding_before)
    assert torch.equal(model.get_adapter_vector(), adapter_before)  # the adapter stays the identity
    if strategy == "pmtrec":
        assert trainer.strategy.epoch == 2 and trainer.strategy.last_row_weights.shape[0] == 2


def test_linear_multitask_step_is_adam_on_weighted_sum(tiny_multitask):
    config, _, batch, train = tiny_multitask
    config["backbone_strategy"] = "linear"
    torch.manual_seed(0)
    model = get_model("ParagonSASRec")(config, train._dataset).eval()
    reference = get_model("ParagonSASRec")(config, train._dataset).eval()
    reference.load_state_dict(model.state_dict())
    trainer = BackboneTrainer(config, model)
    losses, representation = model.backbone_losses(batch)
    trainer.strategy.step(losses, trainer.optimizer, [p for p in model.parameters() if p.requires_grad],
                          rows=representation)
    optimizer = torch.optim.Adam([p for p in reference.parameters() if p.requires_grad], lr=config["learning_rate"])
    ref_losses, _ = reference.backbone_losses(batch)
    w = auxiliary_preference(config, ["category"])
    assert w == pytest.approx([1 / 1.5, 0.5 / 1.5])
    (w[0] * ref_losses[0] + w[1] * ref_losses[1]).backward()
    optimizer.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_multitask_backbone_stage_saves_and_reloads_heads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = {**MULTITASK, "checkpoint_dir": str(tmp_path / "saved"), "stage": "backbone", "epochs": 1,
                 "backbone_strategy": "pmtrec"}
    first = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], overrides)
    assert not first["reused"]
    assert any(k.startswith("auxiliary_tasks.category.") for k in first["model"].state_dict())
    again = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], overrides)
    assert again["reused"]  # same settings: the saved backbone, heads included, loads and matches its fingerprint
    assert again["model"].backbone_fingerprint() == first["model"].backbone_fingerprint()


def test_fingerprint_follows_multitask_settings(tmp_path):
    base = backbone_config_fingerprint(tiny_config(tmp_path))
    assert backbone_config_fingerprint(tiny_config(tmp_path, backbone_strategy="pub")) != base
    assert backbone_config_fingerprint(tiny_config(tmp_path, backbone_auxiliary_weights=[0.2])) != base
    assert backbone_config_fingerprint(tiny_config(tmp_path, pmtrec_alpha=1.5)) == base  # linear ignores PMTRec's
    assert backbone_config_fingerprint(tiny_config(tmp_path, backbone_strategy="pmtrec", pmtrec_alpha=1.5)) != \
        backbone_config_fingerprint(tiny_config(tmp_path, backbone_strategy="pmtrec"))
    no_tasks = backbone_config_fingerprint(tiny_config(tmp_path, backbone_auxiliary=[]))
    assert backbone_config_fingerprint(tiny_config(tmp_path, backbone_auxiliary=[], backbone_strategy="pub")) == no_tasks


@pytest.mark.parametrize("overrides, message", [
    ({"backbone_auxiliary": ["genre"]}, r"backbone_auxiliary=\['genre'\] is not allowed.*from category"),
    ({"backbone_auxiliary": "[category,category]"}, "names a task twice"),
    ({"backbone_auxiliary_weights": [0.1, 0.2]}, "one weight per auxiliary task"),
    ({"backbone_auxiliary_weights": [0.0]}, r"backbone_auxiliary_weights=\[0.0\] is not allowed: .* > 0"),
    ({"backbone_auxiliary_weights": [float("nan")]}, r"backbone_auxiliary_weights=\[nan\] is not allowed"),
])
def test_bad_auxiliary_settings_are_rejected(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):  # the schema's rules fail the config itself, earlier
        config = tiny_config(tmp_path, **overrides)
        auxiliary_preference(config, configured_auxiliary(config))


@pytest.mark.parametrize("overrides, message", [
    ({"backbone_strategy": "nash"}, "backbone_strategy='nash' is not allowed: .*one of linear, pub, pmtrec"),
    ({"backbone_strategy": "pmtrec", "pmtrec_temperature": 0}, "pmtrec_temperature=0 is not allowed: .*> 0"),
    ({"category_field": "genre"}, "category auxiliary task .*category_field='genre'"),
])
def test_bad_multitask_run_fails_before_anything_is_written(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                            {**MULTITASK, "checkpoint_dir": str(tmp_path / "saved"), "stage": "backbone", **overrides})
    assert not (tmp_path / "saved").exists()
