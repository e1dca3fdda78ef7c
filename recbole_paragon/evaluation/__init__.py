"""Evaluation: RecBole's metrics on cached splits (:mod:`.evaluator`), controllability measures (:mod:`.measures`)
and the report (:mod:`.report`)."""
from recbole_paragon.evaluation.evaluator import SplitEvaluator
from recbole_paragon.evaluation.measures import (controllability, default_reference, fidelity, hypervolume,
                                                 hypervolumes, method_points, noise_floor, pearson, spearman)
from recbole_paragon.evaluation.plots import pareto_plot, ternary_plots
from recbole_paragon.evaluation.report import summarise, summary_table, write_report

__all__ = ["SplitEvaluator", "controllability", "default_reference", "fidelity", "hypervolume", "hypervolumes",
           "method_points", "noise_floor", "pareto_plot", "ternary_plots", "pearson", "spearman", "summarise", "summary_table",
           "write_report"]
