"""Every workaround RecBole 1.2.1 needs on today's libraries, applied once on import.

Nothing here copies RecBole code: each fix wraps or rebinds a RecBole name.

1. torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, but RecBole pickles its ``Config`` into every
   checkpoint, so its trainer and ``load_data_and_model`` crash with ``UnpicklingError``. RecBole's own modules get a
   ``torch`` whose ``load`` defaults to ``weights_only=False`` (they only load checkpoints RecBole itself wrote);
   everything else, our artifacts included, keeps the strict default.
2. ``Collector.get_data_struct`` calls ``.cpu()`` on every collected value, but ``data.num_items`` is an ``int`` and
   ``data.count_items`` a ``Counter``: ItemCoverage, GiniIndex, AveragePopularity and TailPercentage crash. Non-tensor
   values are now set aside around the call and restored.
3. ``recbole.model.sequential_recommender.sine`` calls ``torch.autograd.set_detect_anomaly(True)`` at import time,
   and RecBole's sequential package imports it with every other model: autograd anomaly detection (a stack trace
   recorded for every operation) then slows all training in the process several-fold. It is switched off again
   right after RecBole's models are imported.
4. pandas 2.x and torch 2.x emit FutureWarnings from RecBole's dataset code and trainer on every run; they are
   silenced for RecBole's modules only.
5. numpy 1.24+ removed ``np.float`` etc.; RecBole's ``Config.compatibility_settings`` re-adds them, but ray 2.6.3 and
   RecBole's dataset code may run before any Config exists, so the aliases are added here too (numpy<2 is pinned:
   RecBole also needs ``np.float_``, gone in numpy 2).
6. RecBole's ``Config`` reads command-line settings only from ``sys.argv``. A sweep's trials (and Ray workers,
   whose ``sys.argv`` holds Ray's own flags) give theirs explicitly: :func:`command_line_arguments` shows RecBole
   those arguments while it parses, and restores ``sys.argv`` at once.
7. ``Collector.eval_batch_collect`` runs ``topk`` twice over every ``[B, n_items]`` score batch (once for
   ``rec.items``, once for ``rec.topk``) and builds a dense ``[B, n_items]`` positives matrix to look up the hits:
   on a large catalogue that is most of an evaluation's time. When each row has exactly one positive (full-sort
   evaluation of a held-out next item: ``positive_u = 0..B−1``) and the metrics need nothing but those two, the
   same tensors are now computed from one ``topk`` and a comparison with the positive item; anything else goes to
   RecBole's method unchanged.
8. RecBole's dataloaders keep one ``torch.Generator`` seeded once at construction, so a shuffled training loader's
   order depends on how many epochs the process has already iterated: the adapter stage's cache of training states,
   built right after the backbone trained in the same process, came out in another order than one built after
   loading the saved backbone, and the same tuning seed then drew other batches (a bank, and re-tuning, that
   depended on whether the backbone was trained or reused). :func:`first_epoch_order` iterates a loader in its
   first epoch's order and restores the generator afterwards, so training that goes on is not disturbed. RecBole's
   samplers draw the negatives of sampled evaluation (``eval_args.mode: uniN / popN``) from numpy's global random
   state, which depends on everything the process ran before in the same way: while open, the context also seeds
   numpy's global state with the loader's ``seed`` (restored afterwards), so a sampled split's negatives are the
   same whoever evaluates it (a cached split, a model of the compare stage) and however the process got there.
9. RecBole's sampled evaluation scores every (user, candidate) row with ``model.predict``: a sequential model encodes
   the same history again for each of a user's 1 + N rows (101 encodings per user for ``uni100``, as costly as a
   training epoch on every validation). When each score row has one held-out item (its rows share one history), a
   sequential model now encodes the history once (``full_sort_predict``) and the N + 1 scores are gathered from it;
   the first batch a model class scores is checked against ``predict`` on one user's rows, and a class whose scores
   differ (or that has no ``full_sort_predict``) keeps RecBole's way.
"""
from __future__ import annotations

import contextlib
import copy
import sys
import types
import warnings
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

_APPLIED = False
ORIGINAL_GET_DATA_STRUCT = None  # RecBole's unpatched method, kept so tests can show the crash it fixes
ORIGINAL_EVAL_BATCH_COLLECT = None  # RecBole's unpatched method, kept so tests can compare the fast path with it


class _TrustedCheckpointTorch(types.ModuleType):
    """The ``torch`` module as RecBole sees it: identical, except that ``load`` trusts RecBole's own pickles."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str):
        return getattr(torch, name)

    @staticmethod
    def load(f, *args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(f, *args, **kwargs)


def _patch_checkpoint_loading() -> None:
    import recbole.quick_start.quick_start as recbole_quick_start
    import recbole.trainer.trainer as recbole_trainer

    trusted_torch = _TrustedCheckpointTorch()
    recbole_trainer.torch = trusted_torch
    recbole_quick_start.torch = trusted_torch


def _patch_collector() -> None:
    from recbole.evaluator.collector import Collector

    global ORIGINAL_GET_DATA_STRUCT
    original = ORIGINAL_GET_DATA_STRUCT = Collector.get_data_struct

    def get_data_struct(self):
        data = self.data_struct._data_dict
        set_aside = {key: value for key, value in data.items() if not torch.is_tensor(value)}
        for key in set_aside:
            del data[key]
        returned = original(self)
        for key, value in set_aside.items():
            data[key] = value
            returned._data_dict[key] = copy.deepcopy(value)
        return returned

    get_data_struct.__doc__ = original.__doc__
    Collector.get_data_struct = get_data_struct


_FAST_COLLECTED = {"rec.items", "rec.topk"}
_SLOW_COLLECTED = ("rec.meanrank", "rec.score", "data.label")


def _one_positive_per_row(scores: torch.Tensor, positive_u: torch.Tensor, positive_i: torch.Tensor) -> bool:
    rows = len(scores)
    return (len(positive_u) == rows == len(positive_i)
            and torch.equal(positive_u.to(scores.device), torch.arange(rows, device=scores.device)))


def collect_ranked(collector, topk_idx: torch.Tensor, positive_i: torch.Tensor) -> None:
    """What ``eval_batch_collect`` collects as ``rec.items`` and ``rec.topk`` for ranked lists ``topk_idx [B, ≥K]``
    (K the largest ``topk``) with one positive item per row (workaround 7; also for methods that rank lists
    themselves, without a score matrix)."""
    topk_idx = topk_idx[:, : max(collector.topk)]
    if collector.register.need("rec.items"):
        collector.data_struct.update_tensor("rec.items", topk_idx)
    if collector.register.need("rec.topk"):
        hits = (topk_idx == positive_i.to(topk_idx.device)[:, None]).int()
        collector.data_struct.update_tensor("rec.topk", torch.cat((hits, torch.ones_like(hits[:, :1])), dim=1))


def _patch_eval_batch_collect() -> None:
    from recbole.evaluator.collector import Collector

    global ORIGINAL_EVAL_BATCH_COLLECT
    original = ORIGINAL_EVAL_BATCH_COLLECT = Collector.eval_batch_collect

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        needed = {key for key in _FAST_COLLECTED if self.register.need(key)}
        if (not needed or any(self.register.need(key) for key in _SLOW_COLLECTED)
                or not _one_positive_per_row(scores_tensor, positive_u, positive_i)):
            return original(self, scores_tensor, interaction, positive_u, positive_i)
        collect_ranked(self, torch.topk(scores_tensor, max(self.topk), dim=-1)[1], positive_i)

    eval_batch_collect.__doc__ = original.__doc__
    Collector.eval_batch_collect = eval_batch_collect


#: Per sequential model class: whether gathering from ``full_sort_predict`` gives ``predict``'s scores (workaround 9).
SHARED_HISTORY_SCORES: dict = {}
ORIGINAL_NEG_SAMPLE_BATCH_EVAL = None  # RecBole's method, kept so tests can compare the fast path with it


def _gathered_scores(trainer, interaction, row_idx, positive_u):
    """``(scores of every row, score rows)`` from one ``full_sort_predict`` per score row, or None where the rows of a
    score row need not share one history."""
    from recbole.model.abstract_recommender import SequentialRecommender

    model = trainer.model
    if not isinstance(model, SequentialRecommender) or row_idx is None or not len(row_idx):
        return None
    rows = int(row_idx.max()) + 1
    sizes = torch.bincount(row_idx, minlength=rows)
    if len(positive_u) != rows or bool((sizes == 0).any()):  # several held-out items per row: several histories
        return None
    first = torch.cumsum(sizes, 0) - sizes
    full = model.full_sort_predict(interaction[first].to(trainer.device)).view(rows, -1)
    items = interaction[trainer.config["ITEM_ID_FIELD"]].to(trainer.device)
    return full[row_idx.to(trainer.device), items], rows


def _patch_sampled_sequential_eval() -> None:
    from recbole.trainer import Trainer
    from recbole.utils import EvaluatorType

    global ORIGINAL_NEG_SAMPLE_BATCH_EVAL
    original = ORIGINAL_NEG_SAMPLE_BATCH_EVAL = Trainer._neg_sample_batch_eval

    def neg_sample_batch_eval(self, batched_data):
        interaction, row_idx, positive_u, positive_i = batched_data
        kind = type(self.model)
        if self.config["eval_type"] != EvaluatorType.RANKING or SHARED_HISTORY_SCORES.get(kind) is False:
            return original(self, batched_data)
        try:
            gathered = _gathered_scores(self, interaction, row_idx, positive_u)
        except NotImplementedError:
            gathered = None
            SHARED_HISTORY_SCORES[kind] = False
        if gathered is None:
            return original(self, batched_data)
        scores, rows = gathered
        if kind not in SHARED_HISTORY_SCORES:  # once per model class: the same scores as RecBole's predict?
            count = int((row_idx == row_idx[0]).sum())
            expected = self.model.predict(interaction[torch.arange(count)].to(self.device))
            SHARED_HISTORY_SCORES[kind] = bool(torch.allclose(expected, scores[:count], rtol=1e-4, atol=1e-4))
            if not SHARED_HISTORY_SCORES[kind]:
                return original(self, batched_data)
        matrix = torch.full((rows, self.tot_item_num), -np.inf, device=self.device)
        matrix[row_idx.to(self.device), interaction[self.config["ITEM_ID_FIELD"]].to(self.device)] = scores
        return interaction, matrix, positive_u, positive_i

    neg_sample_batch_eval.__doc__ = original.__doc__
    Trainer._neg_sample_batch_eval = neg_sample_batch_eval


def _patch_numpy_aliases() -> None:
    for alias, target in {"bool": np.bool_, "int": np.int_, "float": np.float64, "complex": np.complex128,
                          "object": np.object_, "str": np.str_, "long": np.int_, "unicode": np.str_}.items():
        if alias not in np.__dict__:
            setattr(np, alias, target)
    if not hasattr(np, "bool8"):
        np.bool8 = np.bool_


def _disable_anomaly_detection() -> None:
    import recbole.model.sequential_recommender  # noqa: F401  (imports sine.py, which turns anomaly detection on)

    torch.autograd.set_detect_anomaly(False)


def _silence_recbole_future_warnings() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole(\.|$)")
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


@contextlib.contextmanager
def command_line_arguments(arguments: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` as ``[program, *arguments]`` while RecBole's ``Config`` parses it (workaround 6)."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "recbole_paragon", *arguments]
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def first_epoch_order(dataloader, seed: Optional[int] = None) -> Iterator[None]:
    """While open, ``dataloader`` iterates in the order a freshly built loader's first epoch has, and numpy's global
    random state (RecBole's samplers draw negatives from it) is seeded with ``seed`` (default: the loader's
    ``seed``; workaround 8); both are restored on exit. A loader without RecBole's seeded generator is left as it
    is."""
    generator, config = getattr(dataloader, "generator", None), getattr(dataloader, "config", None)
    if not isinstance(generator, torch.Generator) or config is None:
        yield
        return
    seed = int(config["seed"] if seed is None else seed)
    saved, saved_numpy = generator.get_state(), np.random.get_state()
    generator.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    try:
        yield
    finally:
        generator.set_state(saved)
        np.random.set_state(saved_numpy)


def apply() -> None:
    """Apply every workaround once; safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    _silence_recbole_future_warnings()
    _patch_numpy_aliases()
    _patch_checkpoint_loading()
    _patch_collector()
    _patch_eval_batch_collect()
    _patch_sampled_sequential_eval()
    _disable_anomaly_detection()
    _APPLIED = True


apply()
