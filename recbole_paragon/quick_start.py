"""Python entry points, shaped like RecBole's ``run_recbole``."""
from __future__ import annotations

import sys
from logging import getLogger
from typing import Any, Dict, List, Optional

from recbole.data import create_dataset, data_preparation
from recbole.utils import init_logger, init_seed, set_color

from recbole_paragon.config import Config
from recbole_paragon.model.paragon import PREFIX
from recbole_paragon.utils import get_model, get_trainer

STAGES = ("all", "backbone")


def build_config(model=None, dataset=None, config_file_list=None, config_dict=None) -> Config:
    """Config for a run, with the plugin's checks on stage names."""
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    stage = config["stage"] if "stage" in config else None
    if str(config["model"]).startswith(PREFIX) and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    return config


def prepare_data(config):
    """RecBole dataset creation and splitting, logged as RecBole does."""
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    getLogger().info(dataset)
    return dataset, data_preparation(config, dataset)


def train_and_test(config, train_data, valid_data, test_data, saved: bool = True) -> Dict[str, Any]:
    """Train ``config['model']`` with its trainer, then evaluate the best checkpoint on the test split."""
    logger = getLogger()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "model": model,
        "checkpoint": getattr(trainer, "saved_model_file", None) if saved else None,
    }


def run_recbole_paragon(
    model: Optional[str] = None,
    dataset: Optional[str] = None,
    config_file_list: Optional[List[str]] = None,
    config_dict: Optional[Dict[str, Any]] = None,
    saved: bool = True,
) -> Dict[str, Any]:
    """Run Paragon (or plain RecBole for a model without the ``Paragon`` prefix) and return RecBole-style results."""
    config = build_config(model, dataset, config_file_list, config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)
    _, (train_data, valid_data, test_data) = prepare_data(config)
    return train_and_test(config, train_data, valid_data, test_data, saved=saved)
