"""Every wrappable RecBole sequential model, with each loss it supports, through ``objective_function`` (in the
style of RecBole's ``tests/model/test_model_auto.py``): a one-epoch ``Paragon<X>`` run on ml-tiny. The dataset is
loaded once for the whole module (the runs share one data setup)."""
import math

import pytest
from recbole.utils import get_model as recbole_get_model

from conftest import TEST_CONFIG, TEST_DATA
import recbole_paragon.datasets as datasets
from recbole_paragon.model.paragon import SCORE_HEADS, UNSUPPORTED, make_paragon_class, supported_losses
from recbole_paragon.quick_start import objective_function

CASES = [(name, loss) for name in sorted(SCORE_HEADS) for loss in supported_losses(name)]
#: RecBole's own constraints on the tiny test configuration (FEARec divides by n_layers - 1).
MODEL_OVERRIDES = {"FEARec": {"n_layers": 2}}


LOADS = []


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The shared settings; RecBole's dataset loading is counted while the module runs."""
    original = datasets.create_dataset
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "_LOADED", type(datasets._LOADED)())
        patch.setattr(datasets, "create_dataset", lambda config: LOADS.append(config["model"]) or original(config))
        yield {"dataset": "ml-tiny", "data_path": TEST_DATA, "epochs": 1, "train_batch_size": 1024,
               "checkpoint_dir": str(tmp_path_factory.mktemp("saved")), "log_wandb": False, "state": "ERROR"}


@pytest.mark.parametrize("name, loss", CASES)
def test_paragon_model_trains_and_tests_through_objective_function(base, name, loss):
    config = {**base, **MODEL_OVERRIDES.get(name, {}), "model": f"Paragon{name}", "loss_type": loss}
    result = objective_function(config, [TEST_CONFIG], saved=False)
    assert set(result) == {"model", "best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}
    assert result["model"] == f"Paragon{name}"
    assert result["valid_score_bigger"] is True
    ndcg = result["test_result"]["ndcg@10"]
    assert math.isfinite(ndcg) and 0.0 <= ndcg <= 1.0
    assert math.isfinite(result["best_valid_score"])


def test_the_module_loaded_the_dataset_once(base):
    assert len(LOADS) == 1, LOADS


def test_every_recbole_sequential_model_is_wrapped_or_refused_with_a_reason():
    import recbole.model.sequential_recommender as sequential

    names = {n for n in dir(sequential) if isinstance(getattr(sequential, n), type)}
    assert names == set(SCORE_HEADS) | set(UNSUPPORTED), names ^ (set(SCORE_HEADS) | set(UNSUPPORTED))
    for name in UNSUPPORTED:
        with pytest.raises(ValueError, match=UNSUPPORTED[name][:20]):
            make_paragon_class(recbole_get_model(name))


def test_a_loss_the_backbone_does_not_support_is_refused(base):
    with pytest.raises(ValueError, match="ParagonCORE trains with loss_type CE"):
        objective_function({**base, "model": "ParagonCORE", "loss_type": "BPR"}, [TEST_CONFIG], saved=False)
