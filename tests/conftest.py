"""Shared fixtures: the tiny dataset, tiny configs, and a private working directory per test."""
import os

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)
TEST_CONFIG = os.path.join(TESTS_DIR, "test_model.yaml")
TEST_DATA = os.path.join(TESTS_DIR, "test_data")


@pytest.fixture
def tiny_config_dict(tmp_path):
    """Overrides that keep every artifact of a test inside its own temporary directory."""
    return {
        "data_path": TEST_DATA,
        "checkpoint_dir": str(tmp_path / "saved"),
        "log_wandb": False,
    }


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """Run a test with the temporary directory as working directory (RecBole writes log/ there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


TINY_BACKBONE_OVERRIDES = {
    "data_path": TEST_DATA,
    "epochs": 8,
    "learning_rate": 0.005,
    "metrics": ["Recall", "NDCG", "AlphaNDCG", "GroupGap"],
    "adapter_steps": 60,
    "adapter_batch_size": 128,
    "bank_checkpoints": [30],
    "log_wandb": False,
}


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory):
    """A ParagonSASRec backbone trained once per test session on ml-tiny; returns its checkpoint_dir."""
    from recbole_paragon import run_recbole_paragon

    saved = tmp_path_factory.mktemp("saved")
    cwd = os.getcwd()
    os.chdir(saved)
    try:
        run_recbole_paragon(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                            config_dict={**TINY_BACKBONE_OVERRIDES, "checkpoint_dir": str(saved), "stage": "backbone"})
    finally:
        os.chdir(cwd)
    return saved


@pytest.fixture
def paragon_run(tiny_backbone_dir, tmp_path, monkeypatch):
    """A fresh run directory holding a copy of the session's trained backbone, and a config dict pointing at it."""
    import shutil

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_backbone_dir / "ParagonSASRec-ml-tiny", run_dir)
    return {**TINY_BACKBONE_OVERRIDES, "checkpoint_dir": str(tmp_path / "saved"), "run_dir": str(run_dir)}


def run_on_backbone_copy(tiny_backbone_dir, root, overrides):
    """Copy the session's backbone into ``root/run`` and run the pipeline there with ``overrides``."""
    import shutil

    from recbole_paragon import run_recbole_paragon

    shutil.copytree(tiny_backbone_dir / "ParagonSASRec-ml-tiny", root / "run")
    config = {**TINY_BACKBONE_OVERRIDES, **overrides, "checkpoint_dir": str(root / "saved"),
              "run_dir": str(root / "run")}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return config, run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], config)
    finally:
        os.chdir(cwd)


#: A tiny bank (5 preferences x 2 checkpoints) and diffusion generator, small enough for a session fixture.
BUNDLE_OVERRIDES = {
    "bank_grid_step": 0.25, "bank_checkpoints": [45], "evaluation_holdout": False,
    "generator_validation_fraction": 0.0, "generator_steps": 600, "generator_eval_interval": 600,
    "diffusion_batch_size": 32, "dit_d_model": 64, "dit_n_layers": 2, "dit_n_heads": 2,
    "diffusion_timesteps": 100, "diffusion_ema_decay": 0.99, "export_grid_step": 0.25,
}


@pytest.fixture(scope="session")
def tiny_bundle_run(tiny_backbone_dir, tmp_path_factory):
    """``(config, result)`` of an export run on a copy of the session's backbone; its bundle is ``run/bundle``."""
    return run_on_backbone_copy(tiny_backbone_dir, tmp_path_factory.mktemp("bundle"),
                                {**BUNDLE_OVERRIDES, "stage": "export"})
