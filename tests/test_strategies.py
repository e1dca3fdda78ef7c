"""Multi-objective strategies: registry, PUB (arXiv 2410.05806) and PMTRec (arXiv 2407.21364). CPU, a few seconds."""
import copy
import math

import pytest
import torch

from recbole_paragon.strategies import STRATEGIES, Linear, PMTRec, PUB, build_strategy, nash_weights
from recbole_paragon.settings import setting, yaml_defaults

DT = torch.float64


# ----------------------------------------------------------------------------------------------------- helpers


class TinyRec(torch.nn.Module):
    """Item embeddings used both as input (upstream of the per-user rows) and for scoring (a direct path); an item
    bias reached only directly; ``w``, ``b`` reached only through the rows."""

    def __init__(self, n_items=9, dim=4, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.item = torch.nn.Parameter(torch.randn(n_items, dim, generator=gen, dtype=DT) * 0.5)
        self.w = torch.nn.Parameter(torch.randn(dim, dim, generator=gen, dtype=DT) * 0.5)
        self.b = torch.nn.Parameter(torch.randn(dim, generator=gen, dtype=DT) * 0.1)
        self.item_bias = torch.nn.Parameter(torch.randn(n_items, generator=gen, dtype=DT) * 0.1)  # direct path only

    def rows(self, seq):
        return self.item[seq].mean(1) @ self.w + self.b  # [B, H]

    def losses(self, seq, target, rows=None):
        rows = self.rows(seq) if rows is None else rows
        scores = rows @ self.item.T + self.item_bias
        acc = torch.nn.functional.cross_entropy(scores, target)
        other = (scores[:, :3].mean(1) - 2.0).pow(2).mean() + 0.1 * rows.pow(2).sum(1).mean()
        return [acc, other], rows


def batch(seed=1, n_users=6, n_items=9, length=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_items, (n_users, length), generator=gen), torch.randint(0, n_items, (n_users,),
                                                                                      generator=gen)


def quadratic_problem(seed=0, n=8, d=5, h=3):
    """rows = X W; two conflicting quadratic losses towards different targets."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=DT)
    t1 = torch.randn(n, h, generator=gen, dtype=DT) + torch.tensor([2.0, 0.0, 0.0], dtype=DT)[:h]
    t2 = torch.randn(n, h, generator=gen, dtype=DT) + torch.tensor([0.0, 2.0, 0.0], dtype=DT)[:h]
    weight = torch.nn.Parameter(torch.zeros(d, h, dtype=DT))

    def losses():
        rows = x @ weight
        return [(rows - t1).pow(2).mean(), 2.0 * (rows - t2).pow(2).mean()], rows

    losses.x = x
    return weight, losses


def grads_of(losses, params):
    return [torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True) for loss in losses]


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


# ----------------------------------------------------------------------------------------------------- registry


def test_registry_and_unknown_name_lists_available():
    assert {"linear", "pub", "pmtrec"} <= set(STRATEGIES)
    assert isinstance(build_strategy("pub", {}, [0.5, 0.5]), PUB)
    assert isinstance(build_strategy("pmtrec", {}, [0.5, 0.5]), PMTRec)
    with pytest.raises(ValueError, match="linear, pmtrec, pub"):
        build_strategy("nash", {}, [0.5, 0.5])


def test_setting_reads_dicts_and_recbole_like_configs_with_yaml_defaults():
    class RecBoleLike:  # RecBole's Config returns None for a missing key
        def __init__(self, d):
            self.d = d

        def __getitem__(self, key):
            return self.d.get(key)

    default = yaml_defaults()["pub_update_interval"]
    assert setting({"pub_update_interval": 1}, "pub_update_interval") == 1
    assert setting({}, "pub_update_interval") == default
    assert setting(RecBoleLike({}), "pub_update_interval") == default
    assert setting(RecBoleLike({"pub_update_interval": 2}), "pub_update_interval") == 2
    assert setting(None, "pub_update_interval") == default
    assert setting(RecBoleLike({}), "selection_users") == yaml_defaults()["selection_users"]  # optional: not iterated
    with pytest.raises(KeyError, match="no_such_setting"):
        setting({}, "no_such_setting")
    assert PUB(RecBoleLike({"pub_update_interval": 3}), [0.5, 0.5]).update_interval == 3
    assert PUB(RecBoleLike({}), [0.5, 0.5]).update_interval == 10
    s = PMTRec(RecBoleLike({}), [0.5, 0.5])
    assert (s.alpha, s.temperature, s.main_objective) == (1.1, 1.0, 0)


# ----------------------------------------------------------------------------------------------------- PUB solver


@pytest.mark.parametrize("k", [2, 3, 5])
def test_nash_weights_solve_bargaining_condition(k):
    gen = torch.Generator().manual_seed(k)
    for scale in (1e-4, 1.0, 1e3):
        u = torch.randn(k, 40, generator=gen, dtype=DT) * scale  # well-conditioned (random, P >> K)
        gram = u @ u.T
        alpha = nash_weights(gram)
        assert bool((alpha > 0).all())
        residual = alpha * (gram @ alpha) - 1
        assert float(residual.abs().max()) < 1e-4


def test_nash_weights_orthogonal_equal_norms_are_equal():
    u = torch.zeros(2, 6, dtype=DT)
    u[0, 0], u[1, 3] = 2.0, 2.0
    alpha = nash_weights(u @ u.T)
    assert torch.allclose(alpha[0], alpha[1], rtol=1e-9)
    assert torch.allclose(alpha, torch.full((2,), 0.5, dtype=DT), rtol=1e-6)  # α_i ‖u_i‖² α_i = 1


@pytest.mark.parametrize("case", ["zero", "opposite", "duplicate", "all_zero", "nan"])
def test_nash_weights_degenerate_are_finite_and_non_negative(case):
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(2, 7, generator=gen, dtype=DT)
    if case == "zero":
        u[1] = 0
    elif case == "opposite":
        u[1] = -u[0]
    elif case == "duplicate":
        u = torch.cat([u, u[:1]])
    elif case == "all_zero":
        u.zero_()
    gram = u @ u.T
    if case == "nan":
        gram[0, 1] = float("nan")
    alpha = nash_weights(gram)
    assert bool(torch.isfinite(alpha).all()) and bool((alpha >= 0).all())
    if case == "zero":
        assert alpha[0] > 0 and alpha[1] == 0
    if case == "opposite":
        assert alpha[0] > 0 and torch.allclose(alpha[0], alpha[1])
    if case == "duplicate":
        assert torch.allclose(alpha[0], alpha[2])


# ----------------------------------------------------------------------------------------------------- PUB step


def test_pub_step_equals_weighted_sum_of_fresh_adam_updates():
    model = TinyRec()
    seq, target = batch()
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    lr, eps = 0.01, 1e-8
    opt = torch.optim.Adam(params, lr=lr, eps=eps)
    pref = torch.tensor([0.7, 0.3], dtype=DT)
    strategy = PUB({}, pref.tolist())

    losses, _ = model.losses(seq, target)
    g = grads_of(losses, params)
    # fresh Adam: m' = (1-β1) g, v' = (1-β2) g², t = 1 → u = −lr · g / (|g| + eps)
    u = torch.stack([flat([-lr * gi / (gi.abs() + eps) for gi in g[i]]) for i in range(2)])
    raw = nash_weights(u @ u.T)
    a = pref * raw / (pref * raw).sum()

    strategy.step(losses, opt, params)
    delta = flat([p.detach() - b for p, b in zip(params, before)])
    assert torch.allclose(strategy.last_weights, a, rtol=1e-6)
    assert torch.allclose(delta, a[0] * u[0] + a[1] * u[1], rtol=1e-6, atol=1e-12)
    assert float(strategy.last_weights.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("optim", ["adam", "adamw", "adam_amsgrad_l2"])
def test_pub_step_with_warm_state_and_state_advance(optim):
    model = TinyRec()
    params = list(model.parameters())
    lr, b1, b2, eps, wd = 0.02, 0.8, 0.95, 1e-6, 0.0
    if optim == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    elif optim == "adamw":
        wd = 0.1
        opt = torch.optim.AdamW(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    else:
        wd = 0.05
        opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=True)
    strategy = PUB({"pub_update_interval": 2}, [0.5, 0.5])
    for s in range(3):  # warm the shared state
        losses, _ = model.losses(*batch(seed=10 + s))
        strategy.step(losses, opt, params)

    losses, _ = model.losses(*batch(seed=20))
    g = grads_of(losses, params)
    state = {id(p): copy.deepcopy(opt.state[p]) for p in params}
    before = [p.detach().clone() for p in params]

    def update(gi, p, st):
        gi = gi + wd * p if optim == "adam_amsgrad_l2" else gi
        t = float(st["step"]) + 1
        m = b1 * st["exp_avg"] + (1 - b1) * gi
        v = b2 * st["exp_avg_sq"] + (1 - b2) * gi * gi
        if optim == "adam_amsgrad_l2":
            v = torch.maximum(st["max_exp_avg_sq"], v)
        u = -lr * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps)
        return u - lr * wd * p if optim == "adamw" else u

    u = torch.stack([flat([update(g[i][j], before[j], state[id(p)]) for j, p in enumerate(params)])
                     for i in range(2)])
    strategy.step(losses, opt, params)  # step 3 of interval 2: reuses the weights solved at step 2
    assert strategy.solves == 2
    a = strategy.last_weights
    delta = flat([p.detach() - b for p, b in zip(params, before)])
    assert torch.allclose(delta, a[0] * u[0] + a[1] * u[1], rtol=1e-6, atol=1e-12)
    for j, p in enumerate(params):  # state advanced with the combined gradient
        gc = a[0] * g[0][j] + a[1] * g[1][j]
        gc = gc + wd * before[j] if optim == "adam_amsgrad_l2" else gc
        st_old, st = state[id(p)], opt.state[p]
        assert float(st["step"]) == float(st_old["step"]) + 1
        assert torch.allclose(st["exp_avg"], b1 * st_old["exp_avg"] + (1 - b1) * gc)
        assert torch.allclose(st["exp_avg_sq"], b2 * st_old["exp_avg_sq"] + (1 - b2) * gc * gc)
    # the optimiser keeps working normally afterwards
    opt.zero_grad()
    sum(model.losses(*batch(seed=30))[0]).backward()
    opt.step()
    assert all(bool(torch.isfinite(p).all()) for p in params)


def test_pub_one_hot_preference_is_plain_adam_on_that_objective():
    model_a, model_b = TinyRec(), TinyRec()
    pa, pb = list(model_a.parameters()), list(model_b.parameters())
    opt_a, opt_b = torch.optim.Adam(pa, lr=0.05), torch.optim.Adam(pb, lr=0.05)
    strategy = PUB({"pub_update_interval": 1}, [1.0, 0.0])
    for s in range(5):
        seq, target = batch(seed=s)
        strategy.step(model_a.losses(seq, target)[0], opt_a, pa)
        opt_b.zero_grad()
        model_b.losses(seq, target)[0][0].backward()
        opt_b.step()
    for x, y in zip(pa, pb):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_pub_sgd_momentum_equals_sgd_on_combined_gradient():
    model = TinyRec()
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    strategy = PUB({"pub_update_interval": 1}, [0.4, 0.6])
    twin = TinyRec()
    twin_params = list(twin.parameters())
    twin_opt = torch.optim.SGD(twin_params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    for s in range(3):
        seq, target = batch(seed=s)
        losses, _ = model.losses(seq, target)
        strategy.step(losses, opt, params)
        a = strategy.last_weights
        twin_losses, _ = twin.losses(seq, target)
        twin_opt.zero_grad()
        (a[0] * twin_losses[0] + a[1] * twin_losses[1]).backward()  # gradient Σ a_i g_i
        twin_opt.step()
        for x, y in zip(params, twin_params):
            assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_pub_recomputes_every_interval_and_weights_are_not_stuck():
    weight, losses = quadratic_problem()
    opt = torch.optim.Adam([weight], lr=0.05)
    strategy = PUB({"pub_update_interval": 3}, [0.5, 0.5])
    raws = []
    for _ in range(7):
        strategy.step(losses()[0], opt, [weight])
        raws.append(strategy.raw_weights.clone())
    assert strategy.solves == 3  # steps 0, 3, 6
    assert torch.equal(raws[0], raws[1]) and torch.equal(raws[1], raws[2]) and not torch.equal(raws[2], raws[3])
    assert not torch.allclose(raws[-1], torch.ones(2, dtype=raws[-1].dtype))  # the reference's stuck [1, 1]


def test_pub_preference_steers_the_weights():
    shares = []
    for pref in ([0.9, 0.1], [0.1, 0.9]):
        weight, losses = quadratic_problem()
        strategy = PUB({}, pref)
        strategy.step(losses()[0], torch.optim.Adam([weight], lr=0.05), [weight])
        shares.append(float(strategy.last_weights[0]))
    assert shares[0] > shares[1]


@pytest.mark.parametrize("case", ["zero", "opposite"])
def test_pub_degenerate_updates_give_finite_weights(case):
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=DT))
    opt = torch.optim.Adam([weight], lr=0.1)
    strategy = PUB({"pub_update_interval": 1}, [0.5, 0.5])
    for s in range(3):
        main = (weight - 3.0).pow(2).sum()
        other = (weight * 0.0).sum() if case == "zero" else -main  # zero update / exactly opposite update
        logs = strategy.step([main, other], opt, [weight])
        assert all(math.isfinite(v) for v in logs.values())
        assert bool(torch.isfinite(strategy.last_weights).all()) and bool((strategy.last_weights >= 0).all())
        assert bool(torch.isfinite(weight).all())
        if s == 0:  # fresh state: the zero gradient is a zero update (later Adam's momentum makes it non-zero)
            expected = [1.0, 0.0] if case == "zero" else [0.5, 0.5]
            assert torch.allclose(strategy.last_weights, torch.tensor(expected, dtype=DT))


def test_pub_rejects_bad_config_and_optimizer():
    with pytest.raises(ValueError, match="pub_update_interval"):
        PUB({"pub_update_interval": 0}, [0.5, 0.5])
    with pytest.raises(ValueError, match="preference"):
        PUB({}, [-1.0, 2.0])
    weight, losses = quadratic_problem()
    with pytest.raises(TypeError, match="Adam, AdamW and SGD"):
        PUB({}, [0.5, 0.5]).step(losses()[0], torch.optim.RMSprop([weight]), [weight])


# ----------------------------------------------------------------------------------------------------- PMTRec


def _manual_row_weights(row_grads, tau, main=0, focus=1.0):
    norms = torch.stack([g.norm(dim=1) for g in row_grads])  # [K, B]
    normalised = norms / norms.mean(dim=1, keepdim=True)
    normalised[main] = normalised[main] * focus
    return torch.softmax(normalised / tau, dim=0), norms


def test_pmtrec_row_weights_and_combined_gradient_match_manual():
    weight, losses = quadratic_problem()
    pref, tau = torch.tensor([0.6, 0.4], dtype=DT), 0.5
    strategy = PMTRec({"pmtrec_temperature": tau, "pmtrec_alpha": 1.5}, pref.tolist())
    ls, rows = losses()
    g = [torch.autograd.grad(loss, rows, retain_graph=True)[0] for loss in ls]
    expected, norms = _manual_row_weights(g, tau)
    # combination: g_b = Σ_t p_tb w_t g_tb/n_tb · (Σ_t w_t n_tb) / (Σ_t p_tb w_t)
    mix = expected * pref[:, None]
    scale = (pref[:, None] * norms).sum(0) / mix.sum(0)
    combined = sum(mix[t][:, None] * g[t] / norms[t][:, None] for t in range(2)) * scale[:, None]
    before = weight.detach().clone()
    strategy.step(ls, torch.optim.SGD([weight], lr=0.1), [weight], rows=rows)
    assert torch.allclose(strategy.last_row_weights, expected, rtol=1e-10, atol=0)
    assert torch.allclose(strategy.last_combined, combined, rtol=1e-10, atol=0)
    # rows = X W, so the parameter gradient is Xᵀ·combined
    assert torch.allclose(weight.detach() - before, -0.1 * losses.x.T @ combined, rtol=1e-8, atol=1e-14)


def test_pmtrec_main_objective_weight_grows_with_epoch():
    alpha, tau = 1.5, 1.0
    strategy = PMTRec({"pmtrec_alpha": alpha, "pmtrec_temperature": tau, "pmtrec_main_objective": 1}, [0.5, 0.5])
    mains = []
    for epoch in range(4):
        weight, losses = quadratic_problem()
        ls, rows = losses()
        g = [torch.autograd.grad(loss, rows, retain_graph=True)[0] for loss in ls]
        expected, _ = _manual_row_weights(g, tau, main=1, focus=alpha ** epoch)
        logs = strategy.step(ls, torch.optim.SGD([weight], lr=0.01), [weight], rows=rows)
        assert logs["focus"] == pytest.approx(alpha ** epoch)
        assert torch.allclose(strategy.last_row_weights, expected, rtol=1e-10)
        mains.append(strategy.last_row_weights[1])
        strategy.on_epoch_end(epoch)
    for earlier, later in zip(mains, mains[1:]):
        assert bool((later > earlier).all())


def test_pmtrec_users_with_different_norm_ratios_get_different_weights():
    rows = torch.ones(2, 3, dtype=DT, requires_grad=True)
    h = rows * 1.0
    # user 0: objective 0 pulls 10× harder than objective 1; user 1: the reverse
    l0 = (h[0] * 10.0).sum() + (h[1] * 1.0).sum()
    l1 = (h[0] * 1.0).sum() + (h[1] * 10.0).sum()
    strategy = PMTRec({}, [0.5, 0.5])
    strategy.step([l0, l1], torch.optim.SGD([rows], lr=0.1), [rows], rows=h)
    w = strategy.last_row_weights
    assert w[0, 0] > w[1, 0] and w[1, 1] > w[0, 1]
    assert torch.allclose(w.sum(0), torch.ones(2, dtype=DT))


@pytest.mark.parametrize("with_rows", [True, False])
def test_pmtrec_single_objective_is_plain_training(with_rows):
    model_a, model_b = TinyRec(), TinyRec()
    pa, pb = list(model_a.parameters()), list(model_b.parameters())
    opt_a, opt_b = torch.optim.Adam(pa, lr=0.05), torch.optim.Adam(pb, lr=0.05)
    pmtrec, linear = PMTRec({"pmtrec_alpha": 2.0}, [1.0]), Linear({}, [1.0])
    for s in range(4):
        seq, target = batch(seed=s)
        (acc, _), rows = model_a.losses(seq, target)
        pmtrec.step([acc], opt_a, pa, rows=rows if with_rows else None)
        (acc_b, _), _ = model_b.losses(seq, target)
        linear.step([acc_b], opt_b, pb)
        pmtrec.on_epoch_end(s)
        for x, y in zip(pa, pb):
            assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_pmtrec_one_hot_preference_is_plain_training_on_that_objective():
    model_a, model_b = TinyRec(), TinyRec()
    pa, pb = list(model_a.parameters()), list(model_b.parameters())
    opt_a, opt_b = torch.optim.SGD(pa, lr=0.1), torch.optim.SGD(pb, lr=0.1)
    pmtrec = PMTRec({}, [0.0, 1.0])
    seq, target = batch()
    losses, rows = model_a.losses(seq, target)
    pmtrec.step(losses, opt_a, pa, rows=rows)
    opt_b.zero_grad()
    model_b.losses(seq, target)[0][1].backward()
    opt_b.step()
    for x, y in zip(pa, pb):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("key,value", [("pmtrec_alpha", 0.0), ("pmtrec_alpha", -1.0), ("pmtrec_alpha", float("nan")),
                                       ("pmtrec_alpha", float("inf")), ("pmtrec_alpha", 0.5),
                                       ("pmtrec_temperature", 0.0), ("pmtrec_temperature", -2.0),
                                       ("pmtrec_temperature", float("nan")), ("pmtrec_temperature", float("inf")),
                                       ("pmtrec_main_objective", -1), ("pmtrec_main_objective", "nope")])
def test_pmtrec_invalid_config_raises(key, value):
    with pytest.raises(ValueError, match=key):
        PMTRec({key: value}, [0.5, 0.5])


def test_pmtrec_main_objective_by_name_and_range():
    assert PMTRec({"objectives": ["accuracy", "diversity"], "pmtrec_main_objective": "diversity"},
                  [0.5, 0.5]).main_objective == 1
    assert PMTRec({"pmtrec_alpha": 1.0}, [0.5, 0.5]).focus == 1.0  # α = 1 allowed: Task Focusing off
    weight, losses = quadratic_problem()
    with pytest.raises(ValueError, match="pmtrec_main_objective"):
        PMTRec({"pmtrec_main_objective": 2}, [0.5, 0.5]).step(losses()[0], torch.optim.SGD([weight], lr=0.1),
                                                              [weight])


# ----------------------------------------------------------------------------------------------------- all


@pytest.mark.parametrize("name,use_rows", [("linear", False), ("pub", False), ("pmtrec", True), ("pmtrec", False)])
def test_strategies_decrease_weighted_loss(name, use_rows):
    weight, losses = quadratic_problem(seed=4)
    pref = [0.5, 0.5]
    strategy = build_strategy(name, {"pub_update_interval": 2}, pref)
    opt = torch.optim.Adam([weight], lr=0.05)

    def weighted():
        with torch.no_grad():
            return float(sum(w * loss for w, loss in zip(pref, losses()[0])))

    start = weighted()
    for _ in range(30):
        ls, rows = losses()
        logs = strategy.step(ls, opt, [weight], rows=rows if use_rows else None)
        assert math.isfinite(logs["loss"])
    assert weighted() < 0.8 * start
