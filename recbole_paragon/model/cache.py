"""Cached backbone states: the frozen backbone's representation of every sequence in a split, computed once.

Because the backbone is frozen, the adapter's input never changes; tuning an adapter then only runs the adapter and
the (cheap) score head. The backbone's top-M items per sequence are cached too, as candidates for the diversity loss.

A split evaluated with sampled negatives (RecBole's ``eval_args.mode: uniN / popN``: the held-out item and N
sampled items per user) is cached with one row per user as well, plus the items that row is ranked among
(``sampled [N, 1 + n]``, the target first); the negatives are drawn once, when the cache is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import torch

from recbole_paragon.compat import first_epoch_order
from recbole_paragon.objectives.base import CachedBatch


def top_candidates(scores: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` best-scored items of each row ``[B, count]`` (item 0, the padding, never among them)."""
    real = scores.detach()[:, 1:]  # a view: no copy of the [B, n_items] scores
    return real.topk(min(count, real.shape[1]), dim=1).indices + 1


def batch_states(model, batch, num_candidates: int) -> Tuple[torch.Tensor, ...]:
    """One loader batch's cache rows: ``(hidden, target, users, candidates)`` (the cache's field order), plus
    ``sampled`` for a batch of RecBole's sampled evaluation (:func:`sampled_rows`)."""
    interaction = (batch[0] if isinstance(batch, tuple) else batch).to(model.device)
    sampled = None
    if isinstance(batch, tuple) and batch[1] is not None:  # (interaction, row_idx, positive_u, positive_i)
        first, sampled = sampled_rows(interaction[model.ITEM_ID], batch[1], batch[2])
        interaction = interaction[first]
    hidden = model.sequence_representation(interaction)
    target = batch[3] if isinstance(batch, tuple) else interaction[model.POS_ITEM_ID]
    candidates = top_candidates(model.score_representation(hidden), num_candidates)
    rows = (hidden, target, interaction[model.USER_ID], candidates)
    return rows if sampled is None else rows + (sampled.to(hidden.device),)


def sampled_rows(items: torch.Tensor, row_idx: torch.Tensor, positive_u: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """A sampled-evaluation batch (RecBole's ``NegSampleEvalDataLoader``: each score row's interactions in one run,
    its positive first, ``row_idx`` the score row of each interaction): the first interaction of every score row
    and the items each row is ranked among ``[rows, 1 + n]``. One positive per row is required (a held-out next
    item per user, split ``LS``); :func:`recbole_paragon.evaluation.protocol.check_protocol` refuses other splits
    before anything trains."""
    rows = int(row_idx.max()) + 1 if len(row_idx) else 0
    sizes = torch.bincount(row_idx, minlength=rows)
    if len(positive_u) != rows or (rows and bool((sizes != sizes[0]).any())):
        raise ValueError("sampled evaluation (eval_args.mode uniN / popN) needs exactly one held-out item per user "
                         "(eval_args.split {'LS': 'valid_and_test'})")
    first = torch.cumsum(sizes, 0) - sizes
    return first, items.reshape(rows, -1)


@dataclass
class RepresentationCache:
    hidden: torch.Tensor  # [N, H]
    target: torch.Tensor  # [N]
    users: torch.Tensor  # [N]
    candidates: torch.Tensor  # [N, M]
    sampled: Optional[torch.Tensor] = None  # [N, 1 + n]: the items each row is ranked among (sampled evaluation)

    def __len__(self) -> int:
        return self.hidden.shape[0]

    def batch(self, index: torch.Tensor) -> CachedBatch:
        """The rows ``index`` (``index_select``: several times faster than advanced indexing on CPU)."""
        rows = [tensor.index_select(0, index) for tensor in (self.hidden, self.target, self.users, self.candidates)]
        sampled = None if self.sampled is None else self.sampled.index_select(0, index)
        return CachedBatch(*rows, index, sampled)

    def chunks(self, size: int) -> Iterator[CachedBatch]:
        """Consecutive batches of ``size`` rows (views of the cache, no copies)."""
        for start in range(0, len(self), size):
            rows = slice(start, min(start + size, len(self)))
            yield CachedBatch(self.hidden[rows], self.target[rows], self.users[rows], self.candidates[rows],
                              torch.arange(rows.start, rows.stop), None if self.sampled is None else self.sampled[rows])

    def user_sample(self, count: Optional[int], seed: int) -> "RepresentationCache":
        """The rows of ``count`` users drawn without replacement (seeded), in cache order; this cache itself when
        ``count`` is None or covers every user."""
        users = torch.unique(self.users)
        if count is None or int(count) >= len(users):
            return self
        chosen = users[torch.randperm(len(users), generator=torch.Generator().manual_seed(int(seed)))[:int(count)]]
        index = torch.nonzero(torch.isin(self.users, chosen)).flatten()
        return RepresentationCache(self.hidden[index], self.target[index], self.users[index], self.candidates[index],
                                   None if self.sampled is None else self.sampled[index])

    @classmethod
    @torch.no_grad()
    def build(cls, model, dataloader, num_candidates: int) -> "RepresentationCache":
        """Run the frozen backbone once over ``dataloader`` (RecBole train, full-sort or sampled eval loader), in its
        first epoch's order and with its first epoch's sampled negatives whatever the process iterated before (compat
        workaround 8)."""
        was_training = model.training
        model.eval()
        try:
            with first_epoch_order(dataloader):
                rows = [batch_states(model, batch, num_candidates) for batch in dataloader]
        finally:
            model.train(was_training)
        return cls(*(torch.cat(part) for part in zip(*rows)))
