"""Objectives by name. Every :class:`Objective` subclass in a module of this package is registered under its
``name``: adding an objective is dropping one file here and naming it in ``objectives:`` in yaml."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Dict, List, Sequence

from recbole_paragon.objectives.base import CachedBatch, Objective
from recbole_paragon.objectives.side_information import MissingSideInformation
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
    """Instantiate the objectives in order; each checks the dataset has the side information it needs, and one
    that lacks it names the objectives that would work instead."""
    objectives = []
    for name in check_objective_names(names):
        try:
            objectives.append(OBJECTIVES[name](config, dataset, model))
        except MissingSideInformation as error:
            raise MissingSideInformation(f"{error}. Objectives that need no side information: "
                                         f"{', '.join(side_information_free())}") from None
    return objectives


def side_information_free() -> List[str]:
    """Objectives that read nothing beyond the interactions (and the backbone's own embeddings)."""
    return sorted(name for name, cls in OBJECTIVES.items() if not cls.reads)


def without_categories(names: Sequence[str]) -> List[str]:
    """``names`` for a dataset without item categories: each objective that reads them replaced by its
    ``substitute`` (dropped when it has none or the substitute is there already)."""
    kept: List[str] = []
    for name in names:
        replacement = OBJECTIVES[name].substitute if OBJECTIVES[name].reads == "categories" else name
        if replacement and replacement not in kept:
            kept.append(replacement)
    return kept


__all__ = ["CachedBatch", "MissingSideInformation", "Objective", "OBJECTIVES", "build_objectives",
           "check_objective_names", "configured_objectives", "objective_metric_classes", "side_information_free",
           "without_categories"]
