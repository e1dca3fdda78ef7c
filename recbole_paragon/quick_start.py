"""Python entry points, shaped like RecBole's ``run_recbole``."""
from __future__ import annotations

import logging
import sys
from logging import getLogger
from typing import Any, Dict, List, Optional, Sequence

from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed

from recbole_paragon import pipeline
from recbole_paragon.config import Config
from recbole_paragon.datasets import load_dataset
from recbole_paragon.model.paragon import PREFIX
from recbole_paragon.baselines import check_method_names
from recbole_paragon.compare import check_compare_settings, compare_stage, saved_comparison
from recbole_paragon.generators import GENERATORS
from recbole_paragon.objectives import check_objective_names, configured_objectives
from recbole_paragon.schema import SCHEMA
from recbole_paragon.settings import setting, setting_names

#: The stages of a Paragon run (``serve`` is the HTTP service, run without RecBole's config).
STAGES = tuple(stage for stage in SCHEMA["stage"].choices if stage != "serve")
#: Stages that end by writing the serving bundle (``generate()`` and the service read it).
EXPORTING_STAGES = ("all", "generate_one", "export")


def build_config(model=None, dataset=None, config_file_list=None, config_dict=None,
                 command_line: Optional[Sequence[str]] = None) -> Config:
    """Config for a run (every setting checked, see :mod:`recbole_paragon.schema`), with the names that registries
    define (objectives, evaluation methods) checked too, before anything is loaded or trained."""
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict,
                    command_line=command_line)
    if config["stage"] == "serve":
        raise ValueError("--stage=serve runs the HTTP service on an exported bundle, without RecBole's config: "
                         "python run_recbole_paragon.py --stage=serve [--model=M --dataset=D | --run_dir=DIR]")
    if str(config["model"]).startswith(PREFIX):
        check_objective_names(configured_objectives(config))
        check_method_names(setting_names(config, "evaluation_methods"))
        if config["stage"] == "compare":
            check_compare_settings(config)
    return config


def prepare_data(config):
    """RecBole dataset creation (once per data setup in a process) and splitting, logged as RecBole does."""
    init_seed(config["seed"], config["reproducibility"])
    dataset = load_dataset(config)
    getLogger().info(dataset)
    return dataset, data_preparation(config, dataset)


def objective_function(config_dict: Optional[Dict[str, Any]] = None, config_file_list: Optional[List[str]] = None,
                       saved: bool = True) -> Dict[str, Any]:
    """RecBole's ``objective_function`` (same signature and result) for any model, ``Paragon<Backbone>`` included.

    What RecBole's ``HyperTuning`` and scripts call: train ``config_dict['model']`` and test it. For a Paragon model
    this is the backbone stage (with ``saved``, written to the run directory with its fingerprints, reusable by
    the later stages). Returns ``{"model", "best_valid_score", "valid_score_bigger", "best_valid_result",
    "test_result"}``.
    """
    config = build_config(config_dict=config_dict, config_file_list=config_file_list)
    init_seed(config["seed"], config["reproducibility"])
    logger = getLogger()
    for handler in logger.handlers[:]:  # as RecBole's objective_function: quiet, errors only
        logger.removeHandler(handler)
    logging.basicConfig(level=logging.ERROR)
    _, (train_data, valid_data, test_data) = prepare_data(config)
    if str(config["model"]).startswith(PREFIX) and saved:
        result = pipeline.train_backbone(config, train_data, valid_data, test_data)
    else:
        result = pipeline.train_and_test(config, train_data, valid_data, test_data, saved=saved)
    return {"model": config["model"],
            **{key: result[key] for key in ("best_valid_score", "valid_score_bigger", "best_valid_result",
                                              "test_result")}}


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
    dataset, (train_data, valid_data, test_data) = prepare_data(config)
    if not str(config["model"]).startswith(PREFIX):
        return pipeline.train_and_test(config, train_data, valid_data, test_data, saved=saved)
    return run_stages(config, dataset, train_data, valid_data, test_data)


def run_stages(config, dataset, train_data, valid_data, test_data) -> Dict[str, Any]:
    """Run the requested Paragon stage(s); later stages reuse earlier artifacts whose settings match."""
    stage = config["stage"]
    notes = pipeline.check_side_information(config, dataset)
    if stage != "backbone":
        pipeline.add_objective_metrics(config)
    result = pipeline.backbone_stage(config, train_data, valid_data, test_data)
    if stage == "backbone":
        return result
    trainer = pipeline.adapter_trainer(config, result["model"], train_data, valid_data, test_data, notes)
    result["adapter_trainer"] = trainer
    if stage == "tune_one":
        return {**result, "adapter": pipeline.tune_one_stage(config, trainer)}
    result["bank"] = pipeline.bank_stage(config, trainer)
    if stage == "bank":
        return result
    result["generator"] = pipeline.generator_stage(config, trainer, result["bank"])
    if stage == "generate_one":
        result["generated"] = pipeline.generate_one_stage(config, trainer, result["generator"])
    if stage in ("all", "evaluate", "compare"):
        generators = {result["generator"].metadata["kind"]: result["generator"]}
        for kind in GENERATORS:  # every generator the evaluation compares
            if kind in setting_names(config, "evaluation_methods") and kind not in generators:
                generators[kind] = pipeline.generator_stage(config, trainer, result["bank"], kind=kind)
        if stage == "compare":  # RecBole's models trained (or reused) and put beside the evaluation's fronts
            result["report"] = compare_stage(config, trainer, result["bank"], generators)
        else:
            result["report"] = pipeline.evaluate_stage(config, trainer, result["bank"], generators,
                                                       saved_comparison(config))
    if stage in EXPORTING_STAGES:
        result["bundle"] = pipeline.export_stage(config, dataset, trainer, result["generator"])
    return result
