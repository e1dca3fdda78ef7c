"""Hyper-parameter sweeps on Ray Tune (``python -m recbole_paragon.sweep``): the params file format and the sweep."""
from recbole_paragon.sweep.params import PARAM_TYPES, parse_params, parse_params_file, parse_params_line
from recbole_paragon.sweep.sweep import BEST_FILE, TRIALS_FILE, build_parser, main, sweep, trial_rows, write_rows

__all__ = ["BEST_FILE", "PARAM_TYPES", "TRIALS_FILE", "build_parser", "main", "parse_params", "parse_params_file",
           "parse_params_line", "sweep", "trial_rows", "write_rows"]
