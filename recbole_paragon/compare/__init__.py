"""The compare stage: RecBole's own models trained and tested on a run's data, split and protocol, over seeds, in
parallel on Ray, and put beside Paragon's fronts in the run's report (``--stage=compare``)."""
from recbole_paragon.compare.models import (PROTOCOL_KEYS, compare_models, compare_seeds, config_files,
                                            model_config, model_settings, recbole_models)
from recbole_paragon.compare.stage import COMPARE_DIR, compare_stage, comparison_runs, result_path, saved_comparison


def check_compare_settings(config) -> None:
    """Refuse, before anything trains, an unknown model in ``compare_models``, a compare file that is missing, or
    settings of a model (its compare file's) that its RecBole config refuses."""
    for model in compare_models(config):
        model_config(config, model, compare_seeds(config)[0])


__all__ = ["COMPARE_DIR", "PROTOCOL_KEYS", "check_compare_settings", "compare_models", "compare_seeds",
           "compare_stage", "comparison_runs", "config_files", "model_settings", "recbole_models", "result_path",
           "saved_comparison"]
