"""Preference vectors: validation with clear errors, normalisation, grids."""
import math

import pytest
import torch

from recbole_paragon.preference import (as_preference, matches_any, normalize_preference, parse_preference, preference_distances,
                                        simplex_grid)

OBJECTIVES = ["accuracy", "diversity"]


def test_preference_not_summing_to_one_is_normalised():
    assert torch.allclose(normalize_preference([2, 1], OBJECTIVES), torch.tensor([2 / 3, 1 / 3]))
    assert torch.allclose(normalize_preference("0.3,0.7", OBJECTIVES), torch.tensor([0.3, 0.7]))


@pytest.mark.parametrize("bad, message", [
    ([0.5, 0.3, 0.2], "needs 2 weights"),
    ([-0.1, 1.1], "non-negative"),
    ([math.nan, 1.0], "finite"),
    ([math.inf, 1.0], "finite"),
    ([0.0, 0.0], "must not all be zero"),
    ("a,b", "comma-separated numbers"),
    (0.5, "needs 2 weights"),  # --preference=0.5: RecBole's config turns it into one float
    ("", "preference is empty"),
    ([], "preference is empty"),
    ([[0.3, 0.7]], "numbers like"),
    ([0.5, "x"], "numbers like"),
    ({"accuracy": 1.0}, "list of numbers"),
    (None, "list of numbers"),
    (True, "list of numbers"),
])
def test_bad_preferences_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        normalize_preference(bad, OBJECTIVES)


def test_parse_preference_accepts_strings_lists_tensors():
    assert parse_preference("[0.2, 0.8]") == [0.2, 0.8]
    assert parse_preference(torch.tensor([1.0, 0.0])) == [1.0, 0.0]


def test_two_objective_grid_default_has_21_points_from_0_to_1():
    grid = simplex_grid(2, 0.05)
    assert grid.shape == (21, 2)
    assert torch.allclose(grid.sum(1), torch.ones(21))
    assert grid[0, 0] == 0 and grid[-1, 0] == 1


def test_offset_grid_avoids_every_tenth():
    grid = simplex_grid(2, 0.1, offset=0.05)
    assert grid.shape == (10, 2)
    tenths = torch.arange(11) / 10
    assert (grid[:, :1] - tenths[None, :]).abs().min() > 0.04


def test_three_objective_simplex_grid():
    grid = simplex_grid(3, 0.5)
    assert grid.shape == (6, 3)
    assert torch.allclose(grid.sum(1), torch.ones(6))
    assert {tuple(row.tolist()) for row in grid} >= {(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.0)}
    with pytest.raises(ValueError, match="divide 1"):
        simplex_grid(3, 0.3)


def test_objectives_from_the_command_line_are_split():
    from recbole_paragon.objectives import configured_objectives

    assert configured_objectives({"objectives": "[accuracy,diversity,fairness]"}) == ["accuracy", "diversity",
                                                                                      "fairness"]
    assert configured_objectives({"objectives": "accuracy, fairness"}) == ["accuracy", "fairness"]
    assert configured_objectives({"objectives": ["diversity", "accuracy"]}) == ["diversity", "accuracy"]


def test_equal_preferences_match_in_large_sets():
    # 264 rows: torch.cdist's matrix-product path would put ~10% of identical rows 3e-4 apart
    grid = simplex_grid(3, 0.1).repeat(4, 1)
    assert torch.equal(preference_distances(grid, grid).diagonal(), torch.zeros(len(grid)))
    assert matches_any(grid, grid).all()
    assert not matches_any(grid + 1e-3, grid).any()
    assert matches_any(grid, torch.zeros(0, 3)).shape == (len(grid),)


def test_a_normalised_tensor_passes_through_and_anything_else_is_normalised_once():
    weights = torch.tensor([0.25, 0.75])
    assert as_preference(weights, OBJECTIVES) is weights
    assert torch.equal(as_preference([1, 3], OBJECTIVES), weights)
    assert torch.equal(as_preference(torch.tensor([1.0, 3.0]), OBJECTIVES), weights)
    with pytest.raises(ValueError, match="needs 2 weights"):
        as_preference(torch.tensor([1.0]), OBJECTIVES)
