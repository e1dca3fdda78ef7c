"""What every setting may be: its type, range or choices, in one declarative table, and the renamed ones.

``properties/overall.yaml`` writes each default; :data:`SCHEMA` says what values a key accepts. Every key the yaml
defines has a rule here (a test checks both ways). :func:`check_setting` raises a ``ValueError`` naming the key, the
value and what is allowed; :func:`recbole_paragon.settings.setting` calls it on every value it reads and the
plugin's ``Config`` calls :func:`check_settings` on the whole configuration when it is built, so a wrong value fails
before anything trains.

Settings renamed in 0.2 keep working for one release: :data:`RENAMED` (old key -> new key) and
:data:`RENAMED_VALUES` (old value -> new value of a key) are applied by :func:`modernise`, which returns the warnings
to show.
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from recbole_paragon.rules import (Rule, anything, as_names, choice, count_by_objectives, files_by_name, flag,
                                   fraction_or_fractions, index_or_name, integer, integers, mapping, names, number,
                                   one_or_many, preference, preferences, text)

__all__ = ["OLD_NAMES", "RENAMED", "RENAMED_VALUES", "Rule", "SCHEMA", "SettingWarning", "check_setting",
           "check_settings", "close_keys", "modernise"]


class SettingWarning(UserWarning):
    """A renamed setting, or an unknown one that looks like a typo of a known one."""


PROBABILITY = number(0, 1)
POSITIVE = number(0, low_open=True)
COUNT = integer(1)

#: Every setting of properties/overall.yaml (and of the dataset / model yaml there): what it accepts.
SCHEMA: Dict[str, Rule] = {
    # data
    "MAX_ITEM_LIST_LENGTH": COUNT,
    "load_col": anything(),
    "category_field": text(optional=True),
    "group_by": choice("field", "activity", "popularity", "length"),
    "group_field": text(optional=True),
    "group_quantile": fraction_or_fractions(),
    "alpha_ndcg_alpha": number(0, 1, low_open=True, high_open=True),
    "eval_args": mapping(),
    "metrics": names(),
    "topk": one_or_many(COUNT),
    "valid_metric": text(),
    "title_field": text(optional=True),
    # backbone training (RecBole's keys, with the plugin's defaults)
    "epochs": integer(0),
    "train_batch_size": COUNT,
    "eval_batch_size": COUNT,
    "learning_rate": POSITIVE,
    "stopping_step": COUNT,
    "loss_type": choice("CE", "BPR"),
    "show_progress": flag(),
    "n_layers": COUNT,
    "n_heads": COUNT,
    "hidden_size": COUNT,
    "inner_size": COUNT,
    "hidden_dropout_prob": number(0, 1, high_open=True),
    "attn_dropout_prob": number(0, 1, high_open=True),
    "backbone_auxiliary": names("category"),
    "backbone_auxiliary_weights": one_or_many(number(0, low_open=True)),
    "backbone_strategy": choice("linear", "pub", "pmtrec"),
    # adapter, objectives, tuning
    "adapter_dim": COUNT,
    "train_adapter_with_backbone": flag(),
    "objectives": names(),
    "preference": preference(),
    "strategy": choice("linear", "pub", "pmtrec"),
    "objective_scale": choice("none", "initial"),
    "adapter_steps": COUNT,
    "adapter_batch_size": COUNT,
    "adapter_learning_rate": POSITIVE,
    "adapter_patience": integer(0),
    "adapter_validation_interval": COUNT,
    "compute_threads": COUNT,
    "accuracy_candidates": integer(1, optional=True),
    "accuracy_negatives": COUNT,
    "diversity_candidates": COUNT,
    "diversity_topk": COUNT,
    "diversity_temperature": POSITIVE,
    "fairness_temperature": POSITIVE,
    "fairness_loss": choice("gap", "worst_group", "cvar"),
    "fairness_cvar_alpha": number(0, 1, low_open=True),
    "exposure_head_share": number(0, 1, low_open=True, high_open=True),
    "exposure_candidates": COUNT,
    "exposure_temperature": POSITIVE,
    "novelty_candidates": COUNT,
    "novelty_temperature": POSITIVE,
    "embedding_diversity_candidates": COUNT,
    "embedding_diversity_temperature": POSITIVE,
    "calibration_alpha": number(0, 1, low_open=True, high_open=True),
    "calibration_candidates": COUNT,
    "calibration_temperature": POSITIVE,
    "side_information_min_share": number(0, 1),
    "lever_bootstrap": integer(20),
    "lever_min_se": number(0),
    # bank
    "bank_grid_step": number(0, 1, low_open=True),
    "bank_grid_offset": number(0, 1, high_open=True),
    "bank_preferences": preferences(),
    "bank_budget": integer(2, optional=True),
    "bank_sampler": choice("sobol", "halton"),
    "bank_seeds": integers(0),
    "bank_checkpoints": integers(1),
    "selection_users": integer(1, optional=True),
    # pipeline
    "stage": choice("all", "backbone", "tune_one", "bank", "generator", "generate_one", "evaluate", "compare",
                    "export", "serve"),  # serve: the HTTP service, which build_config points to
    "run_dir": text(optional=True),
    # strategies
    "pub_update_interval": COUNT,
    "pmtrec_alpha": number(1),
    "pmtrec_temperature": POSITIVE,
    "pmtrec_main_objective": index_or_name(),
    # generators: shared
    "generator": choice("diffusion", "hypernet", "conditioned", "barycentric_soup"),
    "generator_steps": integer(0),  # 0: no bank phase (the generator starts untrained)
    "generator_eval_interval": COUNT,
    "generator_patience": COUNT,
    "generator_validation_fraction": number(0, 1, high_open=True),
    "generator_min_bank": integer(2),
    "generator_seed": integer(optional=True),
    "generator_preferences_per_batch": COUNT,
    # diffusion: bank phase and process
    "diffusion_batch_size": COUNT,
    "diffusion_learning_rate": POSITIVE,
    "diffusion_time_budget": number(0, low_open=True, optional=True),
    "diffusion_condition_on_zero": flag(),
    "diffusion_condition_on_step": flag(),
    "diffusion_timesteps": COUNT,
    "diffusion_schedule": choice("cosine", "linear"),
    "diffusion_beta_start": number(0, 1, low_open=True, high_open=True),
    "diffusion_beta_end": number(0, 1, low_open=True, high_open=True),
    "diffusion_prediction": choice("x0", "eps", "v"),
    "diffusion_p_uncond": PROBABILITY,
    "diffusion_ema_decay": number(0, 1, high_open=True),
    "diffusion_clip_x0": number(0, low_open=True, optional=True),
    "diffusion_normalizer_floor": number(0, 1, low_open=True),
    "diffusion_bank_blends": count_by_objectives(),
    # diffusion: objective fine-tuning
    "finetune_steps": integer(0),
    "finetune_learning_rate": POSITIVE,
    "finetune_anchor": number(0),
    "finetune_concentration": POSITIVE,
    "finetune_zero_share": number(0, 1, high_open=True),
    "finetune_keep_bank": flag(),
    "finetune_ema_decay": number(0, 1, high_open=True),
    "finetune_functional": number(0),
    "finetune_functional_max_objectives": integer(1, optional=True),
    "finetune_selection": choice("best", "last", "auto"),
    # diffusion: DiT denoiser
    "dit_token_mode": choice("hidden_unit", "chunk"),
    "dit_token_size": COUNT,
    "dit_d_model": COUNT,
    "dit_n_layers": COUNT,
    "dit_n_heads": COUNT,
    "dit_mlp_ratio": POSITIVE,
    "dit_condition_mode": choice("pre", "post", "adaptive"),
    "dit_fourier_features": integer(0),
    "dit_dropout": number(0, 1, high_open=True),
    # hypernetwork
    "hypernet_hidden": COUNT,
    "hypernet_fourier_features": integer(0),
    "hypernet_learning_rate": POSITIVE,
    "hypernet_concentration": POSITIVE,
    "hypernet_time_budget": number(0, low_open=True, optional=True),
    # conditioned adapter
    "conditioned_fourier_features": integer(0),
    "conditioned_learning_rate": POSITIVE,
    "conditioned_concentration": POSITIVE,
    "conditioned_time_budget": number(0, low_open=True, optional=True),
    # sampling
    "sampling_steps": COUNT,
    "sampling_method": choice("ddim", "ddpm"),
    "sampling_guidance_scale": number(0),
    "sampling_threads": COUNT,
    "sampling_shared_noise": flag(),
    # evaluation
    "evaluation_grid_step": number(0, 1, low_open=True),
    "evaluation_grid_offset": number(0, 1, high_open=True),
    "evaluation_sample": integer(1, optional=True),
    "evaluation_rays": integer(0),
    "evaluation_holdout": flag(),
    "evaluation_methods": names(),
    "evaluation_retune_seeds": integers(0),
    "evaluation_retrain_preferences": preferences(),
    "evaluation_retrain_epochs": COUNT,
    "mmr_candidates": COUNT,
    # compare: RecBole's models beside Paragon
    "compare_models": names(),
    "compare_seeds": COUNT,
    "compare_config_files": files_by_name(),
    "compare_ray": flag(),
    # sweeps, Ray
    "sweep_stage": choice("backbone", "adapter"),
    "sweep_num_samples": COUNT,
    "sweep_grace_period": COUNT,
    "sweep_reduction_factor": number(1, low_open=True),
    "ray_connect_timeout": POSITIVE,
    "ray_address": text(optional=True),
    "num_workers": COUNT,
    # serving
    "export_grid_step": number(0, 1, low_open=True),
    "serve_adapter_cache_size": integer(0),
    "serve_generation_batch": COUNT,
    "serve_batch_window_ms": number(0),
    "serve_default_k": COUNT,
    "serve_max_k": COUNT,
    "serve_max_history": COUNT,
    "serve_threads": COUNT,
    "serve_host": text(),
    "serve_port": integer(0, 65535),
    "serve_access_log": flag(),
    "serve_workers": COUNT,
    "serve_list_users": flag(),
    "serve_allowed_hosts": names(),
    "serve_max_body_bytes": integer(1024),
    "serve_index_min_items": integer(0),
    "serve_index_expansion": COUNT,
    "serve_index_candidates": integer(0),
    "serve_index_connectivity": integer(2, 256),
    "serve_index_build_expansion": COUNT,
}

#: Settings renamed in 0.2 (old key -> new key): the old spelling works for one release, with a warning.
RENAMED: Dict[str, str] = {
    "adapter_threads": "compute_threads",
    "generator_batch_size": "diffusion_batch_size",
    "generator_learning_rate": "diffusion_learning_rate",
    "generator_time_budget": "diffusion_time_budget",
    "generator_condition_on_zero": "diffusion_condition_on_zero",
    "generator_condition_on_step": "diffusion_condition_on_step",
    "hypernet_preferences_per_batch": "generator_preferences_per_batch",
    **{f"generator_objective_{name}": f"finetune_{name}" for name in (
        "steps", "learning_rate", "anchor", "concentration", "zero_share", "keep_bank", "ema_decay", "functional",
        "functional_max_objectives", "selection")},
    **{f"diffusion_{name}": f"dit_{name}" for name in (
        "token_mode", "token_size", "d_model", "n_layers", "n_heads", "mlp_ratio", "condition_mode",
        "fourier_features", "dropout")},
    "generate_steps": "sampling_steps",
    "generate_sampler": "sampling_method",
    "guidance_scale": "sampling_guidance_scale",
    "generate_threads": "sampling_threads",
    "tune_stage": "sweep_stage",
    "tune_num_samples": "sweep_num_samples",
    "tune_grace_period": "sweep_grace_period",
    "tune_reduction_factor": "sweep_reduction_factor",
}

#: Values renamed in 0.2, per key (old value -> new value); list-valued keys are renamed element-wise.
RENAMED_VALUES: Dict[str, Dict[str, str]] = {
    "stage": {"tune": "tune_one", "generate": "generate_one"},
    "sweep_stage": {"tune": "adapter"},
    "evaluation_methods": {"paragon": "diffusion"},
}


#: New key -> its old spelling.
OLD_NAMES: Dict[str, str] = {new: old for old, new in RENAMED.items()}


def check_setting(key: str, value: Any) -> Any:
    """``value`` if ``key`` accepts it (or has no rule), else a ``ValueError`` naming the key, value and rule."""
    rule = SCHEMA.get(key)
    if rule is not None and not rule.accepts(value):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(f"setting {key}={shown} is not allowed: {key} takes {rule.describe()}")
    return value


def check_settings(settings: Mapping[str, Any]) -> None:
    """Check every key of ``settings`` that has a rule; the first bad one raises."""
    for key in SCHEMA:
        if key in settings:
            check_setting(key, settings[key])


def _renamed_value(key: str, value: Any) -> Tuple[Any, List[str]]:
    table = RENAMED_VALUES.get(key, {})
    if isinstance(value, str) and value in table:
        return table[value], [value]
    if isinstance(value, (list, tuple)):
        old = [v for v in value if isinstance(v, str) and v in table]
        return [table.get(v, v) if isinstance(v, str) else v for v in value], old
    if isinstance(value, str) and "," in value:
        parts = as_names(value)
        old = [p for p in parts if p in table]
        return ([table.get(p, p) for p in parts], old) if old else (value, [])
    return value, []


def modernise(settings: Dict[str, Any]) -> List[str]:
    """Rename old keys and values in ``settings`` in place; returns one warning per rename.

    A new key given as well wins over its old spelling (and the warning says the old one was ignored)."""
    warnings = []
    for old, new in RENAMED.items():
        if old not in settings:
            continue
        value = settings.pop(old)
        if new in settings:
            warnings.append(f"setting '{old}' was renamed '{new}'; both are given, '{old}={value!r}' is ignored")
        else:
            settings[new] = value
            warnings.append(f"setting '{old}' was renamed '{new}': use --{new}= (the old name goes in the next "
                            "release)")
    for key in RENAMED_VALUES:
        if key in settings:
            settings[key], old_values = _renamed_value(key, settings[key])
            for value in old_values:
                warnings.append(f"{key}={value} was renamed {key}={RENAMED_VALUES[key][value]} (the old name goes "
                                "in the next release)")
    return warnings


def close_keys(unknown: Sequence[str], known: Iterable[str]) -> Dict[str, str]:
    """For each unknown key that is close to a known one (a likely typo), the known key it resembles."""
    known = sorted(set(known))
    hints = {}
    for key in unknown:
        match = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if match:
            hints[key] = match[0]
    return hints
