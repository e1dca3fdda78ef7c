"""Paragon's stages on one run directory: backbone -> adapter bank (-> generator -> evaluation).

Every stage writes its artifact into the run directory and reuses it on the next run when the settings it depends
on (its fingerprint) still match, so re-running is cheap and an interrupted run continues after its last finished
stage.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from logging import getLogger
from typing import Any, Dict, Optional

import torch
from recbole.utils import init_seed, set_color

from recbole_paragon.bank import AdapterBank, collect_bank
from recbole_paragon.baselines import AdaptationMethods, run_methods
from recbole_paragon.evaluation import (controllability, fidelity, hypervolumes, noise_floor, summary_table,
                                        write_report)
from recbole_paragon.io import run_directory, write_json
from recbole_paragon.model.auxiliary import check_auxiliary_settings, configured_auxiliary
from recbole_paragon.objectives import build_objectives, configured_objectives, objective_metric_classes
from recbole_paragon.utils import config_get
from recbole_paragon.preference import matches_any, simplex_grid
from recbole_paragon.serving import (GeneratedAdapters, generator_exists, generator_paths, load_generator,
                                     save_generator, settings_fingerprint)
from recbole_paragon.trainer.adapter_trainer import AdapterTrainer
from recbole_paragon.trainer.generator_trainer import GeneratorTrainer
from recbole_paragon.utils import get_model, get_trainer

BACKBONE_CHECKPOINT = "backbone.pth"
BACKBONE_METADATA = "backbone.json"

#: RecBole keys that do not change what the backbone learns (where it is saved, how it is logged or evaluated).
_NOT_BACKBONE_KEYS = {"checkpoint_dir", "show_progress", "state", "metrics", "topk", "valid_metric",
                      "valid_metric_bigger", "eval_batch_size", "log_wandb", "wandb_project", "gpu_id", "use_gpu",
                      "device", "worker", "data_path", "save_dataset", "save_dataloaders", "dataset_save_path",
                      "dataloaders_save_path", "nproc", "world_size", "offset", "ip", "port", "local_rank",
                      "single_spec", "shuffle", "metric_decimal_place", "log_root", "train_adapter_with_backbone"}


def backbone_config_fingerprint(config) -> str:
    """Hash of every config value the backbone depends on: RecBole's own keys for the backbone and dataset."""
    known = getattr(config, "recbole_keys", None) or set(config.final_config_dict)
    relevant = {key: value for key, value in sorted(config.final_config_dict.items())
                if key in known and key not in _NOT_BACKBONE_KEYS}
    relevant.update(multitask_settings(config))
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def multitask_settings(config) -> Dict[str, Any]:
    """The plugin keys multi-task backbone training depends on (none without auxiliary tasks)."""
    if not configured_auxiliary(config):
        return {}
    strategy = str(config_get(config, "backbone_strategy", "linear"))
    return {key: value for key, value in config.final_config_dict.items()
            if key.startswith(("backbone_auxiliary", "backbone_strategy", f"{strategy}_"))}


def objective_names(config):
    return configured_objectives(config)


def check_side_information(config, dataset) -> None:
    """Fail before any training if an objective or an auxiliary task lacks the dataset fields it needs."""
    check_auxiliary_settings(config, dataset)
    if config_get(config, "stage", "all") != "backbone":
        build_objectives(objective_names(config), config, dataset, None)


def add_objective_metrics(config) -> None:
    """Evaluate every objective's metric (NDCG, AlphaNDCG, ILD, CategoryCoverage, GroupGap) besides ``metrics``."""
    metrics = list(config["metrics"])
    known = {m.lower() for m in metrics}
    config["metrics"] = metrics + [m for m in objective_metric_classes(objective_names(config)) if m.lower() not in known]


def train_and_test(config, train_data, valid_data, test_data, saved: bool = True,
                   callback_fn=None) -> Dict[str, Any]:
    """Train ``config['model']`` with its trainer, then evaluate the best checkpoint on the test split.

    ``callback_fn(epoch, valid_score)`` is RecBole's per-epoch hook (sweeps report through it)."""
    logger = getLogger()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"], callback_fn=callback_fn)
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


def train_backbone(config, train_data, valid_data, test_data, callback_fn=None) -> Dict[str, Any]:
    """Train the backbone with RecBole's loop (adapter attached as identity) and record its fingerprints."""
    result = train_and_test(config, train_data, valid_data, test_data, saved=True, callback_fn=callback_fn)
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
    collect = collect_bank
    if config_get(config, "ray_address", None) is not None:  # one Ray task per tuning run (distributed.py)
        from recbole_paragon.distributed import collect_bank_ray as collect
    bank = collect(trainer, config, run_directory(config), show_progress=True)
    getLogger().info(set_color("adapter bank", "green") + f": {len(bank)} adapters in {run_directory(config)}")
    return bank


def evaluation_preferences(config, num_objectives: int) -> torch.Tensor:
    """Unseen test preferences: ``w₁ = i/10`` for two objectives, a simplex grid for more (``evaluation_grid_*``)."""
    return simplex_grid(num_objectives, float(config_get(config, "evaluation_grid_step", 0.1)),
                        float(config_get(config, "evaluation_grid_offset", 0.0)))


def holdout_preferences(config, num_objectives: int) -> torch.Tensor:
    if config_get(config, "evaluation_holdout", True):
        return evaluation_preferences(config, num_objectives)
    return torch.zeros(0, num_objectives)


def generator_stage(config, trainer: AdapterTrainer, bank: AdapterBank, kind: Optional[str] = None,
                    show_progress: bool = True) -> GeneratedAdapters:
    """Train a generator on the bank (test preferences held out), or reuse a stored one with the same settings."""
    directory = run_directory(config)
    kind = kind or str(config_get(config, "generator", "diffusion"))
    generator_trainer = GeneratorTrainer(config, trainer, bank, kind=kind)
    holdout = holdout_preferences(config, len(trainer.objective_names))
    settings = {
        "kind": kind,
        "objectives": trainer.objective_names,
        "backbone_fingerprint": trainer.model.backbone_fingerprint(),
        "bank_fingerprint": bank.fingerprint(),
        "holdout": holdout.tolist(),
        "holdout_adapters": int(matches_any(bank.tensors()["preferences"], holdout).sum()),
        **{k: v for k, v in config.final_config_dict.items()
           if k.startswith(("generator_", "diffusion_", "hypernet_")) and not k.endswith("_time_budget")},
    }
    fingerprint = settings_fingerprint(settings)
    if generator_exists(directory, kind):
        try:
            generator, metadata = load_generator(directory, {"settings_fingerprint": fingerprint}, kind)
            getLogger().info(set_color("reusing generator", "green") + f": {generator_paths(directory, kind)[0]}")
            return GeneratedAdapters(generator, metadata)
        except ValueError:
            getLogger().info(f"stored {kind} generator was trained with other settings: training a new one")
    start = time.perf_counter()
    generator = generator_trainer.fit(show_progress=show_progress, exclude=holdout)
    metadata = {**settings, "settings_fingerprint": fingerprint, "condition_on_step":
                generator_trainer.condition_on_step and kind == "diffusion",
                "sampling": generator_trainer.sampling(), "history": generator_trainer.history,
                "train_seconds": time.perf_counter() - start, "dataset": config["dataset"], "model": config["model"]}
    save_generator(directory, generator, metadata)
    return GeneratedAdapters(generator, metadata)


def generate_stage(config, trainer: AdapterTrainer, adapters: GeneratedAdapters) -> Dict[str, Any]:
    """Generate the adapter for ``config['preference']``, evaluate it on the test split and log the metrics."""
    preference = config_get(config, "preference", None)
    if preference is None:
        raise ValueError("--stage=generate needs --preference=w1,w2,... (one weight per objective)")
    start = time.perf_counter()
    vector = adapters.vectors([trainer.preference(preference).tolist()])[0]
    seconds = time.perf_counter() - start
    result = {"preference": trainer.preference(preference).tolist(), "vector": vector, "seconds": seconds,
              "test_result": trainer.evaluate_vector(vector, "test")}
    getLogger().info(set_color(f"generated adapter for w={result['preference']} in {seconds * 1000:.1f} ms", "yellow")
                     + f": test {dict(result['test_result'])}")
    return result


def evaluate_stage(config, trainer: AdapterTrainer, bank: AdapterBank,
                   generators: Dict[str, GeneratedAdapters]) -> Dict[str, Any]:
    """Every method on the unseen test preferences; controllability, hypervolume, fidelity, timing; the report."""
    objectives = trainer.objectives
    preferences = evaluation_preferences(config, len(objectives))
    names = list(config_get(config, "evaluation_methods", ["paragon", "retune", "backbone"]))
    retrain_preferences = torch.tensor(config_get(config, "evaluation_retrain_preferences", []) or [],
                                       dtype=torch.float32).reshape(-1, len(objectives))
    if len(retrain_preferences) and "retrain" not in names:
        names.append("retrain")
    seeds = [int(s) for s in config_get(config, "evaluation_retune_seeds", [0, 1, 2])]
    methods = AdaptationMethods(config, trainer, bank, generators, holdout_preferences(config, len(objectives)))
    results = run_methods(methods, names, preferences, seeds, retrain_preferences)
    report = summarise(results, objectives, trainer.objective_names)
    report["config"] = {k: v for k, v in config.final_config_dict.items() if isinstance(v, (str, int, float, bool,
                                                                                             list, type(None)))}
    paths = write_report(run_directory(config), report)
    getLogger().info(set_color("evaluation", "green") + f": {paths}\n" + summary_table(report))
    print(summary_table(report))
    return report


def summarise(results: Dict[str, Any], objectives, objective_names) -> Dict[str, Any]:
    """Controllability, hypervolume (shared reference), fidelity against re-tuning and timing of every method."""
    metric_of = {o.name: (o.metric(), "max" if o.bigger_is_better else "min") for o in objectives}
    control = controllability(results, metric_of, objective_names)
    keys = [metric_of[name][0] for name in objective_names]
    directions = [metric_of[name][1] for name in objective_names]
    volumes, reference = hypervolumes(results, keys, directions)
    report = {
        "methods": results,
        "pearson": {m: {o: v["pearson"] for o, v in c.items()} for m, c in control.items()},
        "spearman": {m: {o: v["spearman"] for o, v in c.items()} for m, c in control.items()},
        "hypervolume": volumes,
        "hypervolume_reference": {"metrics": keys, "directions": directions, "point": reference},
        "timing": {m: sum(e["seconds"] for e in entries) / max(len(entries), 1) for m, entries in results.items()},
    }
    retune = results.get("retune")
    if retune and len(retune[0].get("seed_metrics", [])) >= 2:
        seed_values = {k: [[e["seed_metrics"][s][k] for e in retune] for s in range(len(retune[0]["seed_metrics"]))]
                       for k in keys}
        report["noise_floor"] = {k: noise_floor(v) for k, v in seed_values.items()}
        report["fidelity"] = {
            m: {k: fidelity([e["metrics"][k] for e in entries], seed_values[k]) for k in keys}
            for m, entries in results.items() if len(entries) == len(retune)
        }
    report["timing_ratios"] = timing_ratios(report["timing"])
    return report


def timing_ratios(timing: Dict[str, float]) -> Dict[str, float]:
    """How many times faster generating an adapter is than re-tuning and than retraining."""
    generate = timing.get("paragon")
    if not generate:
        return {}
    return {f"{other}_over_paragon": timing[other] / generate for other in ("retune", "retrain", "hypernet")
            if timing.get(other)}
