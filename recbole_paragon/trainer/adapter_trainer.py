"""Adapter tuning: frozen backbone, cached states, one adapter per preference (Paragon phase 1)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from recbole.data.interaction import Interaction
from recbole.trainer import Trainer
from tqdm import tqdm

from recbole_paragon.objectives import build_objectives, configured_objectives
from recbole_paragon.objectives.base import CachedBatch
from recbole_paragon.utils import config_get, torch_threads
from recbole_paragon.preference import normalize_preference
from recbole_paragon.strategies import build_strategy
from recbole_paragon.trainer.cache import RepresentationCache


class AdapterTrainer(Trainer):
    """Tunes only the adapter of a frozen ``Paragon<Backbone>`` on the preference-weighted objectives.

    Call :meth:`prepare` once with RecBole's three dataloaders; then :meth:`tune` any number of preferences and
    :meth:`evaluate_vector` any adapter on the cached validation or test states with RecBole's evaluator.
    """

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        self.objective_names: List[str] = configured_objectives(config)
        self.steps = int(config_get(config, "adapter_steps", 300))
        self.batch_size = int(config_get(config, "adapter_batch_size", 256))
        self.learning_rate = float(config_get(config, "adapter_learning_rate", 5e-3))
        self.strategy_name = str(config_get(config, "strategy", "linear"))
        self.threads = int(config_get(config, "adapter_threads", 1))
        self.objectives = None
        self.caches: Dict[str, RepresentationCache] = {}
        self.loaders: Dict[str, object] = {}

    # -- set-up ------------------------------------------------------------------------------------------------------
    def prepare(self, train_data, valid_data=None, test_data=None) -> None:
        """Freeze the backbone, build the objectives (checking side information) and cache every split."""
        self.objectives = build_objectives(self.objective_names, self.config, train_data.dataset, self.model)
        self.model.freeze_backbone()
        self.eval_collector.data_collect(train_data)
        candidates = int(config_get(self.config, "diversity_candidates", 50))
        for split, loader in (("train", train_data), ("valid", valid_data), ("test", test_data)):
            if loader is not None:
                self.loaders[split] = loader
                self.caches[split] = RepresentationCache.build(self.model, loader, candidates)
        for objective in self.objectives:
            objective.prepare(self.caches["train"])

    def objectives_by_name(self, name: str):
        for objective in self.objectives:
            if objective.name == name:
                return objective
        raise ValueError(f"objective {name!r} is not among this run's objectives {self.objective_names}")

    def preference(self, value) -> torch.Tensor:
        return normalize_preference(value, self.objective_names)

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
        strategy = build_strategy(self.strategy_name, self.config, weights.tolist())
        saved = []
        steps_per_epoch = max(1, len(cache) // self.batch_size)
        iterator = tqdm(range(1, steps + 1), desc="adapter", leave=False) if show_progress else range(1, steps + 1)
        for step in iterator:
            batch = batches(generator)
            rows = self.model.adapter(batch.hidden)
            scores = self.model.score_representation(rows)
            losses = [objective.loss(batch, rows, scores) for objective in self.objectives]
            strategy.step(losses, optimizer, parameters, rows=rows)
            if step % steps_per_epoch == 0:
                strategy.on_epoch_end(step // steps_per_epoch - 1)
            if step in keep:
                saved.append((step, self.model.get_adapter_vector()))
        return saved

    # -- evaluation --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate_vector(self, vector: Optional[torch.Tensor], split: str = "valid") -> "OrderedDict[str, float]":
        """RecBole metrics (config ``metrics``/``topk``) of an adapter on the cached ``split``; None = identity."""
        if vector is None:
            self.model.adapter.reset_parameters()
        else:
            self.model.set_adapter_vector(vector)
        return self.evaluate_cache(self.caches[split], self.model.adapter)

    @torch.no_grad()
    def evaluate_cache(self, cache: RepresentationCache, transform, rescore=None) -> "OrderedDict[str, float]":
        """Score cached states through ``transform`` (hidden -> adapted hidden), optionally re-rank the scores
        with ``rescore`` (scores -> scores), and run RecBole's evaluator."""
        for batch in cache.chunks(int(self.config["eval_batch_size"])):
            scores = self.model.score_representation(transform(batch.hidden))
            scores[:, 0] = -torch.inf
            if rescore is not None:
                scores = rescore(scores)
            interaction = Interaction({self.model.USER_ID: batch.users})
            positive_u = torch.arange(len(batch.target))
            self.eval_collector.eval_batch_collect(scores, interaction, positive_u, batch.target)
        return self.evaluator.evaluate(self.eval_collector.get_data_struct())

    # -- RecBole's trainer shape ---------------------------------------------------------------------------------------
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """Tune one adapter at ``config['preference']`` and report its validation result."""
        if not self.caches:
            self.prepare(train_data, valid_data)
        preference = config_get(self.config, "preference", None)
        if preference is None:
            raise ValueError("set `preference` (one weight per objective, e.g. --preference=0.3,0.7) to tune an adapter")
        (_, vector), = self.tune(preference, seed=int(self.config["seed"]), show_progress=show_progress)[-1:]
        self.model.set_adapter_vector(vector)
        result = self.evaluate_vector(vector, "valid") if "valid" in self.caches else OrderedDict()
        score = result.get(self.valid_metric, 0.0)
        return score, result
