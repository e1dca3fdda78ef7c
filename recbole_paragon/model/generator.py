"""Parameter generators for Paragon: a diffusion model (DiT denoiser) and a hypernetwork baseline.

Everything here is pure torch (no RecBole) and works on flat adapter vectors ``[N, P]`` in the order of
:mod:`recbole_paragon.model.adapter` (``W1 [d, H]`` row-major, ``b1 [d]``, ``W2 [H, d]`` row-major, ``b2 [H]``).

Pipeline of :class:`DiffusionGenerator` (the class a trainer uses)::

    vectors [N, P] --Normalizer--> normalised [N, P] --AdapterTokenizer--> tokens [N, T, D]
        --GaussianDiffusion(DiT)--> loss / samples --inverse--> vectors [B, P]

* :class:`AdapterTokenizer` -- exact, invertible vector <-> token maps ("hidden_unit" or "chunk" layout).
* :class:`Normalizer` -- per-parameter mean / std of the bank, std floored.
* :class:`DiT` -- transformer over the tokens of *one* adapter (attention never crosses batch items), conditioned
  on the timestep and on a condition vector (preference ``w``, optionally plus a checkpoint-step fraction) with
  a learned null embedding for classifier-free guidance; ``condition_mode`` "pre" / "post" / "adaptive".
* :class:`GaussianDiffusion` -- training loss (x0 / eps / v prediction, cosine or linear schedule) and sampling
  (DDIM with few steps or ancestral DDPM over all steps, classifier-free guidance, seeded).
* :class:`EMA` -- exponential moving average of the denoiser weights (sampling uses the average).
* :class:`DiffusionGenerator` -- all of the above behind ``fit_normalizer`` / ``training_loss`` / ``update_ema`` /
  ``generate``; saves as plain tensors + a JSON-able config (``torch.load(weights_only=True)`` loads it).
* :class:`HyperNetwork` -- baseline MLP ``Fourier(w) -> hidden -> hidden -> P`` (+ base vector), same save format.

Typical training loop (the trainer owns the optimiser)::

    gen = DiffusionGenerator(hidden_size=64, adapter_dim=8, cond_dim=2)
    gen.fit_normalizer(bank_vectors)                       # [N, 1096]
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    for step in range(steps):
        loss = gen.training_loss(vectors_batch, cond_batch)  # cond [B, 2] = (w_acc, w_div) (+ step fraction)
        opt.zero_grad(); loss.backward(); opt.step(); gen.update_ema()
    adapters = gen.generate(torch.tensor([[0.3, 0.7]]), steps=20, sampler="ddim", seed=0)   # [1, 1096]
    torch.save(gen.state_dict_plain(), path); gen2 = DiffusionGenerator.from_state(torch.load(path, weights_only=True))
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from recbole_paragon.model.adapter import adapter_size

__all__ = [
    "AdapterTokenizer",
    "Normalizer",
    "FourierFeatures",
    "DiT",
    "GaussianDiffusion",
    "EMA",
    "DiffusionGenerator",
    "HyperNetwork",
    "TOKEN_MODES",
    "CONDITION_MODES",
    "SCHEDULES",
    "PREDICTIONS",
    "SAMPLERS",
]

TOKEN_MODES = ("hidden_unit", "chunk")
CONDITION_MODES = ("pre", "post", "adaptive")
SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("x0", "eps", "v")
SAMPLERS = ("ddim", "ddpm")
STATE_FORMAT = "recbole_paragon.generator/1"


def _choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _as_condition(cond, cond_dim: int) -> torch.Tensor:
    """``cond`` as a finite float tensor ``[B, cond_dim]`` (a 1-D input of length ``cond_dim`` is one row)."""
    cond = torch.as_tensor(cond, dtype=torch.float32)
    if cond.dim() == 1 and cond.numel() == cond_dim:
        cond = cond.unsqueeze(0)
    if cond.dim() != 2 or cond.shape[1] != cond_dim:
        raise ValueError(f"condition must have shape [B, {cond_dim}], got {tuple(cond.shape)}")
    if cond.shape[0] == 0:
        raise ValueError("condition batch is empty")
    if not torch.isfinite(cond).all():
        raise ValueError("condition contains NaN or inf")
    return cond


# --------------------------------------------------------------------------------------------------------------
# Tokenisation and normalisation
# --------------------------------------------------------------------------------------------------------------
class AdapterTokenizer:
    """Exact, invertible map between flat adapter vectors ``[N, P]`` and token sequences ``[N, T, D]``.

    ``mode="hidden_unit"`` (default): one token per bottleneck unit ``i`` of the adapter holding
    ``(W1[i, :], b1[i], W2[:, i])`` -- ``2H + 1`` values -- plus one last token holding ``b2`` (``H`` values,
    zero-padded to ``2H + 1``). For 64 -> 8 -> 64: ``T = 9`` tokens of ``D = 129`` values. Permuting the adapter's
    hidden units permutes the tokens, which suits a transformer.

    ``mode="chunk"`` (reference code): the flat vector cut into consecutive tokens of ``token_size`` values, the
    last one zero-padded. For 1096 parameters and ``token_size=8``: ``T = 137`` tokens of ``D = 8``.

    :attr:`mask` ``[T, D]`` is 1 where a token value is a real parameter and 0 on padding.
    """

    def __init__(self, hidden_size: int, adapter_dim: int, mode: str = "hidden_unit", token_size: int = 8) -> None:
        if hidden_size <= 0 or adapter_dim <= 0:
            raise ValueError(f"adapter sizes must be positive, got hidden_size={hidden_size}, "
                             f"adapter_dim={adapter_dim}")
        self.mode = _choice("token mode", mode, TOKEN_MODES)
        self.hidden_size = int(hidden_size)
        self.adapter_dim = int(adapter_dim)
        self.num_parameters = adapter_size(hidden_size, adapter_dim)
        if mode == "hidden_unit":
            self.num_tokens = self.adapter_dim + 1
            self.token_dim = 2 * self.hidden_size + 1
            self.token_size = self.token_dim
        else:
            if token_size <= 0:
                raise ValueError(f"token_size must be positive, got {token_size}")
            self.token_size = int(token_size)
            self.token_dim = self.token_size
            self.num_tokens = -(-self.num_parameters // self.token_size)
        self.mask = self.tokens(torch.ones(1, self.num_parameters))[0]

    @property
    def shape(self) -> Tuple[int, int]:
        """``(T, D)``."""
        return self.num_tokens, self.token_dim

    def _check_vectors(self, vectors: torch.Tensor) -> None:
        if vectors.dim() != 2 or vectors.shape[1] != self.num_parameters:
            raise ValueError(f"expected vectors [N, {self.num_parameters}], got {tuple(vectors.shape)}")

    def tokens(self, vectors: torch.Tensor) -> torch.Tensor:
        """Flat vectors ``[N, P]`` -> tokens ``[N, T, D]``."""
        self._check_vectors(vectors)
        n, h, d = vectors.shape[0], self.hidden_size, self.adapter_dim
        if self.mode == "chunk":
            padded = vectors.new_zeros(n, self.num_tokens * self.token_size)
            padded[:, : self.num_parameters] = vectors
            return padded.view(n, self.num_tokens, self.token_size)
        w1, b1, w2, b2 = torch.split(vectors, [d * h, d, h * d, h], dim=1)
        units = torch.cat([w1.reshape(n, d, h), b1.unsqueeze(-1), w2.reshape(n, h, d).transpose(1, 2)], dim=-1)
        last = F.pad(b2, (0, self.token_dim - h)).unsqueeze(1)
        return torch.cat([units, last], dim=1)

    def vectors(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[N, T, D]`` -> flat vectors ``[N, P]`` (exact inverse of :meth:`tokens`; padding is dropped)."""
        if tokens.dim() != 3 or tuple(tokens.shape[1:]) != self.shape:
            raise ValueError(f"expected tokens [N, {self.num_tokens}, {self.token_dim}], got {tuple(tokens.shape)}")
        n, h, d = tokens.shape[0], self.hidden_size, self.adapter_dim
        if self.mode == "chunk":
            return tokens.reshape(n, -1)[:, : self.num_parameters].contiguous()
        units, last = tokens[:, :d], tokens[:, d]
        w1 = units[..., :h].reshape(n, d * h)
        b1 = units[..., h]
        w2 = units[..., h + 1:].transpose(1, 2).reshape(n, h * d)
        return torch.cat([w1, b1, w2, last[:, :h]], dim=1)


class Normalizer:
    """Per-parameter standardisation fitted on a bank of vectors ``[N, P]``.

    ``std`` is floored at ``floor × mean(std)`` so parameters that barely vary across the bank (or a bank of one
    vector) are not blown up; if every std is 0 the floor is 1.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(f"mean and std must be 1-D of equal length, got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()) or (std <= 0).any():
            raise ValueError("normaliser mean/std must be finite and std positive")
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, vectors: torch.Tensor, floor: float = 0.1) -> "Normalizer":
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.dim() != 2 or vectors.shape[0] == 0:
            raise ValueError(f"expected a non-empty bank [N, P], got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("bank contains NaN or inf")
        if not (0.0 < floor <= 1.0):
            raise ValueError(f"std floor fraction must be in (0, 1], got {floor}")
        mean = vectors.mean(0)
        std = vectors.std(0, unbiased=False)
        scale = std.mean().item()
        std = std.clamp_min(floor * scale if scale > 0 else 1.0)
        return cls(mean, std)

    @property
    def num_parameters(self) -> int:
        return self.mean.numel()

    def normalize(self, vectors: torch.Tensor) -> torch.Tensor:
        return (vectors - self.mean.to(vectors)) / self.std.to(vectors)

    def denormalize(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors * self.std.to(vectors) + self.mean.to(vectors)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, state: Dict[str, torch.Tensor]) -> "Normalizer":
        return cls(state["mean"], state["std"])


# --------------------------------------------------------------------------------------------------------------
# Denoiser
# --------------------------------------------------------------------------------------------------------------
class FourierFeatures(nn.Module):
    """``c [B, K] -> [c, sin(π k c), cos(π k c)]`` for ``k = 1..num_frequencies`` (output ``K·(2F+1)``).

    Meant for inputs in ``[0, 1]`` (preference weights, step fractions); frequencies are fixed, not learned.
    """

    def __init__(self, in_dim: int, num_frequencies: int) -> None:
        super().__init__()
        if in_dim <= 0 or num_frequencies < 0:
            raise ValueError(f"bad Fourier sizes in_dim={in_dim}, num_frequencies={num_frequencies}")
        self.in_dim = in_dim
        self.register_buffer("frequencies", math.pi * torch.arange(1, num_frequencies + 1, dtype=torch.float32),
                             persistent=False)
        self.out_dim = in_dim * (2 * num_frequencies + 1)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        angles = cond.unsqueeze(-1) * self.frequencies  # [B, K, F]
        return torch.cat([cond, angles.sin().flatten(1), angles.cos().flatten(1)], dim=-1)


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal (log-spaced Fourier) features of integer timesteps ``t [B] -> [B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float().unsqueeze(-1) * freqs
    features = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return F.pad(features, (0, dim - 2 * half))


def _modulation_terms(modulation: torch.Tensor, parts: int) -> Tuple[torch.Tensor, ...]:
    """adaLN output ``[..., parts·d]`` -> ``parts`` tensors ``[..., 1, d]`` in (shift, scale, gate) order, each
    scale returned as ``1 + scale`` so that modulating is one ``addcmul(shift, x, 1 + scale)``."""
    terms = modulation.unsqueeze(-2).chunk(parts, dim=-1)
    return tuple(1 + term if i % 3 == 1 else term for i, term in enumerate(terms))


class _Block(nn.Module):
    """Pre-LN transformer block over the tokens of each sample; adaLN-Zero modulation when ``adaptive``."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float, dropout: float, adaptive: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.adaptive = adaptive
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=not adaptive, eps=1e-6)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=not adaptive, eps=1e-6)
        hidden = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d_model))
        self.dropout = dropout
        if adaptive:
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d_model, 6 * d_model))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, c // self.n_heads).permute(2, 0, 3, 1, 4).unbind(0)
        # [B, heads, T, hd]: attention runs over the T tokens of each sample only, never across the batch.
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))

    def forward(self, x: torch.Tensor, terms: Optional[Sequence[torch.Tensor]]) -> torch.Tensor:
        """``terms``: (shift, 1 + scale, gate) for attention then MLP, each ``[B, 1, d]`` (adaptive only; see
        :func:`_modulation_terms`)."""
        if not self.adaptive:
            x = x + self.attention(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        shift1, scale1, gate1, shift2, scale2, gate2 = terms
        x = torch.addcmul(x, gate1, self.attention(torch.addcmul(shift1, self.norm1(x), scale1)))
        return torch.addcmul(x, gate2, self.mlp(torch.addcmul(shift2, self.norm2(x), scale2)))


class DiT(nn.Module):
    """Transformer denoiser over the ``T`` tokens (of ``D`` values) of one adapter.

    ``forward(x [B, T, D], t [B], cond [B, Kc] | None, drop_cond [B] bool | None) -> [B, T, D]``.

    * Tokens are projected to ``d_model`` and get a learned positional embedding per token.
    * Timestep: sinusoidal features -> MLP. Condition: :class:`FourierFeatures` -> MLP. Where the condition is
      dropped (``drop_cond`` True, or ``cond is None``) a learned null embedding replaces the condition embedding
      (classifier-free guidance).
    * ``condition_mode="pre"``: time + condition embeddings added to every token at the input only.
      ``"post"``: time added at the input; the condition modulates the final features (FiLM: shift/scale after the
      last LayerNorm) followed by a residual MLP head, then the output projection.
      ``"adaptive"``: adaLN-Zero as in DiT -- every block and the final layer get shift/scale/gate computed from
      time + condition, zero-initialised so each block starts as the identity.
    * Attention runs within each sample (``[B, heads, T, T]``), so batch items never influence each other.
    """

    def __init__(
        self,
        num_tokens: int,
        token_dim: int,
        cond_dim: int,
        d_model: int = 128,
        n_layers: int = 3,
        n_heads: int = 4,
        mlp_ratio: float = 2.0,
        condition_mode: str = "adaptive",
        fourier_features: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _choice("condition_mode", condition_mode, CONDITION_MODES)
        if min(num_tokens, token_dim, cond_dim, d_model, n_layers, n_heads) <= 0:
            raise ValueError("DiT sizes must be positive")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if mlp_ratio <= 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"bad mlp_ratio={mlp_ratio} or dropout={dropout}")
        self.config = dict(num_tokens=num_tokens, token_dim=token_dim, cond_dim=cond_dim, d_model=d_model,
                           n_layers=n_layers, n_heads=n_heads, mlp_ratio=float(mlp_ratio),
                           condition_mode=condition_mode, fourier_features=fourier_features, dropout=float(dropout))
        self.num_tokens, self.token_dim, self.cond_dim = num_tokens, token_dim, cond_dim
        self.d_model, self.condition_mode = d_model, condition_mode

        self.input = nn.Linear(token_dim, d_model)
        self.position = nn.Parameter(torch.randn(num_tokens, d_model) * 0.02)
        self.time_embed = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.fourier = FourierFeatures(cond_dim, fourier_features)
        self.cond_embed = nn.Sequential(nn.Linear(self.fourier.out_dim, d_model), nn.SiLU(),
                                        nn.Linear(d_model, d_model))
        self.null_cond = nn.Parameter(torch.randn(d_model) * 0.02)
        adaptive = condition_mode == "adaptive"
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, mlp_ratio, dropout, adaptive) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model, elementwise_affine=False, eps=1e-6)
        if condition_mode != "pre":
            # adaptive: shift/scale from time+condition; post: FiLM from the condition only.
            self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d_model, 2 * d_model))
            nn.init.zeros_(self.final_modulation[1].weight)
            nn.init.zeros_(self.final_modulation[1].bias)
        if condition_mode == "post":
            self.head = nn.Sequential(nn.Linear(d_model, int(d_model * mlp_ratio)), nn.GELU(approximate="tanh"),
                                      nn.Linear(int(d_model * mlp_ratio), d_model))
        self.output = nn.Linear(d_model, token_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def embed_condition(self, cond: Optional[torch.Tensor], drop_cond: Optional[torch.Tensor],
                        batch: int) -> torch.Tensor:
        """Condition embedding ``[B, d_model]``, the learned null embedding where the condition is dropped."""
        null = self.null_cond.expand(batch, -1)
        if cond is None:
            return null
        if cond.shape != (batch, self.cond_dim):
            raise ValueError(f"condition must have shape [{batch}, {self.cond_dim}], got {tuple(cond.shape)}")
        embedded = self.cond_embed(self.fourier(cond))
        if drop_cond is None:
            return embedded
        return torch.where(drop_cond.view(batch, 1), null, embedded)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor] = None,
                drop_cond: Optional[torch.Tensor] = None,
                cond_embedding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Denoiser output ``[B, T, D]``; ``cond_embedding`` (from :meth:`embed_condition`) overrides
        ``cond``/``drop_cond`` -- samplers compute it once instead of at every step."""
        b = x.shape[0]
        if x.shape[1:] != (self.num_tokens, self.token_dim):
            raise ValueError(f"expected tokens [B, {self.num_tokens}, {self.token_dim}], got {tuple(x.shape)}")
        c_emb = self.embed_condition(cond, drop_cond, b) if cond_embedding is None else cond_embedding
        return self.denoise(x, self.conditioning(self.time_embedding(t.reshape(b)), c_emb))

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """Timestep embedding ``t [N] -> [N, d_model]``."""
        return self.time_embed(timestep_features(t, self.d_model))

    def conditioning(self, t_emb: torch.Tensor, c_emb: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """What :meth:`denoise` takes from time and condition embeddings (both ``[..., d_model]``): tensors
        ``[..., 1, d_model]`` -- "pre": (input shift,); "post": (input shift, final shift, final 1 + scale);
        "adaptive": six :func:`_modulation_terms` per block, then the final shift and 1 + scale."""
        if self.condition_mode == "pre":
            return ((t_emb + c_emb).unsqueeze(-2),)
        if self.condition_mode == "post":
            return (t_emb.unsqueeze(-2), *_modulation_terms(self.final_modulation(c_emb), 2))
        block_cond = t_emb + c_emb
        blocks = (term for block in self.blocks for term in _modulation_terms(block.modulation(block_cond), 6))
        return (*blocks, *_modulation_terms(self.final_modulation(block_cond), 2))

    def step_conditionings(self, t: torch.Tensor, cond_embedding: torch.Tensor) -> List[Tuple[torch.Tensor, ...]]:
        """:meth:`conditioning` for each timestep of ``t [S]`` and all rows of ``cond_embedding [B, d_model]``,
        computed in one batched pass (samplers call this once instead of once per step)."""
        shape = (len(t), *cond_embedding.shape)
        terms = self.conditioning(self.time_embedding(t).unsqueeze(1).expand(shape), cond_embedding.expand(shape))
        return list(zip(*(term.unbind(0) for term in terms)))

    def denoise(self, x: torch.Tensor, conditioning: Sequence[torch.Tensor]) -> torch.Tensor:
        """Denoiser output ``[B, T, D]`` for tokens ``x`` and their :meth:`conditioning` (rows ``[B, 1, d]``)."""
        h = self.input(x) + self.position
        if self.condition_mode != "adaptive":
            h = h + conditioning[0]
        for i, block in enumerate(self.blocks):
            h = block(h, conditioning[6 * i: 6 * i + 6] if self.condition_mode == "adaptive" else None)
        h = self.final_norm(h)
        if self.condition_mode != "pre":
            shift, scale = conditioning[-2:]
            h = torch.addcmul(shift, h, scale)
        if self.condition_mode == "post":
            h = h + self.head(h)
        return self.output(h)


# --------------------------------------------------------------------------------------------------------------
# Diffusion
# --------------------------------------------------------------------------------------------------------------
def _alphas_cumprod(timesteps: int, schedule: str, beta_start: float, beta_end: float) -> torch.Tensor:
    if schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    else:  # cosine (Nichol & Dhariwal 2021)
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


class GaussianDiffusion(nn.Module):
    """Gaussian diffusion over token tensors ``[B, T, D]`` with a denoiser such as :class:`DiT`.

    * ``schedule``: "cosine" (default) or "linear" (betas ``beta_start..beta_end``; reference 1e-5..0.02 with
      T=500 -- with T=200 a linear schedule leaves ``ᾱ_T ≈ 0.13``, i.e. not fully noised).
    * ``prediction``: what the denoiser outputs -- "x0" (default; worked best on CPU), "eps" or "v".
    * ``clip_x0``: if set, predicted x0 is clamped to ``[-clip_x0, clip_x0]`` during sampling (normalised units).
    """

    CONDITIONING_ROWS = 2048  # (step, sample) pairs whose DiT conditioning a sampler precomputes at once (~20 MB)

    def __init__(
        self,
        denoiser: nn.Module,
        timesteps: int = 200,
        schedule: str = "cosine",
        prediction: str = "x0",
        beta_start: float = 1e-5,
        beta_end: float = 0.02,
        clip_x0: Optional[float] = None,
    ) -> None:
        super().__init__()
        _choice("schedule", schedule, SCHEDULES)
        _choice("prediction", prediction, PREDICTIONS)
        if int(timesteps) != timesteps or timesteps < 1:
            raise ValueError(f"timesteps must be a positive integer, got {timesteps}")
        if schedule == "linear" and not (0.0 < beta_start <= beta_end < 1.0):
            raise ValueError(f"linear betas need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        if clip_x0 is not None and not (math.isfinite(clip_x0) and clip_x0 > 0):
            raise ValueError(f"clip_x0 must be None or a positive number, got {clip_x0}")
        self.denoiser = denoiser
        self.timesteps = int(timesteps)
        self.schedule, self.prediction = schedule, prediction
        self.beta_start, self.beta_end, self.clip_x0 = float(beta_start), float(beta_end), clip_x0
        ab = _alphas_cumprod(self.timesteps, schedule, beta_start, beta_end)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        betas = 1 - ab / ab_prev
        buffers = {
            "alphas_cumprod": ab,
            "alphas_cumprod_prev": ab_prev,
            "sqrt_ab": ab.sqrt(),
            "sqrt_one_minus_ab": (1 - ab).sqrt(),
            # DDPM posterior q(x_{t-1} | x_t, x0)
            "posterior_variance": betas * (1 - ab_prev) / (1 - ab),
            "posterior_coef_x0": betas * ab_prev.sqrt() / (1 - ab),
            "posterior_coef_xt": (1 - ab_prev) * (1 - betas).sqrt() / (1 - ab),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)
        self._schedules: Dict[Tuple, Tuple[List[int], List[Tuple[torch.Tensor, ...]]]] = {}

    @property
    def token_shape(self) -> Tuple[int, int]:
        return self.denoiser.num_tokens, self.denoiser.token_dim

    @staticmethod
    def _at(buffer: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return buffer[t].view(-1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noised ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε``."""
        return self._at(self.sqrt_ab, t) * x0 + self._at(self.sqrt_one_minus_ab, t) * noise

    def _split_prediction(self, output: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor,
                          clip: bool):
        """Model output -> (predicted x0, predicted ε), given ``a = √ᾱ_t`` and ``s = √(1-ᾱ_t)``."""
        if self.prediction == "x0":
            x0 = output
        elif self.prediction == "eps":
            x0 = (x_t - s * output) / a
        else:  # v = √ᾱ ε − √(1−ᾱ) x0
            x0 = a * x_t - s * output
        clipped = clip and self.clip_x0 is not None
        if clipped:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
        if self.prediction == "eps" and not clipped:
            return x0, output
        if self.prediction == "v" and not clipped:
            return x0, s * x_t + a * output
        return x0, (x_t - a * x0) / s

    def loss(self, x0: torch.Tensor, cond: Optional[torch.Tensor], p_uncond: float = 0.1,
             mask: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean squared error of the denoiser's target at uniformly drawn timesteps (scalar).

        ``x0 [B, T, D]`` clean tokens; ``cond [B, Kc]``; each sample's condition is replaced by the null embedding
        with probability ``p_uncond``; ``mask [T, D]`` (1 = real value) excludes padding from the loss.
        """
        if not 0.0 <= p_uncond <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
        b = x0.shape[0]
        device = x0.device
        t = torch.randint(0, self.timesteps, (b,), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        drop = torch.rand(b, device=device, generator=generator) < p_uncond if p_uncond > 0 else None
        output = self.denoiser(x_t, t, cond, drop)
        if self.prediction == "x0":
            target = x0
        elif self.prediction == "eps":
            target = noise
        else:
            target = self._at(self.sqrt_ab, t) * noise - self._at(self.sqrt_one_minus_ab, t) * x0
        error = (output - target) ** 2
        if mask is None:
            return error.mean()
        mask = mask.to(error)
        return (error * mask).sum() / (mask.sum() * b)

    @staticmethod
    def _condition_embedding(denoiser: nn.Module, cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Condition embeddings for the whole sampling run: ``[B]`` rows, or ``[2B]`` (conditional, null)."""
        b = cond.shape[0]
        if guidance_scale == 1.0:
            return denoiser.embed_condition(cond, None, b)
        if guidance_scale == 0.0:
            return denoiser.embed_condition(None, None, b)
        return torch.cat([denoiser.embed_condition(cond, None, b), denoiser.embed_condition(None, None, b)])

    @staticmethod
    def _guided_output(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       guidance_scale: float) -> torch.Tensor:
        """``model`` (one step's denoiser) at ``x``, both branches in one batch unless s is 1 or 0 (one branch)."""
        if guidance_scale in (0.0, 1.0):
            return model(x)
        b = x.shape[0]
        both = model(torch.cat([x, x]))
        conditional, unconditional = both[:b], both[b:]
        return unconditional + guidance_scale * (conditional - unconditional)

    def _step_models(self, denoiser: nn.Module, times: Sequence[int],
                     cond_embedding: torch.Tensor) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        """The denoiser at each timestep of ``times`` in turn, as ``x -> output``. A :class:`DiT` gets the
        conditioning of up to ``CONDITIONING_ROWS`` (step, row) pairs precomputed at once; other denoisers are
        called as they are."""
        rows, device = cond_embedding.shape[0], cond_embedding.device
        if not isinstance(denoiser, DiT):
            for step in times:
                t = torch.full((rows,), step, dtype=torch.long, device=device)
                yield functools.partial(denoiser, t=t, cond_embedding=cond_embedding)
            return
        chunk = max(1, self.CONDITIONING_ROWS // rows)
        for start in range(0, len(times), chunk):
            t = torch.tensor(times[start:start + chunk], dtype=torch.long, device=device)
            for conditioning in denoiser.step_conditionings(t, cond_embedding):
                yield functools.partial(denoiser.denoise, conditioning=conditioning)

    def _schedule(self, sampler: str, steps: int, eta: float) -> Tuple[List[int], List[Tuple[torch.Tensor, ...]]]:
        """The timesteps of a sampling run and per step the 0-dim float32 tensors ``(√ᾱ_t, √(1-ᾱ_t), coefficient
        of x0, coefficient of ε (DDIM) or x_t (DDPM), noise std)``; cached per (sampler, steps, eta, device).
        Tensors, not Python floats: a float operand costs a dtype conversion in every op."""
        device = self.alphas_cumprod.device
        key = (sampler, steps, eta, device) if sampler == "ddim" else (sampler, device)
        if key not in self._schedules:
            if sampler == "ddim":
                times = self.ddim_timesteps(steps).to(device)
                ab = self.alphas_cumprod[times]
                ab_prev = torch.cat([ab[1:], ab.new_ones(1)])
                sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp_min(0).sqrt()
                coefficients = (ab_prev.sqrt(), (1 - ab_prev - sigma ** 2).clamp_min(0).sqrt(), sigma)
            else:
                times = torch.arange(self.timesteps - 1, -1, -1, device=device)
                coefficients = (self.posterior_coef_x0[times], self.posterior_coef_xt[times],
                                self.posterior_variance[times].sqrt())
            columns = torch.stack([self.sqrt_ab[times], self.sqrt_one_minus_ab[times], *coefficients], dim=1)
            self._schedules[key] = times.tolist(), [tuple(row) for row in columns]
        return self._schedules[key]

    def ddim_timesteps(self, steps: int) -> torch.Tensor:
        """``steps`` evenly spaced timesteps, descending, from ``T-1`` ("trailing" spacing: ends at ``T/steps-1``)."""
        return (self.timesteps - torch.arange(steps, dtype=torch.float64) * self.timesteps / steps).round().long() - 1

    def validate_sampling(self, steps: int, sampler: str, guidance_scale: float, eta: float) -> None:
        _choice("sampler", sampler, SAMPLERS)
        if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must be an integer in [1, {self.timesteps}], got {steps}")
        if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale}")
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {eta}")

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        steps: int = 20,
        sampler: str = "ddim",
        guidance_scale: float = 1.0,
        eta: float = 0.0,
        generator: Optional[torch.Generator] = None,
        denoiser: Optional[nn.Module] = None,
    ) -> torch.Tensor:
        """Clean tokens ``[B, T, D]`` for conditions ``cond [B, Kc]``.

        * ``sampler="ddim"``: ``steps`` evenly spaced timesteps, stochasticity ``eta`` (0 = deterministic DDIM).
        * ``sampler="ddpm"``: ancestral sampling over all ``T`` timesteps (``steps`` and ``eta`` are ignored).
        * ``guidance_scale`` s: ``out = uncond + s·(cond − uncond)``; s = 1 is the plain conditional model (one
          pass), s = 0 the unconditional one (one pass), otherwise both branches run as one batch.
        * ``generator``: all noise is drawn from it, so the same seed gives identical samples.
        * ``denoiser``: use another network with the same interface (e.g. the EMA copy) instead of ``self.denoiser``.
        """
        self.validate_sampling(steps, sampler, guidance_scale, eta)
        guidance_scale = float(guidance_scale)
        denoiser = self.denoiser if denoiser is None else denoiser
        device = self.sqrt_ab.device
        cond = cond.to(device)
        x = torch.randn((cond.shape[0], *self.token_shape), generator=generator, device=device)
        times, coefficients = self._schedule(sampler, int(steps), float(eta))
        models = self._step_models(denoiser, times, self._condition_embedding(denoiser, cond, guidance_scale))
        stochastic = sampler == "ddpm" or eta > 0
        for index, ((a, s, coef_x0, coef_other, std), model) in enumerate(zip(coefficients, models)):
            x0, eps = self._split_prediction(self._guided_output(model, x, guidance_scale), x, a, s, True)
            x = coef_x0 * x0 + coef_other * (x if sampler == "ddpm" else eps)
            if stochastic and index + 1 < len(times):
                x = x + std * torch.randn(x.shape, generator=generator, device=device)
        return x


# --------------------------------------------------------------------------------------------------------------
# EMA
# --------------------------------------------------------------------------------------------------------------
class EMA:
    """Exponential moving average of a module's weights, kept in a frozen copy :attr:`module` (eval mode).

    ``update(model)`` after each optimiser step: ``ema ← d·ema + (1−d)·θ`` with ``d = min(decay, (1+n)/(10+n))``
    (warm-up, so early averages are not dominated by the random initialisation); buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.num_updates += 1
        current = dict(model.named_parameters())
        for name, average in self.module.named_parameters():
            average.lerp_(current[name].detach().to(average), 1.0 - decay)
        buffers = dict(model.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(buffers[name])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averages."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> Dict[str, Any]:
        return {"module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
                "num_updates": self.num_updates, "decay": self.decay, "warmup": self.warmup}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay, self.warmup = float(state["decay"]), bool(state["warmup"])


@contextlib.contextmanager
def _sampling_mode(module: nn.Module, num_threads: Optional[int]) -> Iterator[None]:
    """Inference mode, ``module`` in eval mode and ``num_threads`` torch threads (None: unchanged) for a block;
    mode and thread count are only switched (and restored) where they differ."""
    was_training, threads = module.training, torch.get_num_threads()
    switch_threads = num_threads is not None and int(num_threads) != threads
    if was_training:
        module.eval()
    if switch_threads:
        torch.set_num_threads(int(num_threads))
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            module.train()
        if switch_threads:
            torch.set_num_threads(threads)


def _plain(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


# --------------------------------------------------------------------------------------------------------------
# Convenience wrapper
# --------------------------------------------------------------------------------------------------------------
class PlainStateFile:
    """``save``/``load`` through ``state_dict_plain``/``from_state``: plain tensors, ``weights_only=True`` loads."""

    def save(self, path: str) -> None:
        torch.save(self.state_dict_plain(), path)

    @classmethod
    def load(cls, path: str, map_location="cpu"):
        return cls.from_state(torch.load(path, map_location=map_location, weights_only=True))


class DiffusionGenerator(PlainStateFile):
    """Tokenizer + normaliser + :class:`DiT` + :class:`GaussianDiffusion` + :class:`EMA` for adapter vectors.

    ``cond_dim`` is the length of the condition vector: the preference ``w`` (K values), plus one if a
    checkpoint-step fraction in ``[0, 1]`` is appended (the caller builds the vector; see :meth:`make_condition`).
    Hyperparameters (all JSON-able; defaults follow DESIGN.md "what worked on CPU"):

    ``token_mode="hidden_unit"``, ``token_size=8`` (chunk mode only), ``d_model=128``, ``n_layers=3``,
    ``n_heads=4``, ``mlp_ratio=2.0``, ``condition_mode="adaptive"``, ``fourier_features=8``, ``dropout=0.0``,
    ``timesteps=200``, ``schedule="cosine"``, ``prediction="x0"``, ``beta_start=1e-5``, ``beta_end=0.02``,
    ``clip_x0=None``, ``p_uncond=0.1``, ``ema_decay=0.999``, ``normalizer_floor=0.1``.

    Not an ``nn.Module``: :meth:`parameters` yields the trainable denoiser weights only (the EMA copy is separate).
    """

    DEFAULTS: Dict[str, Any] = dict(
        token_mode="hidden_unit", token_size=8, d_model=128, n_layers=3, n_heads=4, mlp_ratio=2.0,
        condition_mode="adaptive", fourier_features=8, dropout=0.0, timesteps=200, schedule="cosine",
        prediction="x0", beta_start=1e-5, beta_end=0.02, clip_x0=None, p_uncond=0.1, ema_decay=0.999,
        normalizer_floor=0.1,
    )

    def __init__(self, hidden_size: int, adapter_dim: int, cond_dim: int, **hyperparams: Any) -> None:
        unknown = set(hyperparams) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown DiffusionGenerator hyperparameters: {sorted(unknown)}")
        hp = {**self.DEFAULTS, **hyperparams}
        if not 0.0 <= hp["p_uncond"] <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {hp['p_uncond']}")
        if not 0.0 < hp["normalizer_floor"] <= 1.0:
            raise ValueError(f"normalizer_floor must be in (0, 1], got {hp['normalizer_floor']}")
        self.config: Dict[str, Any] = dict(hidden_size=int(hidden_size), adapter_dim=int(adapter_dim),
                                           cond_dim=int(cond_dim), **hp)
        self.hidden_size, self.adapter_dim, self.cond_dim = int(hidden_size), int(adapter_dim), int(cond_dim)
        self.tokenizer = AdapterTokenizer(hidden_size, adapter_dim, hp["token_mode"], hp["token_size"])
        self.denoiser = DiT(
            self.tokenizer.num_tokens, self.tokenizer.token_dim, cond_dim, d_model=hp["d_model"],
            n_layers=hp["n_layers"], n_heads=hp["n_heads"], mlp_ratio=hp["mlp_ratio"],
            condition_mode=hp["condition_mode"], fourier_features=hp["fourier_features"], dropout=hp["dropout"],
        )
        self.diffusion = GaussianDiffusion(
            self.denoiser, timesteps=hp["timesteps"], schedule=hp["schedule"], prediction=hp["prediction"],
            beta_start=hp["beta_start"], beta_end=hp["beta_end"], clip_x0=hp["clip_x0"],
        )
        self.ema = EMA(self.denoiser, decay=hp["ema_decay"])
        self.normalizer: Optional[Normalizer] = None

    # ---- bookkeeping ------------------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Length ``P`` of the adapter vectors this generator produces."""
        return self.tokenizer.num_parameters

    def parameters(self):
        """Trainable parameters (the denoiser's), for the optimiser."""
        return self.denoiser.parameters()

    def train(self, mode: bool = True) -> "DiffusionGenerator":
        self.denoiser.train(mode)
        return self

    def eval(self) -> "DiffusionGenerator":
        return self.train(False)

    def to(self, device) -> "DiffusionGenerator":
        self.denoiser.to(device)
        self.diffusion.to(device)
        self.ema.module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.diffusion.sqrt_ab.device

    @staticmethod
    def make_condition(weights, step_fraction=None) -> torch.Tensor:
        """Condition rows ``[B, K]`` from preference weights ``[B, K]``, or ``[B, K+1]`` with a step fraction."""
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if weights.dim() == 1:
            weights = weights.unsqueeze(0)
        if step_fraction is None:
            return weights
        step = torch.as_tensor(step_fraction, dtype=torch.float32).reshape(-1, 1).expand(weights.shape[0], 1)
        return torch.cat([weights, step], dim=1)

    def _require_normalizer(self) -> Normalizer:
        if self.normalizer is None:
            raise RuntimeError("call fit_normalizer(bank_vectors) (or load a state) before training or generating")
        return self.normalizer

    def _check_vectors(self, vectors) -> torch.Tensor:
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.dim() != 2 or vectors.shape[1] != self.num_parameters:
            raise ValueError(f"expected adapter vectors [N, {self.num_parameters}], got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("adapter vectors contain NaN or inf")
        return vectors

    # ---- training ---------------------------------------------------------------------------------------------
    def fit_normalizer(self, vectors) -> Normalizer:
        """Fit the per-parameter mean/std on the bank ``[N, P]`` (call once, before training)."""
        self.normalizer = Normalizer.fit(self._check_vectors(vectors), floor=self.config["normalizer_floor"])
        return self.normalizer

    def training_loss(self, vectors, cond, p_uncond: Optional[float] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Scalar diffusion loss for a batch of adapter vectors ``[N, P]`` and their conditions ``[N, Kc]``.

        The condition of each sample is dropped with probability ``p_uncond`` (default: the configured value).
        """
        normalizer = self._require_normalizer()
        vectors = self._check_vectors(vectors).to(self.device)
        cond = _as_condition(cond, self.cond_dim).to(self.device)
        if cond.shape[0] != vectors.shape[0]:
            raise ValueError(f"{vectors.shape[0]} vectors but {cond.shape[0]} conditions")
        tokens = self.tokenizer.tokens(normalizer.normalize(vectors))
        p = self.config["p_uncond"] if p_uncond is None else p_uncond
        return self.diffusion.loss(tokens, cond, p_uncond=p, mask=self.tokenizer.mask.to(self.device),
                                   generator=generator)

    def update_ema(self) -> None:
        """Fold the current denoiser weights into the EMA (call after every optimiser step)."""
        self.ema.update(self.denoiser)

    # ---- generation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, cond, steps: int = 20, sampler: str = "ddim", guidance_scale: float = 1.0,
                 seed: Optional[int] = None, eta: float = 0.0, use_ema: bool = True,
                 num_threads: Optional[int] = None) -> torch.Tensor:
        """Adapter vectors ``[B, P]`` (denormalised, on CPU) for conditions ``cond [B, Kc]``.

        Uses the EMA weights unless ``use_ema=False``. ``seed`` (int) makes the result reproducible; ``None`` draws
        from torch's global generator. See :meth:`GaussianDiffusion.sample` for ``steps/sampler/guidance/eta``.
        ``num_threads``: torch intra-op threads for this call only (restored afterwards); ``None`` leaves the
        global setting. The denoiser is tiny, so 1 thread is fastest on CPU, and on a busy 2-core machine 2 threads
        can be ~100x slower (OpenMP spin-waiting) -- pass ``num_threads=1`` when timing generation.
        """
        normalizer = self._require_normalizer()
        cond = _as_condition(cond, self.cond_dim)
        self.diffusion.validate_sampling(steps, sampler, guidance_scale, eta)
        if num_threads is not None and (isinstance(num_threads, bool) or int(num_threads) != num_threads
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be None or a positive integer, got {num_threads}")
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(seed))
        denoiser = self.ema.module if use_ema else self.denoiser
        with _sampling_mode(denoiser, num_threads):
            tokens = self.diffusion.sample(cond, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                                           eta=eta, generator=generator, denoiser=denoiser)
        return normalizer.denormalize(self.tokenizer.vectors(tokens)).cpu()

    # ---- persistence ------------------------------------------------------------------------------------------
    def state_dict_plain(self) -> Dict[str, Any]:
        """Everything as plain tensors / numbers / strings (safe for ``torch.load(weights_only=True)``)."""
        return {
            "format": STATE_FORMAT,
            "kind": "diffusion",
            "config": dict(self.config),
            "denoiser": _plain(self.denoiser.state_dict()),
            "ema": {**self.ema.state_dict(), "module": _plain(self.ema.module.state_dict())},
            "normalizer": None if self.normalizer is None else self.normalizer.state_dict(),
        }

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "DiffusionGenerator":
        """Rebuild a generator from :meth:`state_dict_plain` output."""
        if state.get("format") != STATE_FORMAT or state.get("kind") != "diffusion":
            raise ValueError(f"not a diffusion generator state (format={state.get('format')!r})")
        config = dict(state["config"])
        generator = cls(config.pop("hidden_size"), config.pop("adapter_dim"), config.pop("cond_dim"), **config)
        generator.denoiser.load_state_dict(state["denoiser"])
        generator.ema.load_state_dict(state["ema"])
        if state["normalizer"] is not None:
            generator.normalizer = Normalizer.from_state_dict(state["normalizer"])
        return generator


# --------------------------------------------------------------------------------------------------------------
# Hypernetwork baseline
# --------------------------------------------------------------------------------------------------------------
class HyperNetwork(PlainStateFile, nn.Module):
    """Preference -> parameters MLP: ``Fourier(w) -> hidden -> hidden -> P``, output added to ``base``.

    ``forward(cond [B, Kc]) -> vectors [B, P]``; differentiable, so it can be trained end-to-end on the
    recommendation loss with random preferences (CMR-style). With a ``base`` vector the output layer is
    zero-initialised, so the untrained network returns ``base`` exactly; without one (base = 0) it keeps the
    default init -- an all-zero adapter vector is a stationary point of adapter training (no gradient reaches
    ``W1`` or ``W2``), so starting there would stall.
    """

    def __init__(self, cond_dim: int, num_parameters: int, hidden: int = 256, fourier_features: int = 16,
                 base: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        if min(cond_dim, num_parameters, hidden) <= 0 or fourier_features < 0:
            raise ValueError("HyperNetwork sizes must be positive")
        self.config = dict(cond_dim=int(cond_dim), num_parameters=int(num_parameters), hidden=int(hidden),
                           fourier_features=int(fourier_features))
        self.cond_dim, self.num_parameters = int(cond_dim), int(num_parameters)
        self.fourier = FourierFeatures(cond_dim, fourier_features)
        self.net = nn.Sequential(nn.Linear(self.fourier.out_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, num_parameters))
        if base is None:
            base_vector = torch.zeros(num_parameters)
        else:
            base_vector = torch.as_tensor(base, dtype=torch.float32).detach().clone().reshape(-1)
            if base_vector.numel() != num_parameters or not torch.isfinite(base_vector).all():
                raise ValueError(f"base must be a finite vector of {num_parameters} values")
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("base", base_vector)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=self.base.device)
        if cond.dim() == 1 and cond.numel() == self.cond_dim:
            cond = cond.unsqueeze(0)
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            raise ValueError(f"condition must have shape [B, {self.cond_dim}], got {tuple(cond.shape)}")
        return self.base + self.net(self.fourier(cond))

    def state_dict_plain(self) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "kind": "hypernetwork", "config": dict(self.config),
                "weights": _plain(self.state_dict())}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "HyperNetwork":
        if state.get("format") != STATE_FORMAT or state.get("kind") != "hypernetwork":
            raise ValueError(f"not a hypernetwork state (format={state.get('format')!r})")
        network = cls(**state["config"])
        network.load_state_dict(state["weights"])
        return network
