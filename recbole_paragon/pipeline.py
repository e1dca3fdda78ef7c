"""Paragon's stages on one run directory: backbone -> adapter bank (-> generator -> evaluation -> export).

Every stage writes its artifact into the run directory and reuses it on the next run when the settings it depends
on (its fingerprint) still match, so re-running is cheap and an interrupted run continues after its last finished
stage. The preference of ``--stage=tune_one`` / ``--stage=generate_one`` is validated and normalised once, here, where it
enters from the config.
"""
from __future__ import annotations

import os
import time
from logging import getLogger
from typing import Any, Dict, List, Optional

import torch
from recbole.utils import init_seed, set_color

from recbole_paragon.artifacts import (BACKBONE_STATE, USER_GROUPS, fingerprint, read_json, run_directory,
                                       to_jsonable, write_json)
from recbole_paragon.baselines import MethodContext, build_methods, run_methods
from recbole_paragon.bundle import export_bundle
from recbole_paragon.evaluation.comparison import add_comparison, comparison_table
from recbole_paragon.evaluation.protocol import check_protocol, describe_protocol, is_sampled
from recbole_paragon.evaluation.report import summarise, summary_table, write_report
from recbole_paragon.generators import GENERATORS, GeneratedAdapters
from recbole_paragon.model.auxiliary import check_auxiliary_settings
from recbole_paragon.objectives import (build_objectives, configured_objectives, objective_metric_classes,
                                        without_categories)
from recbole_paragon.objectives.side_information import has_item_field, item_field_names
from recbole_paragon.preference import matches_any, ray_preferences, simplex_grid, uniform_preferences
from recbole_paragon.registry import get_model, get_trainer
from recbole_paragon.schema import RENAMED
from recbole_paragon.settings import setting, settings_with_prefix
from recbole_paragon.store import (generator_exists, generator_paths, load_backbone, load_generator,
                                   save_generator, saved_backbone_matches, write_backbone_metadata)
from recbole_paragon.training.adapter_trainer import AdapterTrainer
from recbole_paragon.training.bank import AdapterBank, bank_grid, collect_bank
from recbole_paragon.training.generator_trainer import GeneratorTrainer
from recbole_paragon.training.levers import record_levers
from recbole_paragon.training.progress import on_terminal


def check_side_information(config, dataset) -> List[str]:
    """Fail before any training if an objective or an auxiliary task lacks the dataset fields it needs, or the
    evaluation protocol is one Paragon's cached evaluation cannot run; returns what the run should tell its user: a category field picked for them, default objectives that need no categories on
    data without them, side information too thin to mean what it says (each also logged)."""
    check_protocol(config)
    notes = resolve_categories(config, dataset)
    check_auxiliary_settings(config, dataset)
    if setting(config, "stage") != "backbone":
        minimum = float(setting(config, "side_information_min_share"))
        for objective in build_objectives(configured_objectives(config), config, dataset, None):
            coverage = objective.side_information_share()
            if coverage is not None and coverage[0] < minimum:
                notes.append(f"{objective.name}: only {coverage[0]:.0%} of the {coverage[1]}, below "
                             f"side_information_min_share={minimum:g}: it can only promote those, not mean what it "
                             "says" + (f"; {objective.substitute} needs no categories" if objective.substitute else ""))
    for note in notes:
        getLogger().warning(note)
    return notes


def resolve_categories(config, dataset) -> List[str]:
    """The default ``category_field`` absent from the ``.item`` file: its only ``token_seq`` field is used instead;
    with none, default objectives that read categories give way to ones that need none (a field or objectives the
    user set are left to fail with a clear error)."""
    field = setting(config, "category_field")
    given = getattr(config, "external_config_dict", {})
    if has_item_field(dataset, field) or "category_field" in given:  # a field the user named is theirs to fix
        return []
    candidates = item_field_names(dataset, "token_seq")
    if len(candidates) == 1:
        config["category_field"] = candidates[0]
        return [f"category_field={field!r} is not a field of {dataset.dataset_name}'s .item file: using its only "
                f"token_seq field {candidates[0]!r} for item categories"]
    names = configured_objectives(config)
    if "objectives" in given or without_categories(names) == names:
        return []
    config["objectives"] = without_categories(names)
    return [f"{dataset.dataset_name} has no item categories (category_field={field!r}): the objectives are "
            f"{config['objectives']} instead of the default {names}"]


def evaluated_metrics(config) -> List[str]:
    """``metrics`` and every objective's metric classes (NDCG, AlphaNDCG, ILD, CategoryCoverage, GroupGap...)."""
    metrics = list(config["metrics"])
    known = {m.lower() for m in metrics}
    return metrics + [m for m in objective_metric_classes(configured_objectives(config)) if m.lower() not in known]


def add_objective_metrics(config) -> None:
    """Evaluate every objective's metric besides ``metrics`` (:func:`evaluated_metrics`)."""
    config["metrics"] = evaluated_metrics(config)


def train_and_test(config, train_data, valid_data, test_data, saved: bool = True,
                   callback_fn=None, test: bool = True) -> Dict[str, Any]:
    """Train ``config['model']`` with its trainer, then evaluate the best checkpoint on the test split (unless
    ``test`` is False: the caller tests it, e.g. with other metrics).

    ``callback_fn(epoch, valid_score)`` is RecBole's per-epoch hook (sweeps report through it). The result holds the
    trained ``model`` (the best checkpoint's weights when ``saved`` and ``test``) and its ``trainer``."""
    logger = getLogger()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    show = on_terminal(config["show_progress"])  # RecBole's tqdm bars only on a terminal, never in a log file
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=show, callback_fn=callback_fn)
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=show) if test else {}
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": dict(best_valid_result),
        "test_result": dict(test_result),
        "model": model,
        "trainer": trainer,
        "checkpoint": trainer.saved_model_file if saved else None,
    }


def train_backbone(config, train_data, valid_data, test_data, callback_fn=None) -> Dict[str, Any]:
    """Train the backbone with RecBole's loop (adapter attached as identity) and record its fingerprints."""
    result = train_and_test(config, train_data, valid_data, test_data, saved=True, callback_fn=callback_fn)
    write_backbone_metadata(config, result["model"], result)
    return {**result, "reused": False}


def backbone_stage(config, train_data, valid_data, test_data) -> Dict[str, Any]:
    """Reuse the saved backbone when its settings match, else train it."""
    if saved_backbone_matches(config):
        getLogger().info(set_color("reusing backbone", "green") + f": {run_directory(config)}/{BACKBONE_STATE}")
        return load_backbone(config, train_data._dataset)
    return train_backbone(config, train_data, valid_data, test_data)


def adapter_trainer(config, model, train_data, valid_data, test_data,
                    notes: Optional[List[str]] = None) -> AdapterTrainer:
    """The adapter trainer on the frozen backbone, every split cached; the fairness groups (computed on the
    training split) are recorded in the run directory; ``notes``: what :func:`check_side_information` found."""
    trainer = AdapterTrainer(config, model)
    trainer.notes = list(notes or [])
    trainer.prepare(train_data, valid_data, test_data)
    groups = run_user_groups(trainer)
    if groups is not None:
        write_json(os.path.join(run_directory(config), USER_GROUPS), {**groups.summary(), "names": groups.names,
                                                                      "ids": groups.ids.tolist()})
        getLogger().info(set_color("user groups", "green") + f": {groups.summary()}")
    return trainer


def run_user_groups(trainer: AdapterTrainer):
    """The fairness objective's user groups, or None when the run has no fairness objective."""
    return next((o.groups for o in trainer.objectives if getattr(o, "groups", None) is not None), None)


def configured_preference(config, trainer: AdapterTrainer, stage: str) -> torch.Tensor:
    """``config['preference']`` validated and normalised for the run's objectives (the stage needs one)."""
    preference = setting(config, "preference")
    if preference is None:
        raise ValueError(f"--stage={stage} needs --preference=w1,w2,... (one weight per objective: "
                         f"{', '.join(trainer.objective_names)})")
    return trainer.preference(preference)


def tune_one_stage(config, trainer: AdapterTrainer) -> Dict[str, Any]:
    """Tune one adapter at ``config['preference']``; report its validation and test metrics."""
    weights = configured_preference(config, trainer, "tune_one")
    (step, vector), = trainer.tune(weights, seed=int(config["seed"]), show_progress=config["show_progress"])[-1:]
    result = {"preference": weights.tolist(), "vector": vector,
              "valid_result": trainer.evaluate_vector(vector, "valid"),
              "test_result": trainer.evaluate_vector(vector, "test")}
    getLogger().info(set_color(f"adapter at w={weights.tolist()}", "yellow") + f": test {dict(result['test_result'])}")
    return result


def bank_stage(config, trainer: AdapterTrainer) -> AdapterBank:
    """Collect (or resume) the adapter bank of the run directory."""
    collect = collect_bank
    if setting(config, "ray_address") is not None:  # one Ray task per tuning run
        from recbole_paragon.training.distributed import collect_bank_ray as collect
    bank = collect(trainer, config, run_directory(config), show_progress=True)
    getLogger().info(set_color("adapter bank", "green") + f": {len(bank)} adapters in {run_directory(config)}")
    record_levers(config, trainer, bank, run_directory(config))
    return bank


def evaluation_preferences(config, num_objectives: int) -> torch.Tensor:
    """Unseen test preferences: ``w₁ = i/10`` for two objectives, a simplex grid for more (``evaluation_grid_*``), or
    ``evaluation_sample`` preferences drawn uniformly inside the simplex and ``evaluation_rays`` rays per objective
    (:func:`~recbole_paragon.preference.ray_preferences`), none a bank preference."""
    count = setting(config, "evaluation_sample")
    if count is not None:
        seed = int(setting(config, "seed"))
        rays = ray_preferences(num_objectives, int(setting(config, "evaluation_rays")), seed)
        return torch.cat([uniform_preferences(num_objectives, int(count), seed, avoid=bank_grid(config, num_objectives)),
                          rays[~matches_any(rays, bank_grid(config, num_objectives))]])
    return simplex_grid(num_objectives, float(setting(config, "evaluation_grid_step")),
                        float(setting(config, "evaluation_grid_offset")))


def holdout_preferences(config, num_objectives: int) -> torch.Tensor:
    if setting(config, "evaluation_holdout"):
        return evaluation_preferences(config, num_objectives)
    return torch.zeros(0, num_objectives)


def generator_settings(config, prefixes) -> Dict[str, Any]:
    """The settings with ``prefixes`` a generator's fingerprint covers (safety time caps excluded)."""
    return {k: v for k, v in settings_with_prefix(config, *prefixes).items() if not k.endswith("_time_budget")}


def generator_stage(config, trainer: AdapterTrainer, bank: AdapterBank, kind: Optional[str] = None,
                    show_progress: bool = True) -> GeneratedAdapters:
    """Train a generator on the bank (test preferences held out), or reuse a stored one with the same settings."""
    directory = run_directory(config)
    kind = kind or str(setting(config, "generator"))
    generator_trainer = GeneratorTrainer(config, trainer, bank, kind=kind)
    holdout = holdout_preferences(config, len(trainer.objective_names))
    settings = {
        "kind": kind,
        "objectives": trainer.objective_names,
        "backbone_fingerprint": trainer.model.backbone_fingerprint(),
        "bank_fingerprint": bank.fingerprint(),
        "holdout": holdout.tolist(),
        "holdout_adapters": int(matches_any(bank.tensors()["preferences"], holdout).sum()),
        **generator_settings(config, GENERATORS[kind].settings_prefixes),
    }
    settings = {k: v for k, v in settings.items() if k != "diffusion_bank_blends"}
    if generator_trainer.bank_blends:  # this run's count (off: generators stored before the blends keep matching)
        settings["diffusion_bank_blends"] = generator_trainer.bank_blends
    settings_fingerprint = fingerprint(settings)
    if generator_exists(directory, kind):
        try:
            generator, metadata = load_generator(directory, {"settings_fingerprint": settings_fingerprint}, kind)
            getLogger().info(set_color("reusing generator", "green") + f": {generator_paths(directory, kind)[0]}")
            # sampling_* settings are not part of the fingerprint: the run's own apply to a reused generator
            return GeneratedAdapters(generator, {**metadata, "sampling": generator_trainer.sampling()})
        except ValueError:
            getLogger().info(f"stored {kind} generator {stale_generator_reason(directory, kind)}: training a new one")
    start = time.perf_counter()
    generator = generator_trainer.fit(show_progress=show_progress, exclude=holdout)
    metadata = {**settings, "settings_fingerprint": settings_fingerprint, "condition_on_step":
                generator_trainer.condition_on_step and kind == "diffusion",
                "condition_on_zero": generator_trainer.condition_on_zero,
                "sampling": generator_trainer.sampling(), "history": generator_trainer.history,
                "stopped_by": generator_trainer.stopped_by,
                "train_seconds": time.perf_counter() - start, "dataset": config["dataset"], "model": config["model"]}
    save_generator(directory, generator, metadata)
    return GeneratedAdapters(generator, metadata)


def generate_one_stage(config, trainer: AdapterTrainer, adapters: GeneratedAdapters) -> Dict[str, Any]:
    """Generate the adapter for ``config['preference']``, evaluate it on the test split and log the metrics."""
    weights = configured_preference(config, trainer, "generate_one")
    start = time.perf_counter()
    vector = adapters.vectors(weights[None])[0]
    seconds = time.perf_counter() - start
    result = {"preference": weights.tolist(), "vector": vector, "seconds": seconds,
              "test_result": trainer.evaluate_vector(vector, "test")}
    getLogger().info(set_color(f"generated adapter for w={result['preference']} in {seconds * 1000:.1f} ms", "yellow")
                     + f": test {dict(result['test_result'])}")
    return result


def evaluation_fingerprint(config, trainer: AdapterTrainer, bank: AdapterBank,
                           generators: Dict[str, GeneratedAdapters]) -> str:
    """Hash of what the evaluation stage's report depends on: the backbone, the bank, the generators and every
    setting except those that only say where and how a run is executed, served or compared."""
    settings = {key: value for key, value in dict(config.final_config_dict).items()
                if not key.startswith(_NOT_EVALUATION_PREFIXES) and key not in _NOT_EVALUATION_KEYS}
    if is_sampled(config):  # the batches decide which negatives each user draws
        settings["eval_batch_size"] = config["eval_batch_size"]
    return fingerprint({"settings": to_jsonable(settings), "backbone": trainer.model.backbone_fingerprint(),
                        "bank": bank.fingerprint(),
                        "generators": {k: g.metadata.get("settings_fingerprint") for k, g in generators.items()}})


#: Settings that do not change a report's figures (plumbing, other stages).
_NOT_EVALUATION_PREFIXES = ("compare_", "serve_", "sweep_", "export_", "ray_", "log_", "wandb_")
_NOT_EVALUATION_KEYS = {"stage", "num_workers", "state", "show_progress", "checkpoint_dir", "run_dir", "preference",
                        "gpu_id", "use_gpu", "device", "worker", "nproc", "world_size", "local_rank", "offset",
                        "ip", "port", "single_spec", "compute_threads", "sampling_threads", "eval_batch_size",
                        "data_path"}


def evaluation_report(config, trainer: AdapterTrainer, bank: AdapterBank,
                      generators: Dict[str, GeneratedAdapters]) -> Dict[str, Any]:
    """Every method on the unseen test preferences: controllability, hypervolume, fidelity, timing (the report's
    content; :func:`publish_report` writes it)."""
    count = len(trainer.objectives)
    names = list(setting(config, "evaluation_methods"))
    retrain_preferences = torch.tensor(setting(config, "evaluation_retrain_preferences") or [],
                                       dtype=torch.float32).reshape(-1, count)
    if len(retrain_preferences) and "retrain" not in names:
        names.append("retrain")
    context = MethodContext(config, trainer, bank, generators, holdout_preferences(config, count), retrain_preferences)
    methods, skipped = build_methods(names, context)
    results = run_methods(methods, evaluation_preferences(config, count))
    report = summarise(results, trainer.objectives)
    report["skipped_methods"] = skipped
    groups = run_user_groups(trainer)
    if groups is not None:
        report["user_groups"] = groups.summary()
    report["protocol"] = describe_protocol(config, trainer.model.n_items)
    report["levers"] = bank.levers
    report["evaluation_fingerprint"] = evaluation_fingerprint(config, trainer, bank, generators)
    report["config"] = to_jsonable(dict(config.final_config_dict))
    return report


def publish_report(config, report: Dict[str, Any]) -> Dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plots into the run directory and print the summary."""
    paths = write_report(run_directory(config), report)
    getLogger().info(set_color("evaluation", "green") + f": {paths}")
    print(summary_table(report))
    if report.get("compare"):
        print(comparison_table(report))
    return report


def evaluate_stage(config, trainer: AdapterTrainer, bank: AdapterBank, generators: Dict[str, GeneratedAdapters],
                   comparison: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Every method on the unseen test preferences; controllability, hypervolume, fidelity, timing; the report,
    with RecBole's models of the compare stage beside them when ``comparison`` (their runs) is given."""
    report = evaluation_report(config, trainer, bank, generators)
    if comparison:
        add_comparison(report, comparison)
    return publish_report(config, report)


def stale_generator_reason(directory: str, kind: str) -> str:
    """Why a stored generator is not reused: saved by 0.1 (its settings under the names 0.2 renamed), or trained
    with other settings."""
    metadata = read_json(generator_paths(directory, kind)[1], "")
    old = sorted(key for key in metadata if key in RENAMED) if isinstance(metadata, dict) else []
    if old:
        return (f"was saved by recbole-paragon 0.1 (its settings carry the old names, e.g. {old[0]} is now "
                f"{RENAMED[old[0]]}), so its fingerprint cannot match")
    return "was trained with other settings"


def export_stage(config, dataset, trainer: AdapterTrainer, adapters: GeneratedAdapters) -> str:
    """Write (or reuse) the run's serving bundle ``<run_dir>/bundle``: backbone, generator, catalogue, grid."""
    directory = export_bundle(config, dataset, trainer, adapters)
    getLogger().info(set_color("serving bundle", "green") + f": {directory}")
    return directory
