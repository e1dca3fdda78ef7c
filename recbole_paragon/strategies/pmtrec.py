"""PMTRec — Personalized Multi-Task training for recommender systems (arXiv 2407.21364).

The paper weights the task gradients *per user / per item* from their gradient norms. It gives no code; what follows
is our reading of its text, with every interpretation marked (*I*).

Rows. With ``rows`` given (the per-user representation the losses were computed from, ``[B, H]`` or ``[B, ...]`` —
everything after the first dimension is one user's row, *I*: for a sequential model the per-sequence adapter output
plays the role of the paper's user embedding), per objective ``t`` we take ``G_t = ∂L_t/∂rows`` (``autograd.grad``
with ``retain_graph``), combine the K row gradients of each user into one, and back-propagate the combined gradient
with ``rows.backward(combined)``; then ``optimizer.step()``.

Per row ``b`` (shared by user rows and the per-item fallback below), with preference ``w``:

1. Norms ``n_tb = ‖G_t[b]‖₂``.
2. Normalisation (*I*): ``ñ_tb = n_tb / mean_b' n_tb'``, the mean over the *active* rows (rows where some objective
   has a non-zero gradient; for users that is normally every row, for an item table it leaves out the items absent
   from the batch). Objectives whose gradients live on different scales become comparable; ``ñ ≡ 0`` for an objective
   with no gradient at all.
3. Task Focusing: the main objective's normalised norm is multiplied by ``α^epoch`` (``epoch`` = number of finished
   epochs, from :meth:`on_epoch_end`; 1 during the first epoch). *I*: applied after step 2 — applied to the raw
   norm it would cancel in the normalisation. The factor is capped at ``e^230`` so it never overflows.
4. Gradient Magnitude Balancing: ``p_tb = softmax_t(ñ_tb / τ)`` — the per-row task weights (``last_row_weights``).
5. Combination (*I*, the paper's "combine the normalised gradients" made preference-controllable and scale-preserving)::

       c_tb = p_tb·w_t·[n_tb > 0] / Σ_s p_sb·w_s·[n_sb > 0]          (0 when the denominator is 0)
       g_b  = s_b · Σ_t c_tb · G_t[b] / n_tb,       s_b = Σ_t w_t·n_tb

   i.e. a per-row mixture of unit task directions, scaled to the preference-weighted gradient magnitude of that row
   (the norm linear scalarisation would have if the task gradients were aligned). Equivalently
   ``g_b = Σ_t p_tb·w_t·G_t[b]/n_tb · (s_b / Σ_s p_sb·w_s)``. Properties: with one objective, or a one-hot
   preference ``w = e_k``, ``g_b = G_k[b]`` — plain training on ``L_k`` (tested against :class:`Linear`); objectives
   with a zero gradient on a row take no share of it.

Parameters reached by the losses other than through ``rows`` (e.g. an item-embedding table used for scoring) get
their *direct-path* gradient (total minus the part through ``rows``, found by walking the autograd graph) combined
by the per-item rule below and added to ``.grad``; parameters reached only through ``rows`` get exactly what
``rows.backward(combined)`` gives them. Parameters reached by no loss keep ``grad=None`` (skipped by the optimiser).

Fallback without ``rows`` (*I*, our reading of PMTRec: "item-embedding rows are per-item"): each trainable tensor is combined on
its own, its first dimension being the rows (an embedding table's rows are items; a ``Linear`` weight's rows are
output units); a 1-D or scalar tensor is a single row.

Config keys and validation:

* ``pmtrec_alpha`` (default 1.1): finite and ``≥ 1``; the paper requires ``α > 1``, we also allow ``α = 1`` (Task
  Focusing off, an ablation); ``α < 1`` would *de*-focus the main objective and is rejected.
* ``pmtrec_temperature`` (τ, default 1.0): finite and ``> 0``.
* ``pmtrec_main_objective`` (default 0): index of the main objective in the order of the losses, or its name, looked
  up in the ``objectives`` list of the config.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from recbole_paragon.settings import setting, setting_names
from recbole_paragon.strategies.base import Strategy, check_preference, \
    task_gradients, trainable_parameters

_MAX_LOG_FOCUS = 230.0  # α^epoch capped at e^230 ≈ 1e100: finite in float64 logits


def focus_factor(alpha: float, epoch: int) -> float:
    """``α^epoch`` (capped at ``e^230``)."""
    return math.exp(min(epoch * math.log(alpha), _MAX_LOG_FOCUS))


def pmtrec_combine(grads: torch.Tensor, preference: torch.Tensor, temperature: float,
                   main: Optional[int] = None, focus: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Combine per-row task gradients ``grads [K, N, F]`` into ``[N, F]`` (steps 1–5 of the module docstring).

    Returns ``(combined, weights)`` with ``weights [K, N]`` the Gradient-Magnitude-Balancing softmax ``p_tb``.
    """
    k, n_rows = grads.shape[0], grads.shape[1]
    grads = grads.reshape(k, n_rows, -1)
    norms = grads.norm(dim=2)  # [K, N]
    nonzero = norms > 0
    active = nonzero.any(dim=0)  # [N]
    n_active = int(active.sum())
    mean = (norms * active).sum(dim=1) / max(n_active, 1)  # [K]
    normalised = torch.where(mean[:, None] > 0, norms / mean.clamp_min(torch.finfo(norms.dtype).tiny)[:, None],
                             torch.zeros_like(norms)).to(torch.float64)
    if main is not None and focus != 1.0:
        normalised[main] = normalised[main] * focus
    weights = torch.softmax(normalised / temperature, dim=0)  # [K, N], float64
    w = preference.to(device=grads.device, dtype=torch.float64)[:, None]
    mix = weights * w * nonzero
    denom = mix.sum(dim=0)
    coef = torch.where(denom > 0, mix / denom.clamp_min(1e-300), torch.zeros_like(mix))  # [K, N]
    scale = (w * norms.to(torch.float64)).sum(dim=0)  # [N]
    per_unit = (coef * scale).to(grads.dtype)  # s_b · c_tb
    unit = grads / norms.clamp_min(torch.finfo(norms.dtype).tiny)[..., None]
    combined = (per_unit[..., None] * unit).sum(dim=0)
    return combined, weights.to(grads.dtype)


def _tensor_rows(grads: torch.Tensor) -> torch.Tensor:
    """``[K, *shape]`` → ``[K, rows, features]``: first dimension = rows; 0-/1-D tensors are one row."""
    k = grads.shape[0]
    if grads.dim() <= 2:
        return grads.reshape(k, 1, -1)
    return grads.reshape(k, grads.shape[1], -1)


def _reachable_leaves(roots: Iterable, stop_node=None, stop_var: Optional[torch.Tensor] = None) -> Dict[int, object]:
    """Leaf tensors (``AccumulateGrad`` variables) reachable from autograd nodes ``roots``, not passing ``stop_*``."""
    leaves: Dict[int, object] = {}
    seen = set()
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if stop_node is not None and node is stop_node:
            continue
        var = getattr(node, "variable", None)
        if var is not None:
            if stop_var is None or var is not stop_var:
                leaves[id(var)] = var
            continue
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return leaves


class PMTRec(Strategy):
    """Per-user (per-row) gradient-norm task weighting with Task Focusing and Gradient Magnitude Balancing.

    See the module docstring for the exact equations and interpretations. After :meth:`step`:
    ``last_row_weights`` (``[K, B]`` softmax weights of the user rows, or ``None`` without ``rows``) and
    ``last_combined`` (the combined ``∂/∂rows`` that was back-propagated).
    """

    name = "pmtrec"

    def __init__(self, config, preference: Sequence[float]) -> None:
        super().__init__(config, preference)
        check_preference(self.preference)
        self.preference64 = torch.as_tensor(preference, dtype=torch.float64).reshape(-1)  # full precision for weights
        self.alpha = float(setting(config, "pmtrec_alpha"))  # >= 1 and > 0: the schema's rules
        self.temperature = float(setting(config, "pmtrec_temperature"))
        self.main_objective = self._resolve_main(setting(config, "pmtrec_main_objective"), config)
        self.last_row_weights: Optional[torch.Tensor] = None
        self.last_combined: Optional[torch.Tensor] = None

    @staticmethod
    def _resolve_main(value, config) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, str):
            names = setting_names(config, "objectives")
            if value not in names:
                raise ValueError(f"pmtrec_main_objective {value!r} is not an objective name; known: {names}")
            return names.index(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"pmtrec_main_objective must be an objective index >= 0 or a name, got {value!r}")
        return value

    @property
    def focus(self) -> float:
        """The current Task-Focusing factor ``α^epoch``."""
        return focus_factor(self.alpha, self.epoch)

    def _combine(self, grads: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return pmtrec_combine(grads, self.preference64, self.temperature, self.main_objective, self.focus)

    def _combine_tensors(self, params: List[torch.Tensor], per_task: List[List[Optional[torch.Tensor]]]
                         ) -> Tuple[List[Optional[torch.Tensor]], List[torch.Tensor]]:
        """Per-tensor (per-item-row) combination; ``None`` where no objective reaches the tensor."""
        out, weights = [], []
        for j, p in enumerate(params):
            column = [per_task[i][j] for i in range(len(per_task))]
            if all(g is None for g in column):
                out.append(None)
                continue
            stacked = torch.stack([torch.zeros_like(p) if g is None else g for g in column])
            combined, w = self._combine(_tensor_rows(stacked))
            out.append(combined.reshape(p.shape))
            weights.append(w)
        return out, weights

    def step(self, losses: List[torch.Tensor], optimizer: torch.optim.Optimizer, parameters: List[torch.Tensor],
             rows: Optional[torch.Tensor] = None) -> Dict[str, float]:
        self._check_losses(losses)
        k = len(losses)
        if not 0 <= self.main_objective < k:
            raise ValueError(f"pmtrec_main_objective={self.main_objective} but there are {k} objectives")
        params = trainable_parameters(parameters, optimizer)
        optimizer.zero_grad()
        self.last_row_weights, self.last_combined = None, None
        if rows is None:
            per_task = [task_gradients(loss, params, retain_graph=i < k - 1, none_as_zero=False)
                        for i, loss in enumerate(losses)]
            combined, weights = self._combine_tensors(params, per_task)
            for p, g in zip(params, combined):
                if g is not None:
                    p.grad = g
            mean_weights = torch.cat([w for w in weights], dim=1).mean(dim=1) if weights else \
                self.preference / self.preference.sum()
        else:
            mean_weights = self._step_rows(losses, params, rows)
        optimizer.step()

        w = self.preference.to(losses[0].device)
        logs = {"loss": float(sum(wi * loss.detach() for wi, loss in zip(w, losses))), "focus": self.focus}
        for i, loss in enumerate(losses):
            logs[f"loss_{i}"] = float(loss.detach())
            logs[f"weight_{i}"] = float(mean_weights[i])
        return logs

    def _step_rows(self, losses: List[torch.Tensor], params: List[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        if not isinstance(rows, torch.Tensor) or not rows.requires_grad:
            raise ValueError("PMTRec: rows must be a tensor that requires grad (the representation the losses use)")
        if rows.dim() < 2:
            raise ValueError(f"PMTRec: rows must be [B, H] (or [B, ...]), got shape {tuple(rows.shape)}")
        k = len(losses)
        stop_node = rows.grad_fn
        stop_var = rows if stop_node is None else None
        direct_ids = _reachable_leaves([loss.grad_fn for loss in losses], stop_node, stop_var)
        direct = [p for p in params if id(p) in direct_ids and p is not rows]
        upstream = _reachable_leaves([stop_node]) if stop_node is not None else {}
        both = [n for n, p in enumerate(direct) if id(p) in upstream]

        targets = [rows] + direct
        per_task = [task_gradients(loss, targets, retain_graph=True, none_as_zero=False) for loss in losses]
        row_grads = torch.stack([torch.zeros_like(rows) if t[0] is None else t[0] for t in per_task])
        if both:  # direct path = total − the part through rows
            for i in range(k):
                if per_task[i][0] is None:
                    continue
                via = torch.autograd.grad(rows, [direct[n] for n in both], grad_outputs=per_task[i][0],
                                          retain_graph=True, allow_unused=True)
                for n, g in zip(both, via):
                    if g is not None and per_task[i][1 + n] is not None:
                        per_task[i][1 + n] = per_task[i][1 + n] - g

        combined, weights = self._combine(row_grads.reshape(k, rows.shape[0], -1))
        combined = combined.reshape(rows.shape)
        self.last_row_weights, self.last_combined = weights.detach(), combined.detach()
        direct_combined, _ = self._combine_tensors(direct, [t[1:] for t in per_task])
        rows.backward(combined)
        for p, g in zip(direct, direct_combined):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        return weights.mean(dim=1)
