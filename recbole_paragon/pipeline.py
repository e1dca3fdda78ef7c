"""Paragon's stages on one run directory: backbone -> adapter bank (-> generator -> evaluation).

Every stage writes its artifact into the run directory and reuses it on the next run when the settings it depends
on (its fingerprint) still match, so re-running is cheap and an interrupted run continues after its last finished
stage.
"""
from __future__ import annotations

import hashlib
import json
import os
from logging import getLogger
from typing import Any, Dict

import torch
from recbole.utils import init_seed, set_color

from recbole_paragon.bank import AdapterBank, collect_bank
from recbole_paragon.io import run_directory, write_json
from recbole_paragon.objectives import build_objectives
from recbole_paragon.utils import config_get
from recbole_paragon.trainer.adapter_trainer import AdapterTrainer
from recbole_paragon.utils import get_model, get_trainer

BACKBONE_CHECKPOINT = "backbone.pth"
BACKBONE_METADATA = "backbone.json"

#: Config keys that do not change the backbone (Paragon stages, logging, evaluation-only settings).
_NOT_BACKBONE_PREFIXES = ("adapter_", "bank_", "generator_", "diffusion_", "pub_", "pmtrec_", "diversity_",
                          "fairness_", "evaluation_", "ray_", "tune_", "alpha_ndcg")
_NOT_BACKBONE_KEYS = {"stage", "preference", "objectives", "strategy", "run_dir", "show_progress", "state",
                      "metrics", "topk", "valid_metric", "checkpoint_dir", "category_field", "group_field",
                      "eval_batch_size", "log_wandb", "wandb_project", "gpu_id", "use_gpu", "device", "worker",
                      "train_adapter_with_backbone"}


def backbone_config_fingerprint(config) -> str:
    """Hash of every config value the backbone depends on."""
    relevant = {
        key: value for key, value in sorted(config.final_config_dict.items())
        if key not in _NOT_BACKBONE_KEYS and not key.startswith(_NOT_BACKBONE_PREFIXES)
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def check_side_information(config, dataset) -> None:
    """Fail before any training if an objective lacks the dataset fields it needs."""
    if str(config["model"]).startswith("Paragon") and config_get(config, "stage", "all") != "backbone":
        build_objectives(config_get(config, "objectives", ["accuracy", "diversity"]), config, dataset, None)


def train_and_test(config, train_data, valid_data, test_data, saved: bool = True) -> Dict[str, Any]:
    """Train ``config['model']`` with its trainer, then evaluate the best checkpoint on the test split."""
    logger = getLogger()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"])
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": dict(best_valid_result),
        "test_result": dict(test_result),
        "model": model,
        "checkpoint": trainer.saved_model_file if saved else None,
    }


def train_backbone(config, train_data, valid_data, test_data) -> Dict[str, Any]:
    """Train the backbone with RecBole's loop (adapter attached as identity) and record its fingerprints."""
    result = train_and_test(config, train_data, valid_data, test_data, saved=True)
    metadata = {k: v for k, v in result.items() if k not in ("model", "checkpoint")}
    write_json(os.path.join(run_directory(config), BACKBONE_METADATA),
               {"config_fingerprint": backbone_config_fingerprint(config),
                "backbone_fingerprint": result["model"].backbone_fingerprint(), **metadata})
    return {**result, "reused": False}


def saved_backbone_matches(config) -> bool:
    """Whether the run directory holds a backbone trained with the current settings."""
    directory = run_directory(config)
    metadata_path = os.path.join(directory, BACKBONE_METADATA)
    if not (os.path.isfile(metadata_path) and os.path.isfile(os.path.join(directory, BACKBONE_CHECKPOINT))):
        return False
    with open(metadata_path, encoding="utf-8") as handle:
        return json.load(handle).get("config_fingerprint") == backbone_config_fingerprint(config)


def load_backbone(config, dataset) -> Dict[str, Any]:
    """The saved backbone of the run directory, in a fresh ``Paragon<Backbone>``."""
    directory = run_directory(config)
    with open(os.path.join(directory, BACKBONE_METADATA), encoding="utf-8") as handle:
        metadata = json.load(handle)
    # RecBole's own checkpoint format pickles its Config; this file was written by our backbone stage.
    checkpoint = torch.load(os.path.join(directory, BACKBONE_CHECKPOINT), map_location=config["device"],
                            weights_only=False)
    model = get_model(config["model"])(config, dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    if model.backbone_fingerprint() != metadata["backbone_fingerprint"]:
        raise ValueError(f"{directory}/{BACKBONE_CHECKPOINT} does not match its metadata; delete both to retrain")
    return {**metadata, "model": model, "checkpoint": os.path.join(directory, BACKBONE_CHECKPOINT), "reused": True}


def backbone_stage(config, train_data, valid_data, test_data) -> Dict[str, Any]:
    """Reuse the saved backbone when its settings match, else train it."""
    if saved_backbone_matches(config):
        getLogger().info(set_color("reusing backbone", "green") + f": {run_directory(config)}/{BACKBONE_CHECKPOINT}")
        return load_backbone(config, train_data._dataset)
    return train_backbone(config, train_data, valid_data, test_data)


def adapter_trainer(config, model, train_data, valid_data, test_data) -> AdapterTrainer:
    trainer = AdapterTrainer(config, model)
    trainer.prepare(train_data, valid_data, test_data)
    return trainer


def tune_stage(config, trainer: AdapterTrainer) -> Dict[str, Any]:
    """Tune one adapter at ``config['preference']``; report its validation and test metrics."""
    preference = config_get(config, "preference", None)
    if preference is None:
        raise ValueError("--stage=tune needs --preference=w1,w2,... (one weight per objective)")
    weights = trainer.preference(preference)
    (step, vector), = trainer.tune(weights, seed=int(config["seed"]), show_progress=config["show_progress"])[-1:]
    result = {"preference": weights.tolist(), "vector": vector,
              "valid_result": trainer.evaluate_vector(vector, "valid"),
              "test_result": trainer.evaluate_vector(vector, "test")}
    getLogger().info(set_color(f"adapter at w={weights.tolist()}", "yellow") + f": test {dict(result['test_result'])}")
    return result


def bank_stage(config, trainer: AdapterTrainer) -> AdapterBank:
    """Collect (or resume) the adapter bank of the run directory."""
    bank = collect_bank(trainer, config, run_directory(config), show_progress=True)
    getLogger().info(set_color("adapter bank", "green") + f": {len(bank)} adapters in {run_directory(config)}")
    return bank
