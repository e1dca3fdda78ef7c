"""Training and testing the compared models: one task per model and seed, in this process or as Ray tasks.

A task (:func:`run_task`) trains its model with RecBole's trainer and early stopping (validation computes only the
early-stopping metric), then tests the best checkpoint with every metric of the run; a metric that cannot be
computed for the model is retried alone and, if it still fails, reported as unavailable with the reason. A task
never raises: a model that fails to train returns its error, and the other tasks go on. The test split's sampled
negatives (sampled protocols) are drawn with the run's seed, as Paragon's cached test split draws them.

On Ray (``compare_ray`` and Ray installed) each task is a Ray task with one CPU and one torch thread, at most
``num_workers`` in flight, on the cluster of ``ray_address`` (``~`` = a local Ray with ``num_workers`` CPUs, as
for sweeps); the driver hands every finished task to ``on_result`` as it arrives (the stage saves it at once).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import time
import traceback
from collections import OrderedDict
from logging import getLogger
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
from recbole.data import data_preparation
from recbole.evaluator import Collector, Evaluator
from recbole.utils import init_seed

from recbole_paragon import pipeline
from recbole_paragon.compat import first_epoch_order
from recbole_paragon.config import Config
from recbole_paragon.datasets import load_dataset
from recbole_paragon.settings import setting

Task = Dict[str, Any]
Result = Dict[str, Any]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".strip(": ")


def tested(trainer, config, train_data, test_data, metrics: Sequence[str], eval_seed: int) -> "OrderedDict":
    """Test metrics ``metrics`` of the trainer's best checkpoint on ``test_data``: RecBole's evaluator and collector
    for those metrics, the collector fed the training data as ``fit`` feeds it, negatives drawn with ``eval_seed``."""
    saved = config["metrics"]
    config["metrics"] = list(metrics)
    try:
        trainer.evaluator, trainer.eval_collector = Evaluator(config), Collector(config)
        trainer.eval_collector.data_collect(train_data)
        with first_epoch_order(test_data, eval_seed):
            return trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    finally:
        config["metrics"] = saved


def measured_metrics(trainer, config, train_data, test_data, metrics: Sequence[str],
                 eval_seed: int) -> Tuple[Dict[str, float], Dict[str, str]]:
    """Every metric at once; if that fails, each alone: ``(values, {metric class: why it is unavailable})``."""
    try:
        return {k: float(v) for k, v in tested(trainer, config, train_data, test_data, metrics, eval_seed).items()}, {}
    except Exception:  # one metric the model cannot be measured on: find which, keep the others
        values: Dict[str, float] = {}
        unavailable: Dict[str, str] = {}
        for metric in metrics:
            try:
                values.update({k: float(v) for k, v in
                               tested(trainer, config, train_data, test_data, [metric], eval_seed).items()})
            except Exception as error:
                unavailable[metric] = _first_line(error)
        return values, unavailable


def run_task(task: Task) -> Result:
    """Train and test ``task["model"]`` with ``task["seed"]`` (the task's settings, see
    :func:`recbole_paragon.compare.models.model_settings`); the result, or the error, with the seconds it took."""
    start = time.perf_counter()
    work = task["settings"]["checkpoint_dir"]
    result: Result = {"model": task["model"], "seed": task["seed"], "fingerprint": task["fingerprint"],
                      "config_files": task.get("config_files", [])}
    try:
        config = Config(model=task["model"], dataset=task["dataset"], config_dict=task["settings"], command_line=[])
        init_seed(config["seed"], config["reproducibility"])
        train_data, valid_data, test_data = data_preparation(config, load_dataset(config))
        trained = pipeline.train_and_test(config, train_data, valid_data, test_data, saved=True, test=False)
        metrics, unavailable = measured_metrics(trained["trainer"], config, train_data, test_data, task["metrics"],
                                            task["eval_seed"])
        result.update(metrics=metrics, unavailable=unavailable, best_valid_score=float(trained["best_valid_score"]),
                      error=None)
    except Exception as error:  # reported with the model; the other models go on
        getLogger().warning(f"compare: {task['model']} (seed {task['seed']}) failed: {_first_line(error)}")
        result.update(metrics={}, unavailable={}, error=_first_line(error),
                      traceback=traceback.format_exc(limit=-4))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # RecBole's checkpoint of the task: the result holds what is kept
    result["seconds"] = time.perf_counter() - start
    return result


def ray_task(task: Task) -> Result:
    """:func:`run_task` in a Ray worker: one torch thread, the driver's working directory (relative paths)."""
    torch.set_num_threads(1)
    if os.path.isdir(task.get("cwd", "")):
        os.chdir(task["cwd"])
    return run_task(task)


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def execution(config) -> str:
    """How the stage runs its tasks, in words (the report says it)."""
    if setting(config, "compare_ray") and ray_available():
        return (f"Ray at {setting(config, 'ray_address') or 'local'}, "
                f"{int(setting(config, 'num_workers'))} tasks at a time, one CPU each")
    return f"one after another in this process ({torch.get_num_threads()} torch threads)"


def run_tasks(config, tasks: List[Task], on_result: Callable[[Result], None]) -> None:
    """Run ``tasks`` on Ray when ``compare_ray`` is set and Ray is installed, else one after another."""
    if not tasks:
        return
    if setting(config, "compare_ray") and ray_available():
        _run_on_ray(config, tasks, on_result)
        return
    if setting(config, "compare_ray"):
        getLogger().info("compare: Ray is not installed, the models train one after another")
    for task in tasks:
        on_result(run_task(task))


def _run_on_ray(config, tasks: List[Task], on_result: Callable[[Result], None]) -> None:
    from recbole_paragon.training.distributed import ray_connection

    num_workers = int(setting(config, "num_workers"))
    address = str(setting(config, "ray_address") or "local")
    with ray_connection(address, num_workers, float(setting(config, "ray_connect_timeout"))) as ray:
        remote = ray.remote(num_cpus=1, max_retries=0)(ray_task)
        pending: Dict[Any, Task] = {}
        queue = list(tasks)
        try:
            while queue or pending:
                while queue and len(pending) < num_workers:
                    task = queue.pop(0)
                    pending[remote.remote({**task, "cwd": os.getcwd()})] = task
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as error:  # the worker died (memory, signal): reported like a failed model
                        result = {"model": task["model"], "seed": task["seed"], "fingerprint": task["fingerprint"],
                                  "metrics": {}, "unavailable": {}, "error": _first_line(error), "seconds": None}
                    on_result(result)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
