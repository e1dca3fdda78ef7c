"""Adapter bank: adapters tuned over a grid of preferences, several checkpoints and seeds each (Paragon phase 1).

Stored as ``bank.pt`` (plain tensors: ``vectors [N, P]``, ``preferences [N, K]``, ``steps [N]``, ``seeds [N]``, loadable
with ``torch.load(weights_only=True)``) and ``bank.json`` (backbone fingerprint, dataset, objectives, tuning settings,
per-adapter preference, step, seed and validation metrics, measured on the ``selection_users`` sample of the
validation split). Both are rewritten atomically after every finished
tuning run, so an interrupted collection loses at most the run in progress and resumes where it stopped.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from recbole_paragon.artifacts import (BANK_METADATA, BANK_TENSORS, ArtifactError, load_tensors,
                                       read_json, save_tensors, tensors_fingerprint, write_json)
from recbole_paragon.preference import budgeted_preferences, matches_any, normalize_preference, simplex_grid
from recbole_paragon.settings import setting, settings_with_prefix
from recbole_paragon.training.progress import progress


@dataclass
class AdapterBank:
    """Adapters with their preference, checkpoint step, seed and validation metrics."""

    settings: Dict[str, Any]  # what makes two banks comparable: fingerprint, dataset, objectives, tuning settings
    vectors: List[torch.Tensor] = field(default_factory=list)
    preferences: List[List[float]] = field(default_factory=list)
    steps: List[int] = field(default_factory=list)
    seeds: List[int] = field(default_factory=list)
    metrics: List[Dict[str, float]] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)  # wall time of the tuning run the adapter came from
    levers: Dict[str, Any] = field(default_factory=dict)  # each objective's lever (training/levers.py)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def objectives(self) -> List[str]:
        return list(self.settings["objectives"])

    def add(self, vector: torch.Tensor, preference: Sequence[float], step: int, seed: int,
            metrics: Dict[str, float], seconds: float = 0.0) -> None:
        self.vectors.append(vector.detach().cpu().float())
        self.preferences.append([float(w) for w in preference])
        self.steps.append(int(step))
        self.seeds.append(int(seed))
        self.metrics.append({k: float(v) for k, v in metrics.items()})
        self.seconds.append(float(seconds))

    def find(self, preference: torch.Tensor, seed: int) -> List[int]:
        """Indices of the adapters tuned at this preference with this seed (all checkpoints)."""
        if not self.vectors:
            return []
        same = matches_any(torch.tensor(self.preferences, dtype=torch.float32), preference.reshape(1, -1))
        return [i for i, s in enumerate(self.seeds) if s == seed and bool(same[i])]

    def done(self, preference: torch.Tensor, seed: int) -> bool:
        """Whether a tuning run at this preference and seed is already in the bank."""
        return bool(self.find(preference, seed))

    def tensors(self) -> Dict[str, torch.Tensor]:
        if not self.vectors:
            raise ValueError("the adapter bank is empty")
        return {
            "vectors": torch.stack(self.vectors),
            "preferences": torch.tensor(self.preferences, dtype=torch.float32),
            "steps": torch.tensor(self.steps, dtype=torch.long),
            "seeds": torch.tensor(self.seeds, dtype=torch.long),
        }

    def fingerprint(self) -> str:
        """Identifies the bank's content (used by generators trained on it)."""
        return tensors_fingerprint(self.tensors(), self.settings)

    # -- persistence ---------------------------------------------------------------------------------------------------
    def save(self, directory: str) -> None:
        """Write tensors then metadata, each atomically (metadata last: it is what marks runs as done)."""
        save_tensors(os.path.join(directory, BANK_TENSORS), self.tensors())
        entries = [{"preference": p, "step": st, "seed": sd, "metrics": m, "seconds": t}
                   for p, st, sd, m, t in zip(self.preferences, self.steps, self.seeds, self.metrics, self.seconds)]
        write_json(os.path.join(directory, BANK_METADATA), {"settings": self.settings, "adapters": entries,
                                                            "levers": self.levers})

    @classmethod
    def load(cls, directory: str) -> "AdapterBank":
        fix = (f"delete {os.path.join(directory, BANK_TENSORS)} and {os.path.join(directory, BANK_METADATA)} to "
               "collect the bank again")
        metadata = read_json(os.path.join(directory, BANK_METADATA), fix)
        tensors = load_tensors(os.path.join(directory, BANK_TENSORS), fix)
        entries = metadata.get("adapters") if isinstance(metadata, dict) else None
        if not isinstance(tensors, dict) or "vectors" not in tensors or not isinstance(entries, list):
            raise ArtifactError(f"the bank in {directory} is not one this version wrote; {fix}")
        if tensors["vectors"].shape[0] != len(entries):
            raise ArtifactError(f"the bank in {directory} is inconsistent: {tensors['vectors'].shape[0]} vectors, "
                                f"{len(entries)} metadata entries; {fix}")
        bank = cls(metadata["settings"], levers=metadata.get("levers") or {})
        for vector, entry in zip(tensors["vectors"], entries):
            bank.add(vector, entry["preference"], entry["step"], entry["seed"], entry["metrics"],
                     entry.get("seconds", 0.0))
        return bank

    @staticmethod
    def exists(directory: str) -> bool:
        return os.path.isfile(os.path.join(directory, BANK_METADATA)) and os.path.isfile(
            os.path.join(directory, BANK_TENSORS))

    def check_compatible(self, settings: Dict[str, Any]) -> None:
        """Raise if this bank was collected for another backbone, dataset, objective list or tuning setting."""
        differences = {k: (self.settings.get(k), v) for k, v in settings.items() if self.settings.get(k) != v}
        if differences:
            details = "; ".join(f"{k}: bank has {a!r}, run has {b!r}" for k, (a, b) in differences.items())
            raise ValueError(f"adapter bank does not match this run ({details}). Use another run_dir or delete the "
                             "bank to collect a new one.")


def bank_settings(config, trainer) -> Dict[str, Any]:
    """The settings a bank depends on (anything here changing means the bank must be collected again)."""
    return {
        "backbone_fingerprint": trainer.model.backbone_fingerprint(),
        "model": config["model"],
        "dataset": config["dataset"],
        "objectives": list(trainer.objective_names),
        "strategy": trainer.strategy_name,
        "adapter_steps": trainer.steps,
        "adapter_learning_rate": trainer.learning_rate,
        "adapter_batch_size": trainer.batch_size,
        "hidden_size": trainer.model.adapter.hidden_size,
        "adapter_dim": trainer.model.adapter.adapter_dim,
        # checkpoints measured on another user sample are another bank (None: the whole validation split)
        "selection_users": trainer.selection_users,
        # how the objectives and the strategy are computed: another loss is another bank
        "objective_settings": settings_with_prefix(config, "diversity_", "fairness_", "group_", "alpha_ndcg_",
                                                   "objective_", f"{trainer.strategy_name}_",
                                                   *(o.settings_prefix for o in trainer.objectives
                                                     if o.settings_prefix)),
        # early stopping ends runs sooner: another bank (absent when off, so banks of fixed steps keep matching)
        **({"adapter_patience": int(setting(config, "adapter_patience")),
            "adapter_validation_interval": int(setting(config, "adapter_validation_interval"))}
           if setting(config, "adapter_patience") else {}),
    }


def bank_grid(config, num_objectives: int) -> torch.Tensor:
    """The bank's preferences: ``bank_preferences``, a budget of vertices and low-discrepancy points
    (``bank_budget``, ``bank_sampler``) or the grid (``bank_grid_step``, ``bank_grid_offset``)."""
    explicit = setting(config, "bank_preferences")
    if explicit:
        names = list(setting(config, "objectives"))[:num_objectives]
        return torch.stack([normalize_preference(w, names) for w in explicit])
    budget = setting(config, "bank_budget")
    if budget is not None:
        return budgeted_preferences(num_objectives, int(budget), str(setting(config, "bank_sampler")),
                                    int(setting(config, "seed")))
    return simplex_grid(num_objectives, float(setting(config, "bank_grid_step")),
                        float(setting(config, "bank_grid_offset")))


def pending_runs(trainer, config, directory: str, grid: Optional[torch.Tensor] = None):
    """The bank of ``directory`` (or a new one), the (preference, seed) runs it still lacks, and the checkpoints."""
    settings = bank_settings(config, trainer)
    if AdapterBank.exists(directory):
        bank = AdapterBank.load(directory)
        bank.check_compatible(settings)
    else:
        bank = AdapterBank(settings)
    grid = bank_grid(config, len(trainer.objective_names)) if grid is None else grid
    seeds = [int(s) for s in setting(config, "bank_seeds")]
    checkpoints = [int(s) for s in setting(config, "bank_checkpoints")]
    runs: List[Tuple[torch.Tensor, int]] = [(w, seed) for w in grid for seed in seeds]
    return bank, [(w, seed) for w, seed in runs if not bank.done(w, seed)], checkpoints


def collect_bank(trainer, config, directory: str, show_progress: bool = True,
                 grid: Optional[torch.Tensor] = None) -> AdapterBank:
    """Tune an adapter for every grid preference × seed (resuming a partial bank) and save after each run."""
    bank, todo, checkpoints = pending_runs(trainer, config, directory, grid)
    for preference, seed in progress(todo, "adapter bank", show_progress):
        start = time.perf_counter()
        vectors = trainer.tune(preference, seed=seed, checkpoints=checkpoints)
        seconds = time.perf_counter() - start
        for step, vector in vectors:
            bank.add(vector, preference.tolist(), step, seed, trainer.evaluate_selection(vector), seconds)
        bank.save(directory)
    return bank
