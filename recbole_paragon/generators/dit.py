"""DiT: the transformer denoiser over the tokens of one adapter (Pre / Post / Adaptive conditioning)."""
from __future__ import annotations

import functools
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from recbole_paragon.generators.conditions import CONDITION_MODES, check_choice
from recbole_paragon.generators.features import FourierFeatures, timestep_features
from recbole_paragon.settings import with_defaults


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

    CONDITIONING_ROWS = 2048  # (step, sample) pairs whose conditioning a sampler precomputes at once (~20 MB)

    def __init__(
        self,
        num_tokens: int,
        token_dim: int,
        cond_dim: int,
        d_model: Optional[int] = None,
        n_layers: Optional[int] = None,
        n_heads: Optional[int] = None,
        mlp_ratio: Optional[float] = None,
        condition_mode: Optional[str] = None,
        fourier_features: Optional[int] = None,
        dropout: Optional[float] = None,
    ) -> None:
        """Sizes left ``None`` take the ``dit_<name>`` default of ``properties/overall.yaml``."""
        super().__init__()
        d_model, n_layers, n_heads, mlp_ratio, condition_mode, fourier_features, dropout = with_defaults(
            "dit_", d_model=d_model, n_layers=n_layers, n_heads=n_heads, mlp_ratio=mlp_ratio,
            condition_mode=condition_mode, fourier_features=fourier_features, dropout=dropout).values()
        check_choice("condition_mode", condition_mode, CONDITION_MODES)
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

    def step_functions(self, times: Sequence[int], cond_embedding: torch.Tensor
                       ) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        """The denoiser at each timestep of ``times`` as ``x -> output``, its conditioning precomputed for up to
        ``CONDITIONING_ROWS`` (step, row) pairs at once (what the samplers call)."""
        chunk = max(1, self.CONDITIONING_ROWS // cond_embedding.shape[0])
        for start in range(0, len(times), chunk):
            t = torch.tensor(times[start:start + chunk], dtype=torch.long, device=cond_embedding.device)
            for conditioning in self.step_conditionings(t, cond_embedding):
                yield functools.partial(self.denoise, conditioning=conditioning)

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

