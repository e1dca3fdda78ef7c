"""Adapter tuning: frozen backbone, cached states, one adapter per preference (Paragon phase 1)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from recbole.trainer import Trainer

from recbole_paragon.evaluation.evaluator import SplitEvaluator
from recbole_paragon.model.cache import RepresentationCache
from recbole_paragon.objectives import Objective, build_objectives, configured_objectives
from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.preference import PreferenceLike, as_preference
from recbole_paragon.settings import setting, torch_threads
from recbole_paragon.strategies import Strategy, build_strategy
from recbole_paragon.training.progress import progress

#: The cached split that bank checkpoints and generator validation are measured on: ``selection_users`` users of the
#: validation split (all of them when ``selection_users`` is null or covers them).
SELECTION = "selection"


def cache_candidates(config, objectives: Sequence[Objective]) -> int:
    """How many of the backbone's top items per row to cache: the most any objective reads (at least
    ``diversity_candidates``)."""
    return max([int(setting(config, "diversity_candidates"))] + [int(o.candidates) for o in objectives])


def weighted_step(objectives: Sequence[Objective], strategy: Strategy, optimizer: torch.optim.Optimizer,
                  parameters: List[torch.Tensor], batch: CachedBatch, rows: torch.Tensor,
                  scores: Scores, scales: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """One optimisation step on the objectives' losses for adapted ``rows`` and their ``scores`` (each divided by
    its scale, if given), combined by the strategy (adapter tuning and whole-model retraining share it)."""
    losses = [objective.loss(batch, rows, scores) for objective in objectives]
    if scales is not None:
        losses = [loss / scale for loss, scale in zip(losses, scales)]
    return strategy.step(losses, optimizer, parameters, rows=rows)


class EarlyStopping:
    """Keeps the adapter with the lowest validation loss; says stop after ``patience`` validations without one."""

    def __init__(self, trainer: "AdapterTrainer", weights: torch.Tensor, scales: Optional[torch.Tensor],
                 interval: int, patience: int) -> None:
        self.trainer, self.weights, self.scales = trainer, weights, scales
        self.interval, self.patience = interval, patience
        self.best_loss, self.best, self.best_step, self.stale = float("inf"), trainer.model.get_adapter_vector(), 0, 0

    def check(self, step: int) -> bool:
        if step % self.interval:
            return False
        loss = self.trainer.validation_loss(self.weights, self.scales)
        if loss < self.best_loss:
            self.best_loss, self.best, self.best_step, self.stale = loss, self.trainer.model.get_adapter_vector(), step, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


class AdapterTrainer(Trainer):
    """Tunes only the adapter of a frozen ``Paragon<Backbone>`` on the preference-weighted objectives.

    Call :meth:`prepare` once with RecBole's three dataloaders; then :meth:`tune` any number of preferences and
    :meth:`evaluate_vector` any adapter on the cached validation or test states with RecBole's evaluator.
    """

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        self.objective_names: List[str] = configured_objectives(config)
        self.steps = int(setting(config, "adapter_steps"))
        self.batch_size = int(setting(config, "adapter_batch_size"))
        self.learning_rate = float(setting(config, "adapter_learning_rate"))
        self.strategy_name = str(setting(config, "strategy"))
        self.threads = int(setting(config, "compute_threads"))
        self.objectives: List[Objective] = []
        self.caches: Dict[str, RepresentationCache] = {}
        self.loaders: Dict[str, object] = {}
        self.split_evaluator: Optional[SplitEvaluator] = None
        self.objective_scale = str(setting(config, "objective_scale"))
        self._scales: Optional[torch.Tensor] = None
        self.selection_users: Optional[int] = None  # users in the selection sample; None = the whole valid split
        self.notes: List[str] = []  # what the run should tell its user about the data (side information, defaults)

    # -- set-up ------------------------------------------------------------------------------------------------------
    def prepare(self, train_data, valid_data=None, test_data=None) -> None:
        """Freeze the backbone, build the objectives (checking side information) and cache every split."""
        self.objectives = build_objectives(self.objective_names, self.config, train_data.dataset, self.model)
        self.model.freeze_backbone()
        candidates = cache_candidates(self.config, self.objectives)
        for split, loader in (("train", train_data), ("valid", valid_data), ("test", test_data)):
            if loader is not None:
                self.loaders[split] = loader
                self.caches[split] = RepresentationCache.build(self.model, loader, candidates)
        if "valid" in self.caches:
            self.caches[SELECTION] = self.caches["valid"].user_sample(setting(self.config, "selection_users"),
                                                                      int(setting(self.config, "seed")))
            sampled = self.caches[SELECTION] is not self.caches["valid"]
            self.selection_users = int(setting(self.config, "selection_users")) if sampled else None
        for objective in self.objectives:
            objective.prepare(self.caches["train"])
        self.split_evaluator = SplitEvaluator(self.config, self.model, train_data, self.caches)

    @torch.no_grad()
    def loss_scales(self) -> Optional[torch.Tensor]:
        """``objective_scale: initial``: each objective's loss magnitude for the plain backbone (identity adapter)
        on the first training rows, so that ``Σ wᵢ·Lᵢ/|Lᵢ⁰|`` weighs objectives of very different magnitudes
        (CE ≈ 7, a group gap ≈ 0.03) on one scale; ``none``: no scaling (None)."""
        if self.objective_scale == "none":
            return None
        if self._scales is None:
            cache = self.caches["train"]
            batch = cache.batch(torch.arange(min(len(cache), 8 * self.batch_size)))
            scores = Scores(batch.hidden, self.model)
            values = torch.stack([o.loss(batch, batch.hidden, scores).abs() for o in self.objectives])
            self._scales = values.clamp_min(1e-8)
        return self._scales

    def objectives_by_name(self, name: str):
        for objective in self.objectives:
            if objective.name == name:
                return objective
        raise ValueError(f"objective {name!r} is not among this run's objectives {self.objective_names}")

    def preference(self, value: PreferenceLike) -> torch.Tensor:
        """``value`` validated and normalised for this run's objectives (a normalised tensor passes unchanged)."""
        return as_preference(value, self.objective_names)

    # -- tuning ------------------------------------------------------------------------------------------------------
    def tune(
        self,
        preference,
        seed: int = 0,
        steps: Optional[int] = None,
        checkpoints: Sequence[int] = (),
        show_progress: bool = False,
        batches: Optional[Callable[[torch.Generator], CachedBatch]] = None,
    ) -> List[Tuple[int, torch.Tensor]]:
        """Tune a fresh adapter at ``preference``; return ``(step, vector)`` at each checkpoint and at the end.

        ``batches`` draws a training batch from a random generator; by default it samples the cached train states.
        """
        with torch_threads(self.threads):
            return self._tune(self.preference(preference), seed, int(steps or self.steps), checkpoints,
                              show_progress, batches)

    def _tune(self, weights, seed, steps, checkpoints, show_progress, batches) -> List[Tuple[int, torch.Tensor]]:
        keep = sorted({int(s) for s in checkpoints if 0 < int(s) <= steps} | {steps})
        cache = self.caches["train"]
        batches = batches or (lambda rng: cache.batch(torch.randint(len(cache), (self.batch_size,), generator=rng)))
        torch.manual_seed(seed)
        self.model.adapter.reset_parameters()
        generator = torch.Generator().manual_seed(seed)
        parameters = list(self.model.adapter.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.learning_rate)
        strategy = build_strategy(self.strategy_name, self.config, weights)
        saved = []
        scales = self.loss_scales()
        steps_per_epoch = max(1, len(cache) // self.batch_size)
        stopper = self.early_stopping(weights, scales)
        for step in progress(range(1, steps + 1), "adapter", show_progress, leave=False):
            batch = batches(generator)
            rows = self.model.adapter(batch.hidden)
            weighted_step(self.objectives, strategy, optimizer, parameters, batch, rows, Scores(rows, self.model),
                          scales)
            if step % steps_per_epoch == 0:
                strategy.on_epoch_end(step // steps_per_epoch - 1)
            if step in keep and step != steps:
                saved.append((step, self.model.get_adapter_vector()))
            if stopper is not None and stopper.check(step) or step == steps:
                break
        # the final adapter: the last one, or with early stopping the best on validation (labelled as the cap)
        saved.append((steps, self.model.get_adapter_vector() if stopper is None else stopper.best))
        return saved

    def early_stopping(self, weights: torch.Tensor, scales: Optional[torch.Tensor]) -> Optional["EarlyStopping"]:
        """Validation of the tuning objective ``Σ wᵢ·Lᵢ`` every ``adapter_validation_interval`` steps on the selection
        sample (``adapter_patience`` > 0), or None: a fixed ``adapter_steps``."""
        patience = int(setting(self.config, "adapter_patience"))
        if patience == 0 or SELECTION not in self.caches:
            return None
        return EarlyStopping(self, weights, scales, int(setting(self.config, "adapter_validation_interval")),
                             patience)

    @torch.no_grad()
    def validation_loss(self, weights: torch.Tensor, scales: Optional[torch.Tensor]) -> float:
        """``Σ wᵢ·Lᵢ/sᵢ`` of the current adapter on the selection sample (objectives of weight 0 are skipped)."""
        cache = self.caches[SELECTION]
        total = 0.0
        for batch in cache.chunks(4 * self.batch_size):
            rows = self.model.adapter(batch.hidden)
            scores = Scores(rows, self.model)
            for index, objective in enumerate(self.objectives):
                if weights[index] > 0:
                    scale = 1.0 if scales is None else float(scales[index])
                    total += float(weights[index]) * float(objective.loss(batch, rows, scores)) / scale * len(batch.target)
        return total / len(cache)

    # -- evaluation --------------------------------------------------------------------------------------------------
    def evaluate_vector(self, vector: Optional[torch.Tensor], split: str = "valid") -> "OrderedDict[str, float]":
        """RecBole metrics (config ``metrics``/``topk``) of an adapter on the cached ``split``; None = identity."""
        return self.split_evaluator.vector(vector, split)

    def evaluate_selection(self, vector: Optional[torch.Tensor]) -> "OrderedDict[str, float]":
        """Metrics of an adapter on the selection sample of the validation split (``selection_users``): what the
        bank records for every checkpoint and what generator training validates on."""
        return self.split_evaluator.vector(vector, SELECTION)

    # -- RecBole's trainer shape ---------------------------------------------------------------------------------------
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """Tune one adapter at ``config['preference']`` and report its validation result."""
        if not self.caches:
            self.prepare(train_data, valid_data)
        preference = setting(self.config, "preference")
        if preference is None:
            raise ValueError("set `preference` (one weight per objective, e.g. --preference=0.3,0.7) to tune an adapter")
        (_, vector), = self.tune(preference, seed=int(self.config["seed"]), show_progress=show_progress)[-1:]
        self.model.set_adapter_vector(vector)
        result = self.evaluate_vector(vector, "valid") if "valid" in self.caches else OrderedDict()
        score = result.get(self.valid_metric, 0.0)
        return score, result
