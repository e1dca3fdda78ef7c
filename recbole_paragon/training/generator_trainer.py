"""Generator stage (Paragon phase 2): learn preference -> adapter from the bank, or directly (hypernetwork).

``generator: diffusion`` trains the DiT diffusion model on the adapter bank; ``generator: hypernet`` trains an MLP
from preference to adapter directly on the preference-weighted objectives with random preferences (CMR-style).
Both keep a validation split of bank preferences held out and early-stop on the *recommendation* quality of the
adapters they generate there: the mean absolute difference between the generated and the tuned adapters' validation
metrics of every objective (NDCG@10, AlphaNDCG@10, GroupGap@10) on the ``selection_users`` sample the bank was
measured on, i.e. how faithfully they reproduce tuning. ``generator: barycentric_soup`` is built from the bank's
adapters without training.
"""
from __future__ import annotations

import copy
import time
from logging import getLogger
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from recbole_paragon.generators import GENERATORS, BarycentricSoup, DiffusionGenerator, check_generator_kind
from recbole_paragon.generators.conditions import condition_vectors
from recbole_paragon.model.adapter import Adapter, apply_adapter_vector
from recbole_paragon.objectives.base import Scores
from recbole_paragon.preference import matches_any
from recbole_paragon.settings import setting, torch_threads
from recbole_paragon.training.adapter_trainer import AdapterTrainer
from recbole_paragon.training.bank import AdapterBank
from recbole_paragon.training.bank_interpolation import FunctionalInterpolation
from recbole_paragon.training.progress import progress


def diffusion_hyperparameters(config) -> Dict[str, Any]:
    """The ``dit_<name>`` and ``diffusion_<name>`` settings mapped onto :class:`DiffusionGenerator` hyper-parameters."""
    return {name: setting(config, key) for name, key in DiffusionGenerator.HYPERPARAMETERS.items()}


def held_out_preferences(preferences: torch.Tensor, fraction: float) -> torch.Tensor:
    """Evenly spaced interior preferences (by first weight) kept out of training for validation."""
    distinct = torch.unique(preferences, dim=0)
    distinct = distinct[torch.argsort(distinct[:, 0])]
    count = int(round(fraction * len(distinct)))
    if count == 0:
        return distinct[:0]
    if len(distinct) - count < 2:
        raise ValueError(f"the bank has {len(distinct)} preferences: too few to hold out {count} for validation "
                         "(collect a denser bank or lower generator_validation_fraction)")
    interior = distinct[1:-1]
    picks = torch.linspace(0, len(interior) - 1, count + 2)[1:-1].round().long()
    return interior[picks]


class GeneratorTrainer:
    """Train a generator for the frozen backbone behind ``adapter_trainer`` (its caches and objectives)."""

    def __init__(self, config, adapter_trainer: AdapterTrainer, bank: Optional[AdapterBank],
                 kind: Optional[str] = None) -> None:
        self.config = config
        self.adapter_trainer = adapter_trainer
        self.kind = check_generator_kind(kind or str(setting(config, "generator")))
        self.bank = bank
        self.steps = int(setting(config, "generator_steps"))  # every value is checked by settings.setting
        self.objective_steps = int(setting(config, "finetune_steps"))
        self.objective_concentration = float(setting(config, "finetune_concentration"))
        self.objective_zero_share = float(setting(config, "finetune_zero_share"))
        self.objective_ema_decay = float(setting(config, "finetune_ema_decay"))
        self.objective_functional = self._functional_for(len(adapter_trainer.objective_names))
        self.bank_blends = self._blends_for(len(adapter_trainer.objective_names)) if self.kind == "diffusion" else 0
        self.objective_selection = str(setting(config, "finetune_selection"))
        if self.objective_selection == "auto":
            self.objective_selection = "last" if self.objective_functional > 0 else "best"
        self.batch_size = int(setting(config, "diffusion_batch_size"))
        self.learning_rate = float(setting(config, "diffusion_learning_rate"))
        self.eval_interval = int(setting(config, "generator_eval_interval"))
        self.patience = int(setting(config, "generator_patience"))
        budget = (setting(config, f"{self.kind}_time_budget")
                  if f"{self.kind}_" in GENERATORS[self.kind].settings_prefixes else None)  # a lookup has no cap
        self.time_budget = None if budget is None else float(budget)  # an optional safety cap, off by default
        self.stopped_by = ""
        self.condition_on_step = bool(setting(config, "diffusion_condition_on_step"))
        self.condition_on_zero = bool(setting(config, "diffusion_condition_on_zero")) and self.kind == "diffusion"
        seed = setting(config, "generator_seed")
        self.seed = int(setting(config, "seed") if seed is None else seed)
        self.objective_metrics = [o.metric() for o in adapter_trainer.objectives]
        self.history: List[Dict[str, float]] = []
        self._check_bank()

    # -- data ----------------------------------------------------------------------------------------------------------
    def _check_bank(self) -> None:
        minimum = int(setting(self.config, "generator_min_bank"))
        if self.bank is None or len(self.bank) == 0:
            raise ValueError("the generator needs an adapter bank: run --stage=bank first")
        tensors = self.bank.tensors()
        distinct = len(torch.unique(tensors["preferences"], dim=0))
        if distinct < minimum:
            raise ValueError(f"the adapter bank has {distinct} distinct "
                             f"preferences; the generator needs at least {minimum} (generator_min_bank): a "
                             "smaller bank_grid_step or a larger bank_budget tunes more")
        if self.bank.objectives != self.adapter_trainer.objective_names:
            raise ValueError(f"bank objectives {self.bank.objectives} differ from the run's "
                             f"{self.adapter_trainer.objective_names}")

    def available_rows(self, exclude: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Bank rows minus those of the ``exclude`` preferences (the validation ones included)."""
        tensors = self.bank.tensors()
        keep = ~matches_any(tensors["preferences"], exclude if exclude is not None else torch.zeros(0, 1))
        return {k: v[keep] for k, v in tensors.items()}

    def split(self, exclude: Optional[torch.Tensor] = None) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Training rows of the bank (minus ``exclude`` preferences and the validation ones) and validation prefs."""
        tensors = self.available_rows(exclude)
        validation = held_out_preferences(tensors["preferences"],
                                          float(setting(self.config, "generator_validation_fraction")))
        train = ~matches_any(tensors["preferences"], validation)
        return {k: v[train] for k, v in tensors.items()}, validation

    def _functional_for(self, objectives: int) -> float:
        """The functional weight for a run with ``objectives`` objectives: 0 beyond
        ``finetune_functional_max_objectives`` (~ = no limit)."""
        limit = setting(self.config, "finetune_functional_max_objectives")
        return 0.0 if limit is not None and objectives > limit else float(setting(self.config, "finetune_functional"))

    def _blends_for(self, objectives: int) -> int:
        """The barycentric-soup rows of the bank phase for a run with ``objectives`` objectives:
        ``diffusion_bank_blends`` itself, or its entry for the largest number of objectives up to ``objectives``
        (none: 0)."""
        blends = setting(self.config, "diffusion_bank_blends")
        if not isinstance(blends, Mapping):
            return int(blends)
        below = [k for k in blends if int(k) <= objectives]
        return int(blends[max(below, key=int)]) if below else 0

    def conditions(self, preferences: torch.Tensor, steps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Generator conditions: the preference, plus the checkpoint step as a fraction of the tuning length."""
        fraction = None if steps is None else steps.float() / self.adapter_trainer.steps
        return condition_vectors(preferences, fraction, with_step=self.condition_on_step,
                                 with_zero_flags=self.condition_on_zero)

    # -- validation ----------------------------------------------------------------------------------------------------
    def reference_metrics(self, preferences: torch.Tensor) -> torch.Tensor:
        """Validation metrics of the tuned (final-step) bank adapters at ``preferences`` ``[V, n_objectives]``."""
        tensors = self.bank.tensors()
        rows = []
        for preference in preferences:
            match = matches_any(tensors["preferences"], preference[None]) & (tensors["steps"] ==
                                                                                   tensors["steps"].max())
            entries = [self.bank.metrics[i] for i in torch.nonzero(match).flatten().tolist()]
            rows.append([sum(e[m] for e in entries) / len(entries) for m in self.objective_metrics])
        return torch.tensor(rows)

    def validation_error(self, generate, preferences: torch.Tensor, reference: torch.Tensor) -> float:
        """Mean |generated − tuned| validation metric over held-out preferences and objectives."""
        vectors = generate(preferences)
        results = [self.adapter_trainer.evaluate_selection(v) for v in vectors]  # one evaluation per adapter
        generated = torch.tensor([[result[m] for m in self.objective_metrics] for result in results])
        return float((generated - reference).abs().mean())

    # -- training ------------------------------------------------------------------------------------------------------
    def fit(self, show_progress: bool = True, exclude: Optional[torch.Tensor] = None):
        """Train the configured generator; returns it (best validation state restored)."""
        training = GENERATORS[self.kind].training
        if training == "lookup":  # no optimisation, no validation: every available bank adapter
            return GENERATORS[self.kind].from_bank_rows(self.available_rows(exclude))
        train, validation = self.split(exclude)
        with torch_threads(self.adapter_trainer.threads):
            if training == "bank":
                return self._fit_diffusion(train, validation, show_progress, self.available_rows(exclude))
            return self._fit_on_objectives(validation, show_progress)

    def _loop(self, model_state, step_fn, generate, validation, show_progress, steps: Optional[int] = None,
              phase: str = "bank", keep_start: bool = False, keep_last: bool = False):
        """Shared loop: optimiser steps, periodic validation, early stopping, time budget, best state kept.
        ``keep_start``: the starting state is validated first and stays unless a later one beats it; ``keep_last``:
        validation is only recorded, and the final state is kept after the whole step budget."""
        reference = self.reference_metrics(validation) if len(validation) else None
        steps = self.steps if steps is None else steps
        best, best_state, stale, start = float("inf"), copy.deepcopy(model_state()), 0, time.perf_counter()
        if keep_start and reference is not None:
            best = self.validation_error(generate, validation, reference)
            self.history.append({"step": 0, "phase": phase, "validation_error": best})
        for step in progress(range(1, steps + 1), f"generator ({self.kind}, {phase})", show_progress):
            loss = step_fn()
            out_of_time = self.time_budget is not None and time.perf_counter() - start > self.time_budget
            if step % self.eval_interval and step != steps and not out_of_time:
                continue
            record = {"step": step, "phase": phase, "loss": float(loss), "seconds": time.perf_counter() - start}
            if reference is not None:
                record["validation_error"] = self.validation_error(generate, validation, reference)
            self.history.append(record)
            getLogger().info(f"generator step {step}: {record}")
            score = -step if keep_last else record.get("validation_error", -step)
            if score < best:
                best, best_state, stale = score, copy.deepcopy(model_state()), 0
            else:
                stale += 1
            if stale >= self.patience or out_of_time:
                self.stopped_by = "time budget" if out_of_time else "early stopping"
                if out_of_time:
                    getLogger().warning(f"generator ({self.kind}) stopped by its time budget of {self.time_budget} s "
                                        f"at step {step}: results depend on the machine's speed")
                break
        else:
            self.stopped_by = "step budget"
        return best_state

    def _fit_diffusion(self, train: Dict[str, torch.Tensor], validation: torch.Tensor, show_progress: bool,
                       available: Dict[str, torch.Tensor]):
        torch.manual_seed(self.seed)
        model = self.adapter_trainer.model
        generator = DiffusionGenerator(model.adapter.hidden_size, model.adapter.adapter_dim,
                                       self.conditions(train["preferences"][:1], train["steps"][:1]).shape[1],
                                       **diffusion_hyperparameters(self.config))
        generator.fit_normalizer(train["vectors"])  # the tuned adapters' scale, before any blend is added
        train = self.with_blends(train)
        conditions = self.conditions(train["preferences"], train["steps"])
        optimizer = torch.optim.AdamW(generator.parameters(), lr=self.learning_rate)
        rng = torch.Generator().manual_seed(self.seed)

        def step_fn():
            index = torch.randint(len(conditions), (self.batch_size,), generator=rng)
            loss = generator.training_loss(train["vectors"][index], conditions[index], generator=rng)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            generator.update_ema()
            return loss.detach()

        generate = lambda prefs: generator.generate(self.conditions(prefs), **self.sampling())  # noqa: E731
        best_state = self._loop(generator.state_dict_plain, step_fn, generate, validation, show_progress)
        generator = DiffusionGenerator.from_state(best_state)
        if self.objective_steps > 0:
            generator = self._fine_tune_on_objectives(generator, train, conditions, validation, show_progress,
                                                      self.objective_steps, available)
        return generator

    def with_blends(self, train: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``train`` plus ``bank_blends`` rows (``diffusion_bank_blends``): the barycentric soup of ``train``'s own
        adapters (no validation or test preference among them) at seeded Dirichlet(1) preferences, as final-step rows
        of seed -1."""
        count = self.bank_blends
        if count == 0:
            return train
        rng = torch.Generator().manual_seed(self.seed + 2)
        exponential = -torch.log(torch.rand(count, train["preferences"].shape[1], generator=rng).clamp_min(1e-12))
        preferences = exponential / exponential.sum(1, keepdim=True)  # Dirichlet(1): uniform on the simplex
        blends = {"preferences": preferences, "vectors": BarycentricSoup.from_bank_rows(train)(preferences),
                  "steps": train["steps"].max().repeat(count), "seeds": torch.full((count,), -1)}
        missing = set(train) - set(blends)
        if missing:
            raise ValueError(f"bank rows {sorted(missing)} have no blended counterpart")
        return {key: torch.cat([train[key], blends[key].to(train[key].dtype)]) for key in train}

    def _fine_tune_on_objectives(self, generator: DiffusionGenerator, train: Dict[str, torch.Tensor],
                                 conditions: torch.Tensor, validation: torch.Tensor, show_progress: bool,
                                 objective_steps: int, available: Dict[str, torch.Tensor]):
        """Objective-aware fine-tuning: adapters sampled (DDIM, ``sampling_steps``, through the sampler) at random
        Dirichlet preferences are scored on the preference-weighted objectives, as the hypernetwork trains, while
        ``finetune_anchor`` x the diffusion loss on the bank keeps the generator on the bank's manifold.
        Validated like the bank phase; with ``finetune_keep_bank`` the bank-trained generator is kept unless
        a fine-tuned state validates better, else the best fine-tuned state is used. What is validated and kept is
        an EMA of the fine-tuned weights (``finetune_ema_decay``, from the bank-phase EMA; decay 0 keeps
        the raw weights).

        With ``finetune_functional`` = W > 0, a preference between bank preferences (``available``: the
        bank less the excluded preferences, the validation ones included — they are tuned adapters like the rest)
        also pays W x the distance to the interpolated outputs of its neighbours; one without neighbours has its
        objective loss weighted 1 + W instead, so that Adam's scaling by the larger gradients does not slow it."""
        generator.start_from_ema()
        generator.restart_ema(self.objective_ema_decay)
        optimizer = torch.optim.Adam(generator.parameters(),
                                     lr=float(setting(self.config, "finetune_learning_rate")))
        anchor = float(setting(self.config, "finetune_anchor"))
        groups = int(setting(self.config, "generator_preferences_per_batch"))
        sampling_steps = self.sampling()["steps"]
        rng = torch.Generator().manual_seed(self.seed + 1)
        functional = None
        if self.objective_functional > 0:
            adapter_dim = self.adapter_trainer.model.adapter.adapter_dim
            functional = FunctionalInterpolation.from_bank_rows(available, adapter_dim)
        cache = self.adapter_trainer.caches["train"]  # the users whose states the functional target is measured on

        def step_fn():
            preferences = self.fine_tuning_preferences(groups)
            vectors = generator.generate_with_grad(self.conditions(preferences), sampling_steps, generator=rng)
            neighbours = None if functional is None else functional.neighbours(preferences)
            weights = None if neighbours is None else 1.0 + self.objective_functional * ~neighbours[1]
            loss = self.objective_loss(preferences, vectors, rng, weights)
            if functional is not None:  # between bank preferences: the neighbours' behaviour, not their parameters
                users = torch.randint(len(cache), (self.adapter_trainer.batch_size,), generator=rng)
                loss = loss + self.objective_functional * functional.loss(preferences, vectors,
                                                                          cache.batch(users).hidden, neighbours)
            if anchor > 0:
                index = torch.randint(len(conditions), (self.batch_size,), generator=rng)
                loss = loss + anchor * generator.training_loss(train["vectors"][index], conditions[index],
                                                               generator=rng)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            generator.update_ema()
            return loss.detach()

        def generate(preferences):  # the fine-tuning EMA, not the bank-phase copy it started from
            return generator.generate(self.conditions(preferences), **self.sampling())

        best_state = self._loop(generator.state_dict_plain, step_fn, generate, validation, show_progress,
                                steps=objective_steps, phase="objectives",
                                keep_start=bool(setting(self.config, "finetune_keep_bank")),
                                keep_last=self.objective_selection == "last")
        return DiffusionGenerator.from_state(best_state)

    def fine_tuning_preferences(self, count: int) -> torch.Tensor:
        """``[count, K]`` preferences for objective fine-tuning: Dirichlet(``finetune_concentration``),
        each weight then set to exactly 0 with probability ``finetune_zero_share`` (never all of them).
        A weight of exactly 0 gives its objective no gradient at all, which tuning answers differently from any small
        weight (pure diversity drifts much further from the backbone than w_accuracy = 0.05), so the simplex's
        vertices and faces are sampled as themselves."""
        names = self.adapter_trainer.objective_names
        preferences = torch.distributions.Dirichlet(torch.full((len(names),), self.objective_concentration)) \
            .sample((count,))
        zero = torch.rand(preferences.shape) < self.objective_zero_share
        zero &= ~zero.all(1, keepdim=True)
        preferences = preferences.masked_fill(zero, 0.0)
        return preferences / preferences.sum(1, keepdim=True)

    def objective_loss(self, preferences: torch.Tensor, vectors: torch.Tensor, rng: torch.Generator,
                       row_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Mean over preferences of ``w · losses`` (times ``row_weights``, default 1) of each adapter vector on its
        own batch of training users (the losses divided by the trainer's scales, as in tuning)."""
        trainer = self.adapter_trainer
        cache, groups = trainer.caches["train"], len(preferences)
        scales = trainer.loss_scales()
        scales = torch.ones(len(trainer.objectives)) if scales is None else scales
        total = 0.0
        row_weights = torch.ones(groups) if row_weights is None else row_weights
        for preference, vector, row_weight in zip(preferences, vectors, row_weights):
            batch = cache.batch(torch.randint(len(cache), (max(1, trainer.batch_size // groups),), generator=rng))
            rows = apply_adapter_vector(batch.hidden, vector, trainer.model.adapter.adapter_dim)
            scores = Scores(rows, trainer.model)  # one per batch: the objectives share what they score
            losses = torch.stack([o.loss(batch, rows, scores) for o in trainer.objectives])
            total = total + row_weight * (preference * (losses / scales)).sum() / groups
        return total

    def sampling(self) -> Dict[str, Any]:
        return {"steps": int(setting(self.config, "sampling_steps")),
                "sampler": str(setting(self.config, "sampling_method")),
                "guidance_scale": float(setting(self.config, "sampling_guidance_scale")),
                "seed": self.seed,
                "num_threads": int(setting(self.config, "sampling_threads")),
                "shared_noise": bool(setting(self.config, "sampling_shared_noise"))}

    def _fit_on_objectives(self, validation: torch.Tensor, show_progress: bool):
        """A direct map ``w -> vector`` (hypernetwork, conditioned adapter), from a fresh adapter, trained on the
        preference-weighted objectives with ``w ~ Dirichlet(<kind>_concentration)``."""
        torch.manual_seed(self.seed)
        adapter: Adapter = self.adapter_trainer.model.adapter
        adapter.reset_parameters()
        network = GENERATORS[self.kind].for_adapter(len(self.adapter_trainer.objective_names), adapter, self.config)
        optimizer = torch.optim.Adam(network.parameters(), lr=float(setting(self.config,
                                                                            f"{self.kind}_learning_rate")))
        groups = int(setting(self.config, "generator_preferences_per_batch"))
        rng = torch.Generator().manual_seed(self.seed)
        concentration = float(setting(self.config, f"{self.kind}_concentration"))
        simplex = torch.distributions.Dirichlet(torch.full((len(self.adapter_trainer.objective_names),),
                                                           concentration))

        def step_fn():
            preferences = simplex.sample((groups,))
            total = self.objective_loss(preferences, network(preferences), rng)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            return total.detach()

        generate = lambda prefs: network(prefs).detach()  # noqa: E731
        best_state = self._loop(network.state_dict_plain, step_fn, generate, validation, show_progress,
                                phase="objectives")
        return type(network).from_state(best_state)
