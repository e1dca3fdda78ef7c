"""Objectives by name. Every :class:`Objective` subclass in a module of this package is registered under its
``name``: adding an objective is dropping one file here and naming it in ``objectives:`` in yaml."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Dict, List, Sequence

from recbole_paragon.objectives.base import CachedBatch, Objective
from recbole_paragon.settings import setting_names


def _discover() -> Dict[str, type]:
    registry = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Objective) and obj is not Objective and obj.name:
                registry[obj.name] = obj
    return registry


OBJECTIVES: Dict[str, type] = _discover()


def configured_objectives(config) -> List[str]:
    """``objectives`` from the config as a list of names (``--objectives=[a,b]`` or ``a,b`` on the command line)."""
    return setting_names(config, "objectives")


def check_objective_names(names: Sequence[str]) -> List[str]:
    """Validated list of objective names (at least two, known, no repeats)."""
    names = list(names or [])
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; available: {', '.join(sorted(OBJECTIVES))}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"objectives must name at least two different objectives, got {names}")
    return names


def objective_metric_classes(names: Sequence[str]) -> List[str]:
    """RecBole metric classes that measure the named objectives (diversity adds ILD and CategoryCoverage, fairness
    WorstGroupNDCG and GroupNDCG)."""
    classes = [OBJECTIVES[name].metric_class for name in check_objective_names(names)]
    if "diversity" in names:
        classes += ["ILD", "CategoryCoverage"]
    if "fairness" in names:
        classes += ["WorstGroupNDCG", "GroupNDCG"]
    return classes


def build_objectives(names: Sequence[str], config, dataset, model) -> List[Objective]:
    """Instantiate the objectives in order; each checks the dataset has the side information it needs."""
    return [OBJECTIVES[name](config, dataset, model) for name in check_objective_names(names)]


__all__ = ["CachedBatch", "Objective", "OBJECTIVES", "build_objectives", "check_objective_names", "configured_objectives",
           "objective_metric_classes"]
