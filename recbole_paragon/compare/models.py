"""Which RecBole models the compare stage trains, and with which settings.

A model of ``compare_models`` is trained with the run's own settings (the user's files, dict and command line over
the plugin's yaml, as every plain RecBole model run through the plugin), its file(s) of ``compare_config_files``
over them (e.g. the ``best.yaml`` of a Ray Tune sweep), and the run's protocol on top: data, split, history
length, epochs, early stopping and evaluation always come from the run, so every model is measured as the
backbone was (a tuned file cannot change them; the log names what it dropped).
"""
from __future__ import annotations

import glob
import hashlib
import os
from functools import lru_cache
from logging import getLogger
from typing import Any, Dict, List, Sequence

from recbole.utils.argument_list import dataset_arguments

from recbole_paragon.artifacts import fingerprint, run_directory
from recbole_paragon.config import Config
from recbole_paragon.evaluation.protocol import is_sampled
from recbole_paragon.model.paragon import PREFIX
from recbole_paragon.settings import setting, setting_names, yaml_loader
from recbole_paragon.store import backbone_config_fingerprint

#: The run's settings every compared model shares (a model's compare file cannot change them).
PROTOCOL_KEYS = frozenset(dataset_arguments) | {
    "dataset", "data_path", "eval_args", "repeatable", "topk", "valid_metric", "metrics", "epochs", "stopping_step",
    "eval_step", "seed", "reproducibility", "category_field", "group_by", "group_field", "group_quantile",
    "alpha_ndcg_alpha"}
#: The run's settings that say where and how it runs, not what a model learns.
_PLUMBING_KEYS = {"model", "dataset", "stage", "run_dir", "checkpoint_dir", "preference"}
#: Metric settings a model's measured values depend on besides RecBole's own keys.
_METRIC_KEYS = ("category_field", "group_by", "group_field", "group_quantile", "alpha_ndcg_alpha")
#: ``compare_config_files`` value meaning "the best.yaml of the model's sweep in its default folder".
SWEEP = "sweep"


@lru_cache(maxsize=1)
def recbole_models() -> Dict[str, List[str]]:
    """RecBole's sequential and general models by name (the ones the compare stage can train on a run's data;
    "general" includes RecBole's traditional models such as Pop and ItemKNN)."""
    import recbole.model.general_recommender as general
    import recbole.model.sequential_recommender as sequential
    from recbole.model.abstract_recommender import GeneralRecommender, SequentialRecommender

    return {kind: sorted(name for name, value in vars(module).items() if isinstance(value, type)
                         and issubclass(value, base) and value is not base)
            for kind, module, base in (("sequential", sequential, SequentialRecommender),
                                       ("general", general, GeneralRecommender))}


def compare_models(config) -> List[str]:
    """``compare_models``, checked: each a RecBole sequential or general model, none twice."""
    names = setting_names(config, "compare_models")
    known = recbole_models()
    unknown = [n for n in names if n not in known["sequential"] and n not in known["general"]]
    if unknown:
        own = [n for n in unknown if str(n).startswith(PREFIX)]
        hint = f" ({', '.join(own)}: Paragon's own fronts are the report itself)" if own else ""
        raise ValueError(f"compare_models: unknown model(s) {', '.join(map(str, unknown))}{hint}. The compare stage "
                         f"trains RecBole's sequential models ({', '.join(known['sequential'])}) and general models "
                         f"({', '.join(known['general'])})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"compare_models names {', '.join(repeated)} more than once")
    return names


def compare_seeds(config) -> List[int]:
    """``compare_seeds`` seeds: the run's seed and the next ones."""
    return [int(config["seed"]) + offset for offset in range(int(setting(config, "compare_seeds")))]


def config_files(config, model: str) -> List[str]:
    """The yaml file(s) ``compare_config_files`` gives ``model`` (``sweep``: ``best.yaml`` of the model's sweep in
    its default folder, ``<checkpoint_dir>/sweep-<model>-<dataset>``); a file that is missing is an error."""
    given = (setting(config, "compare_config_files") or {}).get(model) or []
    files = [given] if isinstance(given, str) else list(given)
    default = os.path.join(config["checkpoint_dir"] or "saved", f"sweep-{model}-{config['dataset']}", "best.yaml")
    files = [default if f == SWEEP else f for f in files]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"compare_config_files for {model}: {', '.join(missing)} not found (a sweep writes "
                         f"best.yaml: python -m recbole_paragon.sweep --model={model} --dataset={config['dataset']} "
                         "--params_file=...)")
    return [os.path.abspath(f) for f in files]


def tuned_settings(files: Sequence[str]) -> Dict[str, Any]:
    """The settings of ``files`` (later files win), read with RecBole's yaml loader (plain values only)."""
    import yaml

    settings: Dict[str, Any] = {}
    for path in files:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.load(handle, Loader=yaml_loader()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold settings (key: value lines), got {type(loaded).__name__}")
        settings.update(loaded)
    return settings


def model_settings(config, model: str, seed: int) -> Dict[str, Any]:
    """The config dict ``model`` is trained with for ``seed`` (see the module doc); validation computes only the
    early-stopping metric (the test computes every metric of the run, :mod:`recbole_paragon.compare.runner`)."""
    given = {k: v for k, v in config.external_config_dict.items() if k not in _PLUMBING_KEYS}
    files = config_files(config, model)
    tuned = tuned_settings(files)
    dropped = sorted(k for k in tuned if k in PROTOCOL_KEYS | _PLUMBING_KEYS)
    if dropped:
        getLogger().info(f"compare {model}: the run's {', '.join(dropped)} kept over {', '.join(files)}")
    valid_metric = str(config["valid_metric"])
    return {**given, **{k: v for k, v in tuned.items() if k not in dropped}, "seed": int(seed),
            "metrics": [valid_metric.split("@", 1)[0]], "valid_metric": valid_metric,
            "checkpoint_dir": os.path.abspath(os.path.join(run_directory(config), "compare",
                                                           f".work-{model}-seed{seed}"))}


def model_config(config, model: str, seed: int) -> Config:
    """The RecBole ``Config`` of ``model`` for ``seed`` (no command line read: everything is in the dict)."""
    return Config(model=model, dataset=config["dataset"], config_dict=model_settings(config, model, seed),
                  command_line=[])


def data_digest(data_path: str, dataset: str) -> str:
    """SHA-256 of the dataset's atomic files (``<dataset>.*`` in ``data_path``): results are reused only on the
    same data."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(glob.escape(data_path), glob.escape(dataset) + ".*"))):
        digest.update(os.path.basename(path).encode())
        digest.update(_file_digest(path, os.path.getsize(path), os.path.getmtime(path)).encode())
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_fingerprint(model_config_: Config, metrics: Sequence[str], eval_seed: int) -> str:
    """What a model's measured values depend on: RecBole's settings of the model and data, the data's content, the
    metrics and their settings, and the seed (and batches) of the test split's sampled negatives."""
    sampling = {"eval_batch_size": model_config_["eval_batch_size"]} if is_sampled(model_config_) else {}
    return fingerprint({"model": model_config_["model"], "settings": backbone_config_fingerprint(model_config_),
                        "data": data_digest(model_config_["data_path"], model_config_["dataset"]),
                        "metrics": [str(m).lower() for m in metrics], "topk": model_config_["topk"],
                        "metric_settings": {k: model_config_[k] for k in _METRIC_KEYS}, "eval_seed": int(eval_seed),
                        **sampling})
