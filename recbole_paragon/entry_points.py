"""RecBole's own entry points know the Paragon models once ``recbole_paragon`` is imported.

A user's existing RecBole script only adds the import::

    import recbole_paragon
    from recbole.quick_start import run_recbole
    run_recbole(model="ParagonSASRec", dataset="ml-100k")     # trains and tests the backbone stage

- ``recbole.utils.get_model("Paragon<Backbone>")``: RecBole looks a model up with ``importlib.util.find_spec``,
  which honours ``sys.modules``; a module ``recbole.model.sequential_recommender.paragon<backbone>`` is registered
  there for every supported backbone, its class built on first access.
- ``recbole.utils.get_trainer``: ``recbole.trainer.Paragon<Backbone>Trainer`` is the plugin's backbone trainer,
  which also writes the run directory's plain-tensor backbone and fingerprints (so the later stages reuse it).
- ``run_recbole`` / ``objective_function`` build their ``Config`` through :func:`config_for`: the plugin's
  :class:`~recbole_paragon.config.Config` for a Paragon model, RecBole's own ``Config`` for anything else, so every
  other model behaves exactly as without the plugin.
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
import types
from typing import Any, Optional

import yaml
from recbole.config import Config as RecBoleConfig

from recbole_paragon.config import Config
from recbole_paragon.model.paragon import PREFIX, SCORE_HEADS
from recbole_paragon.registry import get_model
from recbole_paragon.store import write_backbone_metadata
from recbole_paragon.training.backbone_trainer import BackboneTrainer

_MODULE_PACKAGE = "recbole.model.sequential_recommender"


class RecBoleBackboneTrainer(BackboneTrainer):
    """The backbone trainer as RecBole's ``run_recbole`` drives it: after the final evaluation of the best
    checkpoint, the run directory's ``backbone-state.pt`` and ``backbone.json`` are written as the backbone stage
    writes them, so ``run_recbole_paragon`` continues from this backbone."""

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        result = super().evaluate(eval_data, load_best_model=load_best_model, model_file=model_file,
                                  show_progress=show_progress)
        if load_best_model and model_file is None and os.path.isfile(self.saved_model_file):
            write_backbone_metadata(self.config, self.model, {
                "best_valid_score": self.best_valid_score, "valid_score_bigger": self.config["valid_metric_bigger"],
                "best_valid_result": dict(self.best_valid_result or {}), "test_result": dict(result or {})})
        return result


def _model_module(name: str) -> types.ModuleType:
    """A module standing for ``Paragon<Backbone>`` in RecBole's model package; the class is built on access."""
    module = types.ModuleType(f"{_MODULE_PACKAGE}.{name.lower()}", f"{name}: a RecBole model of recbole-paragon.")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)

    def __getattr__(attribute: str) -> Any:
        if attribute == name:
            return get_model(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {attribute!r}")

    module.__getattr__ = __getattr__
    return module


def _configured_model(model: Any, config_file_list: Optional[list], config_dict: Optional[dict]) -> Any:
    """The model a RecBole ``Config`` call will use, by RecBole's precedence: argument, command line, dict, files."""
    if model is not None:
        return model
    for argument in sys.argv[1:]:
        if argument.startswith("--model="):
            return argument.split("=", 1)[1]
    if config_dict and config_dict.get("model") is not None:
        return config_dict["model"]
    for path in reversed(config_file_list or []):
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        if isinstance(loaded, dict) and loaded.get("model") is not None:
            return loaded["model"]
    return None


def config_for(model=None, dataset=None, config_file_list=None, config_dict=None) -> RecBoleConfig:
    """RecBole's ``Config(...)`` signature: the plugin's Config for ``Paragon<Backbone>``, RecBole's otherwise."""
    name = _configured_model(model, config_file_list, config_dict)
    paragon = isinstance(name, str) and name.startswith(PREFIX) or (
        isinstance(name, type) and name.__name__.startswith(PREFIX))
    cls = Config if paragon else RecBoleConfig
    return cls(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)


def register_with_recbole() -> None:
    """Make RecBole's ``get_model``, ``get_trainer``, ``run_recbole`` and ``objective_function`` know the Paragon
    models (idempotent)."""
    trainers = importlib.import_module("recbole.trainer")
    for backbone in SCORE_HEADS:
        name = PREFIX + backbone
        sys.modules.setdefault(f"{_MODULE_PACKAGE}.{name.lower()}", _model_module(name))
        setattr(trainers, f"{name}Trainer", RecBoleBackboneTrainer)
    quick_start = importlib.import_module("recbole.quick_start.quick_start")
    quick_start.Config = config_for
