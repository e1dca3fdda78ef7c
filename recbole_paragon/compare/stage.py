"""The compare stage: RecBole's models trained and tested on the run's data, split and protocol, in its report.

Every model of ``compare_models`` is trained ``compare_seeds`` times (:mod:`recbole_paragon.compare.runner`); each
(model, seed) result is written, as soon as it is known, to ``<run_dir>/compare/<model>-seed<seed>.json`` with the
fingerprint of everything it depends on (:func:`~recbole_paragon.compare.models.result_fingerprint`). A run of the
stage reuses every result whose fingerprint still matches and trains the rest, so an interrupted comparison goes on
where it stopped, and a model that failed is tried again. The report is the evaluation stage's, reused from
``report.json`` when its evaluation fingerprint matches (else evaluated again), with the comparison added; the
evaluation stage adds the saved, still-matching results too.
"""
from __future__ import annotations

import os
import time
from logging import getLogger
from typing import Any, Dict, List, Optional

from recbole.utils import set_color

from recbole_paragon import pipeline
from recbole_paragon.artifacts import ArtifactError, read_json, run_directory, to_jsonable, write_json
from recbole_paragon.compare.models import (compare_models, compare_seeds, config_files, model_config,
                                            model_settings, result_fingerprint)
from recbole_paragon.compare.runner import Result, Task, execution, run_tasks
from recbole_paragon.evaluation.comparison import add_comparison
from recbole_paragon.evaluation.protocol import describe_protocol

COMPARE_DIR = "compare"
REPORT_FILE = "report.json"


def result_path(config, model: str, seed: int) -> str:
    return os.path.join(run_directory(config), COMPARE_DIR, f"{model}-seed{seed}.json")


def planned_tasks(config) -> List[Task]:
    """One task per model and seed, with the settings and fingerprint of its result. A model whose settings cannot
    even be built (e.g. a broken compare file) gets a task holding that error, to be reported."""
    metrics = pipeline.evaluated_metrics(config)
    tasks = []
    for model in compare_models(config):
        for seed in compare_seeds(config):
            task: Task = {"model": model, "seed": seed, "dataset": config["dataset"], "metrics": metrics,
                          "eval_seed": int(config["seed"])}
            try:
                task["config_files"] = config_files(config, model)
                task["settings"] = model_settings(config, model, seed)
                task["fingerprint"] = result_fingerprint(model_config(config, model, seed), metrics, task["eval_seed"])
            except Exception as error:  # reported with the model, like a failed training
                task["error"] = f"{type(error).__name__}: {error}"
            tasks.append(task)
    return tasks


def saved_result(config, task: Task) -> Optional[Result]:
    """The task's saved result if it was measured with the same fingerprint and did not fail."""
    path = result_path(config, task["model"], task["seed"])
    if "error" in task or not os.path.isfile(path):
        return None
    try:
        saved = read_json(path, "it is measured again")
    except ArtifactError as error:
        getLogger().warning(str(error))
        return None
    if saved.get("fingerprint") != task["fingerprint"] or saved.get("error"):
        return None
    return {**saved, "reused": True}


def comparison_runs(config, train: bool = True) -> Dict[str, Any]:
    """Every (model, seed) result: saved ones reused, the rest trained when ``train`` (each saved as it finishes)."""
    tasks = planned_tasks(config)
    runs: Dict[tuple, Result] = {}
    for task in tasks:
        saved = saved_result(config, task)
        if saved is not None:
            runs[(task["model"], task["seed"])] = saved
        elif "error" in task:
            runs[(task["model"], task["seed"])] = {**{k: task[k] for k in ("model", "seed", "error")},
                                                   "metrics": {}, "unavailable": {}, "seconds": None}

    def on_result(result: Result) -> None:
        result = to_jsonable(result)
        write_json(result_path(config, result["model"], result["seed"]), result)
        runs[(result["model"], result["seed"])] = result
        shown = {k: round(v, 4) for k, v in list(result["metrics"].items())[:4]}
        getLogger().info(set_color(f"compare {result['model']} seed {result['seed']}", "green") +
                         f": {result.get('error') or shown} ({result['seconds'] or 0:.0f} s)")

    todo = [t for t in tasks if (t["model"], t["seed"]) not in runs]
    start = time.perf_counter()
    if train and todo:
        getLogger().info(f"compare: {len(todo)} trainings ({len(tasks) - len(todo)} reused), {execution(config)}")
        run_tasks(config, todo, on_result)
    order = {(t["model"], t["seed"]): i for i, t in enumerate(tasks)}
    return {"runs": [runs[key] for key in sorted(runs, key=order.get)],
            "models": list(dict.fromkeys(t["model"] for t in tasks)), "seeds": compare_seeds(config),
            "settings": {key: config[key] for key in ("MAX_ITEM_LIST_LENGTH", "epochs", "stopping_step",
                                                      "valid_metric")},
            "trained": len(todo) if train else 0, "execution": execution(config),
            "wall_seconds": time.perf_counter() - start if train and todo else None}


def saved_comparison(config) -> Optional[Dict[str, Any]]:
    """The saved results that still match the run (no training), for the evaluation stage's report; None when
    the run has none (or ``compare_models`` is not valid: the compare stage says why)."""
    if not os.path.isdir(os.path.join(run_directory(config), COMPARE_DIR)):
        return None
    try:
        comparison = comparison_runs(config, train=False)
    except ValueError as error:
        getLogger().warning(f"saved comparison left out of the report: {error}")
        return None
    return comparison if comparison["runs"] else None


def _saved_report(config, evaluation_fingerprint: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(run_directory(config), REPORT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        report = read_json(path, "the evaluation stage runs again")
    except ArtifactError:
        return None
    return report if report.get("evaluation_fingerprint") == evaluation_fingerprint else None


def compare_stage(config, trainer, bank, generators) -> Dict[str, Any]:
    """Train (or reuse) every compared model, then write the run's report with them beside Paragon's fronts."""
    comparison = comparison_runs(config)
    comparison["protocol"] = describe_protocol(config, trainer.model.n_items)
    report = _saved_report(config, pipeline.evaluation_fingerprint(config, trainer, bank, generators))
    if report is None:
        report = pipeline.evaluation_report(config, trainer, bank, generators)
    else:
        getLogger().info(set_color("reusing evaluation", "green") + f": {run_directory(config)}/{REPORT_FILE}")
    add_comparison(report, comparison)
    return pipeline.publish_report(config, report)
