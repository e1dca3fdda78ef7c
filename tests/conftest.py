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
