"""Evaluation helpers: correlations, Hypervolume, fidelity, MMR re-ranking and the report (hand-computed values)."""
import json
import math
import os

import numpy as np
import pytest
import torch

from recbole_paragon.evaluation import (
    controllability,
    default_reference,
    fidelity,
    hypervolume,
    hypervolumes,
    noise_floor,
    pareto_plot,
    pearson,
    spearman,
    summary_table,
    write_report,
)
from recbole_paragon.baselines.mmr import mmr_rerank, multi_hot_categories

# ---------------------------------------------------------------- correlations


def test_pearson_spearman_hand_values():
    x = [0.0, 0.1, 0.5, 1.0]
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert pearson(x, [-3 * v for v in x]) == pytest.approx(-1.0)
    assert spearman(x, [v ** 3 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [4, 3, 2, 1]) == pytest.approx(-1.0)
    # x = (1, 2, 3), y = (1, 3, 2): r = 0.5 (cov 0.5 / (1 · 1)), rho = 0.5
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)


def test_correlation_of_constant_or_short_input_is_nan():
    assert math.isnan(pearson([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([1], [2]))
    # non-finite pairs are dropped
    assert pearson([1, 2, 3, 4], [1, 2, float("nan"), 4]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pearson([1, 2], [1, 2, 3])


def test_controllability_negates_min_metrics():
    entries = [
        {"preference": [w, 1 - w], "metrics": {"ndcg@10": 0.01 + 0.04 * w, "groupgap@10": 0.05 + 0.05 * w}}
        for w in (0.0, 0.3, 0.6, 1.0)
    ]
    result = controllability(
        {"diffusion": entries}, {"accuracy": ("ndcg@10", "max"), "fairness": ("groupgap@10", "min")}
    )
    assert result["diffusion"]["accuracy"]["pearson"] == pytest.approx(1.0)
    assert result["diffusion"]["accuracy"]["spearman"] == pytest.approx(1.0)
    # the gap falls as the fairness weight (preference[1] = 1 − w) rises → controllable → positive
    assert result["diffusion"]["fairness"]["pearson"] == pytest.approx(1.0)
    assert result["diffusion"]["fairness"]["spearman"] == pytest.approx(1.0)
    # explicit weight order
    swapped = controllability(
        {"m": entries}, {"accuracy": ("ndcg@10", "max")}, objectives=["fairness", "accuracy"]
    )
    assert swapped["m"]["accuracy"]["pearson"] == pytest.approx(-1.0)


# ---------------------------------------------------------------- hypervolume


def test_hypervolume_two_max_metrics():
    points = [[0.5, 0.5], [0.8, 0.2]]
    assert hypervolume(points, ["max", "max"], [0.0, 0.0]) == pytest.approx(0.5 * 0.5 + (0.8 - 0.5) * 0.2)
    # a dominated point adds nothing; a point not better than the reference contributes nothing
    more = points + [[0.4, 0.1], [0.9, -0.1], [-1.0, 2.0]]
    assert hypervolume(more, ["max", "max"], [0.0, 0.0]) == pytest.approx(0.31)
    assert hypervolume([[-0.1, 0.5]], ["max", "max"], [0.0, 0.0]) == 0.0
    assert hypervolume([], ["max", "max"], [0.0, 0.0]) == 0.0


def test_hypervolume_min_direction():
    # accuracy (max) vs group gap (min), reference (0, 1)
    points = np.array([[0.5, 0.5], [0.8, 0.8]])
    expected = 0.5 * (1 - 0.5) + (0.8 - 0.5) * (1 - 0.8)
    assert hypervolume(points, ["max", "min"], [0.0, 1.0]) == pytest.approx(expected)


def test_hypervolume_three_metrics_single_point():
    value = hypervolume(torch.tensor([[0.3, 0.6, 0.2]]), ["max", "max", "min"], [0.1, 0.1, 0.5])
    assert value == pytest.approx((0.3 - 0.1) * (0.6 - 0.1) * (0.5 - 0.2))


def test_hypervolume_rejects_bad_input():
    with pytest.raises(ValueError, match="direction"):
        hypervolume([[0.5, 0.5]], ["max", "up"], [0, 0])
    with pytest.raises(ValueError):
        hypervolume([[0.5, 0.5]], ["max", "max"], [0, 0, 0])


def test_default_reference_is_worst_over_all_methods():
    methods = {"a": [[0.5, 0.5, 0.1]], "b": [[0.2, 0.9, 0.3], [0.6, 0.4, 0.2]]}
    assert default_reference(methods, ["max", "max", "min"]) == pytest.approx([0.2, 0.4, 0.3])
    # margin: a fraction of each metric's range, towards worse
    assert default_reference(methods, ["max", "max", "min"], margin=0.5) == pytest.approx([0.0, 0.15, 0.4])
    # one array of rows, or a list of per-method arrays
    assert default_reference([[0.5, 0.5], [0.2, 0.9]], ["max", "max"]) == pytest.approx([0.2, 0.5])
    assert default_reference([np.array([[0.5, 0.5]]), np.array([[0.2, 0.9], [0.6, 0.1]])], ["max", "min"]) == (
        pytest.approx([0.2, 0.9])
    )


def test_hypervolumes_share_one_reference():
    results = {
        "x": [
            {"preference": [1, 0], "metrics": {"a": 0.5, "b": 0.5}},
            {"preference": [0, 1], "metrics": {"a": 0.8, "b": 0.2}},
        ],
        "y": [{"preference": [1, 0], "metrics": {"a": 0.0, "b": 0.0}}],
    }
    hv, reference = hypervolumes(results, ["a", "b"], ["max", "max"])
    assert reference == pytest.approx([0.0, 0.0])
    assert hv["x"] == pytest.approx(0.31) and hv["y"] == 0.0


# ---------------------------------------------------------------- fidelity


def test_fidelity_and_noise_floor_by_hand():
    retune = [[1.0, 2.0], [3.0, 4.0]]  # seed means per preference: 2, 3
    assert fidelity([2.5, 2.0], retune) == pytest.approx((0.5 + 1.0) / 2)
    # leave-one-seed-out: every |retune[s] − other seed| = 2
    assert noise_floor(retune) == pytest.approx(2.0)
    three = np.array([[0.0], [1.0], [2.0]])  # |0 − 1.5|, |1 − 1|, |2 − 0.5| → 1.5, 0, 1.5
    assert noise_floor(three) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        noise_floor([[1.0, 2.0]])
    with pytest.raises(ValueError):
        fidelity([1.0], retune)


# ---------------------------------------------------------------- MMR


def _topk(scores, k):
    return torch.topk(scores, k, dim=1).indices


def test_mmr_lambda_one_reproduces_top_k():
    torch.manual_seed(0)
    scores = torch.randn(7, 60)
    scores[:, 0] = -math.inf
    scores[2, 5:15] = -math.inf  # e.g. masked history
    categories = (torch.rand(60, 5) < 0.4).float()
    out = mmr_rerank(scores, categories, lam=1.0, k=10, candidates=30)
    assert out.shape == scores.shape and out.dtype == scores.dtype
    assert torch.equal(_topk(out, 10), _topk(scores, 10))
    # the items below the selection keep their original order
    assert torch.equal(_topk(out, 40), _topk(scores, 40))
    assert torch.all(torch.isinf(out[:, 0])) and torch.all(torch.isinf(out[2, 5:15]))


def test_mmr_lambda_zero_covers_more_categories():
    # padding + 4 items, scores 1 > 2 > 3 > 4; items 1–3 share category A, item 4 is B
    scores = torch.tensor([[-math.inf, 4.0, 3.0, 2.0, 1.0]])
    categories = torch.tensor([[0, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=torch.float)
    plain = _topk(scores, 2)[0].tolist()
    assert plain == [1, 2]
    out = mmr_rerank(scores, categories, lam=0.0, k=2)
    picked = _topk(out, 2)[0].tolist()
    assert picked == [1, 4]  # first pick: tie at 0 → best score; second: the item of a new category
    covered = lambda items: int((categories[items].sum(0) > 0).sum())  # noqa: E731
    assert covered(picked) == 2 > covered(plain) == 1
    assert out[0, 1] > out[0, 4] > out[0, 2] > out[0, 3]  # selected first, the rest in original order
    # mixed lam: relevance of item 2 is 2/3, of item 4 is 0; 0.5·2/3 − 0.5·1 < 0.5·0 − 0 → item 4 still wins
    assert _topk(mmr_rerank(scores, categories, lam=0.5, k=2), 2)[0].tolist() == [1, 4]
    # with lam 0.8: 0.8·2/3 − 0.2 = 0.333 > 0 → relevance wins
    assert _topk(mmr_rerank(scores, categories, lam=0.8, k=2), 2)[0].tolist() == [1, 2]


def test_mmr_jaccard_partial_overlap():
    # item 1 {A, B} first; item 2 {A, B, C} (J = 2/3), item 3 {A} (J = 1/2), item 4 {} (J = 0)
    scores = torch.tensor([[-math.inf, 4.0, 3.0, 2.0, 1.0]])
    categories = torch.tensor([[0, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.float)
    out = mmr_rerank(scores, categories, lam=0.0, k=4)
    assert _topk(out, 4)[0].tolist() == [1, 4, 3, 2]


def test_mmr_never_selects_padding():
    scores = torch.tensor([[100.0, 1.0, 2.0, 3.0], [math.inf, 3.0, 2.0, 1.0]])
    categories = torch.eye(4)
    for lam in (0.0, 0.5, 1.0):
        out = mmr_rerank(scores, categories, lam=lam, k=3)
        assert 0 not in _topk(out, 3).flatten().tolist()
        assert torch.all(out[:, 0] == -math.inf)
    # fewer finite candidates than k: only those are placed first, nothing invalid is picked
    short = torch.tensor([[-math.inf, 1.0, -math.inf, 2.0]])
    out = mmr_rerank(short, categories, lam=0.0, k=3)
    assert _topk(out, 2)[0].tolist() == [3, 1]
    assert out[0, 0] == -math.inf and out[0, 2] == -math.inf


def test_multi_hot_categories_from_padded_ids():
    ids = torch.tensor([[0, 0], [1, 2], [2, 0]])
    assert multi_hot_categories(ids).tolist() == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]


# ---------------------------------------------------------------- report


def _report():
    methods = {}
    for name, shift in (("retune", 0.0), ("diffusion", 0.002), ("mmr", 0.01)):
        methods[name] = [
            {
                "preference": torch.tensor([w, 1 - w]),
                "metrics": {"ndcg@10": 0.012 + 0.04 * w - shift, "alphandcg@10": np.float32(0.76 - 0.29 * w),
                            "groupgap@10": 0.02},
                "seconds": 0.05 if name == "diffusion" else 4.0,
            }
            for w in (0.0, 0.5, 1.0)
        ]
    return {
        "methods": methods,
        "pearson": {"retune": {"accuracy": 0.97, "diversity": 0.98},
                    "diffusion": {"accuracy": 0.95, "diversity": float("nan")},
                    "mmr": {"accuracy": np.float64(0.5), "diversity": 0.9}},
        "spearman": {"retune": {"accuracy": 1.0, "diversity": 1.0}},
        "hypervolume": {"retune": 0.02, "diffusion": torch.tensor(0.019), "mmr": 0.01},
        "timing": {"retune": 4.0, "diffusion": {"seconds_per_adaptation": 0.05}},
        "fidelity": {"diffusion": 0.002, "mmr": 0.01},
        "config": {"dataset": "ml-tiny", "grid": np.arange(3)},
    }


def test_write_report_files_and_round_trip(tmp_path):
    report = _report()
    paths = write_report(str(tmp_path / "out"), report)
    assert set(paths) == {"json", "markdown", "plot"}
    for path in paths.values():
        assert os.path.isfile(path) and os.path.getsize(path) > 0
    with open(paths["plot"], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths["json"]) as file:
        loaded = json.load(file)
    assert loaded["methods"]["diffusion"][1]["preference"] == [0.5, 0.5]
    assert loaded["hypervolume"]["diffusion"] == pytest.approx(0.019)
    assert loaded["pearson"]["diffusion"]["diversity"] is None  # nan → null (strict JSON)
    assert loaded["config"]["grid"] == [0, 1, 2]
    # round trip: writing the loaded report again gives the same JSON
    again = write_report(str(tmp_path / "again"), loaded)
    with open(again["json"]) as file:
        assert json.load(file) == loaded
    assert not [f for f in os.listdir(tmp_path / "out") if f.startswith(".tmp")]
    markdown = open(paths["markdown"]).read()
    for name in ("retune", "diffusion", "mmr"):
        assert name in markdown
    assert "ndcg@10" in markdown and "alphandcg@10" in markdown and "|---|" in markdown


def test_write_report_without_pareto_metrics_skips_plot(tmp_path):
    report = {"methods": {"m": [{"preference": [1.0, 0.0], "metrics": {"recall@10": 0.1}, "seconds": 1.0}]}}
    paths = write_report(str(tmp_path), report)
    assert "plot" not in paths and not os.path.exists(tmp_path / "pareto.png")
    assert "recall@10" in open(paths["markdown"]).read()


def test_summary_table_lists_every_method():
    table = summary_table(_report())
    for name in ("retune", "diffusion", "mmr"):
        assert name in table
    lines = table.splitlines()
    assert "HV / retune" in lines[0] and "fidelity" in lines[0] and "ms / adaptation" in lines[0]
    paragon = next(line for line in lines if line.startswith("diffusion"))
    assert "0.950" in paragon  # HV ratio 0.019 / 0.02 and Pearson accuracy
    assert "50.00" in paragon  # 0.05 s per adaptation
    assert summary_table({"methods": {"solo": []}}).count("solo") == 1


def test_pareto_plot_writes_png(tmp_path):
    path = pareto_plot({"a": [(0.1, 0.7), (0.2, 0.6)], "b": [(0.15, float("nan"))]}, "x", "y",
                       str(tmp_path / "p.png"))
    assert os.path.getsize(path) > 0


# ---------------------------------------------------------------- three objectives


def _three_objective_results(metric_of_weights):
    from recbole_paragon.preference import simplex_grid

    return [{"preference": w.tolist(), "metrics": metric_of_weights(w)} for w in simplex_grid(3, 0.25)]


def test_ray_spearman_sees_control_that_the_grid_correlation_understates():
    from recbole_paragon.evaluation.measures import ray_controllability

    # metric of objective 0 rises with w0 along every ray, but falls with w1 much more: over the whole grid the
    # other weights' movement blurs w0's effect; along the rays (w1 : w2 fixed) it is exact.
    entries = _three_objective_results(lambda w: {"a@10": float(w[0] - 3 * w[1] * (1 - w[0]) + 0.01 * w[0] * w[2]),
                                                  "b@10": float(w[1]), "c@10": float(w[2])})
    objective_metric = {"x": ("a@10", "max"), "y": ("b@10", "max"), "z": ("c@10", "max")}
    rays = ray_controllability({"m": entries}, objective_metric, ["x", "y", "z"])["m"]
    grid = controllability({"m": entries}, objective_metric, ["x", "y", "z"])["m"]
    assert rays["x"] == pytest.approx(1.0) and rays["y"] == pytest.approx(1.0) and rays["z"] == pytest.approx(1.0)
    assert grid["x"]["spearman"] < 0.9


def test_ray_spearman_of_two_objectives_is_the_grid_spearman():
    from recbole_paragon.evaluation.measures import ray_controllability

    entries = [{"preference": [w, 1 - w], "metrics": {"a@10": w ** 2, "b@10": 1 - w}} for w in (0, 0.3, 0.5, 1)]
    objective_metric = {"x": ("a@10", "max"), "y": ("b@10", "max")}
    rays = ray_controllability({"m": entries}, objective_metric, ["x", "y"])["m"]
    grid = controllability({"m": entries}, objective_metric, ["x", "y"])["m"]
    assert rays == pytest.approx({o: grid[o]["spearman"] for o in ("x", "y")})


def test_three_objective_report_writes_one_ternary_map_per_metric(tmp_path):
    methods = {m: _three_objective_results(lambda w: {"ndcg@10": float(w[0]), "alphandcg@10": float(w[1]),
                                                      "groupgap@10": float(1 - w[2])}) for m in ("retune", "diffusion")}
    report = {"methods": methods, "objectives": ["accuracy", "diversity", "fairness"],
              "hypervolume_reference": {"metrics": ["ndcg@10", "alphandcg@10", "groupgap@10"]},
              "spearman": {"retune": {"accuracy": 1.0}}, "ray_spearman": {"retune": {"accuracy": 1.0}}}
    paths = write_report(str(tmp_path), report)
    ternary = sorted(p for key, p in paths.items() if key.startswith("ternary"))
    assert [os.path.basename(p) for p in ternary] == ["ternary-alphandcg_at_10.png", "ternary-groupgap_at_10.png",
                                                       "ternary-ndcg_at_10.png"]
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in ternary)
    assert "ray Spearman accuracy" in open(paths["markdown"]).read()
