"""lessonlib.optim against optax (the independent reference), plus convergence and jit behaviour."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lessonlib import optim

STEPS = 100


@functools.cache
def _params():
    """A pytree with leaves of different shapes (and a nested dict), float32."""
    keys = jax.random.split(jax.random.key(0), 4)
    return {
        "dense": {
            "w": jax.random.normal(keys[0], (5, 3)),
            "b": jax.random.normal(keys[1], (3,)),
        },
        "scale": jax.random.normal(keys[2], ()),
        "kernel": jax.random.normal(keys[3], (2, 3, 4)),
    }


def _loss(params, noise):
    """A smooth, non-quadratic loss plus a noise term that changes every step."""
    terms = jax.tree.map(lambda p, n: jnp.sum(jnp.cos(p) + 0.5 * p**2 + n * p), params, noise)
    return sum(jax.tree.leaves(terms))


@functools.cache
def _noise(steps):
    params = _params()
    keys = jax.random.split(jax.random.key(1), len(jax.tree.leaves(params)))
    keys = jax.tree.unflatten(jax.tree.structure(params), list(keys))
    return jax.tree.map(lambda p, k: jax.random.normal(k, (steps, *p.shape)), params, keys)


def _run(opt, apply_updates, steps=STEPS):
    """Run `steps` optimizer steps in one scan; return the parameters after every step."""
    params, noise = _params(), _noise(steps)

    def step(carry, noise_t):
        params, state = carry
        grads = jax.grad(_loss)(params, noise_t)
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)
        return (params, state), params

    _, path = jax.lax.scan(step, (params, opt.init(params)), noise)
    return path


def _run_optax(opt):
    """optax itself is not written for strict dtype promotion: run the reference in standard mode."""
    with jax.numpy_dtype_promotion("standard"):
        return _run(opt, optax.apply_updates)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-5):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _bias_mask(params):
    """Decay weight matrices, not biases or scalars (as nanoGPT's configure_optimizers does)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def _schedule(count):
    return 0.1 / (1.0 + 0.05 * count.astype(jnp.float32))


# (name, lessonlib optimizer, optax optimizer): hyperparameters are written out on both sides, so
# where the two libraries name or place an argument differently the mapping is visible here.
CASES = [
    ("sgd", optim.sgd(0.05), optax.sgd(learning_rate=0.05)),
    ("momentum", optim.sgd(0.05, momentum=0.9), optax.sgd(0.05, momentum=0.9)),
    (
        "nesterov",
        optim.sgd(0.05, momentum=0.9, nesterov=True),
        optax.sgd(0.05, momentum=0.9, nesterov=True),
    ),
    (
        "adagrad",
        optim.adagrad(0.3, initial_accumulator_value=0.1, eps=1e-7),
        optax.adagrad(0.3, initial_accumulator_value=0.1, eps=1e-7),
    ),
    ("adagrad_torch_init", optim.adagrad(0.3, 0.0), optax.adagrad(0.3, 0.0)),
    ("rmsprop", optim.rmsprop(0.01, decay=0.9), optax.rmsprop(0.01, decay=0.9)),
    (
        # PyTorch's defaults: alpha=0.99 is the decay, eps outside the square root.
        "rmsprop_torch_style",
        optim.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False),
        optax.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False),
    ),
    (
        "rmsprop_centered_momentum",
        optim.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True),
        optax.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True),
    ),
    ("adam", optim.adam(0.01), optax.adam(0.01)),
    (
        "adam_eps_root",
        optim.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
        optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
    ),
    ("adam_schedule", optim.adam(_schedule), optax.adam(_schedule)),
    ("adamax", optim.adamax(0.01), optax.adamax(0.01)),
    ("nadam", optim.nadam(0.01), optax.nadam(0.01)),
    (
        "adamw",
        optim.adamw(0.01, weight_decay=0.1),
        optax.adamw(0.01, weight_decay=0.1),
    ),
    (
        "adamw_mask",
        optim.adamw(0.01, weight_decay=0.1, mask=_bias_mask),
        optax.adamw(0.01, weight_decay=0.1, mask=_bias_mask),
    ),
    (
        "clip",
        optim.chain(optim.clip(0.5), optim.sgd(0.05)),
        optax.chain(optax.clip(0.5), optax.sgd(0.05)),
    ),
    (
        "clip_by_global_norm",
        optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.05)),
        optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05)),
    ),
]


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_over_100_steps(name, ours, theirs):
    _assert_trees_close(_run(ours, optim.apply_updates), _run_optax(theirs))


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_by_global_norm_matches_optax(max_norm):
    grads = jax.tree.map(lambda p: 3.0 * p, _params())
    ours, _ = optim.clip_by_global_norm(max_norm).update(grads, ())
    theirs, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
    _assert_trees_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert float(optim.global_norm(ours)) <= max_norm * (1 + 1e-6)


def test_clip_changes_direction_but_global_norm_does_not():
    """The [0.9, 100.0] example (the notes on Géron's chapter 11): clipping by value turns the step by ~42 degrees."""
    g = jnp.array([0.9, 100.0])
    by_value, _ = optim.clip(1.0).update(g, ())
    by_norm, _ = optim.clip_by_global_norm(1.0).update(g, ())
    np.testing.assert_allclose(by_value, [0.9, 1.0])
    np.testing.assert_allclose(by_norm * jnp.linalg.norm(g), g, rtol=1e-5)


def test_works_inside_optax_chain_and_with_optax_apply_updates():
    ours = optax.chain(optax.clip_by_global_norm(1.0), optim.adam(0.01))
    theirs = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01))
    _assert_trees_close(_run(ours, optax.apply_updates), _run_optax(theirs))


def test_optax_transforms_work_inside_our_chain():
    ours = optim.chain(optax.clip(0.5), optim.scale_by_adam(), optim.scale_by_learning_rate(0.01))
    theirs = optax.chain(optax.clip(0.5), optax.adam(0.01))
    _assert_trees_close(_run(ours, optim.apply_updates), _run_optax(theirs))


def test_state_is_named_tuples():
    state = optim.adam(0.1).init(_params())
    adam_state = state[0]
    assert type(adam_state).__name__ == "ScaleByAdamState"
    assert adam_state._fields == ("count", "mu", "nu")
    assert adam_state.count.dtype == jnp.int32


def test_adam_first_step_is_learning_rate_sized():
    """Bias correction: at t = 1, m_hat = g and v_hat = g^2, so |update| = lr for every g."""
    opt = optim.adam(0.1, eps=1e-12)
    g = jnp.array([1e-4, 1.0, -1e4])
    updates, _ = opt.update(g, opt.init(jnp.zeros(3)))
    np.testing.assert_allclose(updates, -0.1 * jnp.sign(g), rtol=1e-4)


def test_adamw_differs_from_adam_with_l2_but_sgd_does_not():
    """Order in the chain: decay before the adaptive scaling (L2) vs after it (decoupled)."""
    wd, lr = 0.1, 0.01
    adam_l2 = optim.chain(
        optim.add_decayed_weights(wd), optim.scale_by_adam(), optim.scale_by_learning_rate(lr)
    )
    l2_path = _run(adam_l2, optim.apply_updates)
    w_path = _run(optim.adamw(lr, weight_decay=wd), optim.apply_updates)
    gaps = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), l2_path, w_path)
    assert max(jax.tree.leaves(gaps)) > 1e-3

    sgd_l2 = optim.chain(optim.add_decayed_weights(wd), optim.sgd(lr))
    sgd_wd = optim.chain(optim.identity(), optim.add_decayed_weights(wd), optim.sgd(lr))
    _assert_trees_close(_run(sgd_l2, optim.apply_updates), _run(sgd_wd, optim.apply_updates))


# ------------------------------------------------------------------------------------------------
# Convergence (as optax's alias_test): an ill-conditioned quadratic and the Rosenbrock function.
# ------------------------------------------------------------------------------------------------


def _quadratic(p):
    return 0.5 * (p[0] ** 2 + 50.0 * p[1] ** 2)  # condition number 50


def _rosenbrock(p):
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _minimize(opt, f, x0, steps):
    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(f)(p), s, p)
        return (optim.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
    return p


# name -> (optimizer factory, lr on the quadratic, lr on Rosenbrock)
CONVERGENCE = {
    "sgd": (optim.sgd, 0.01, 0.001),
    "momentum": (lambda lr: optim.sgd(lr, momentum=0.9), 0.003, 0.001),
    "nesterov": (lambda lr: optim.sgd(lr, momentum=0.9, nesterov=True), 0.001, 0.001),
    "adagrad": (optim.adagrad, 0.3, 0.3),
    "rmsprop": (optim.rmsprop, 0.003, 0.003),
    "adam": (optim.adam, 0.01, 0.01),
    "adamax": (optim.adamax, 0.01, 0.01),
    "nadam": (optim.nadam, 0.01, 0.01),
    "adamw": (optim.adamw, 0.01, 0.01),
}


@pytest.mark.parametrize("name", CONVERGENCE)
def test_converges_on_ill_conditioned_quadratic(name):
    make, lr, _ = CONVERGENCE[name]
    p = _minimize(make(lr), _quadratic, jnp.array([1.0, 1.0]), 2000)
    np.testing.assert_allclose(p, [0.0, 0.0], atol=1e-2)


@pytest.mark.parametrize("name", CONVERGENCE)
def test_converges_on_rosenbrock(name):
    make, _, lr = CONVERGENCE[name]
    p = _minimize(make(lr), _rosenbrock, jnp.array([-1.0, 1.0]), 20000)
    np.testing.assert_allclose(p, [1.0, 1.0], atol=1e-2)


# ------------------------------------------------------------------------------------------------
# Traced hyperparameters: building the optimizer inside jit must not recompile per value.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda hp: optim.sgd(hp["lr"], momentum=hp["beta"]),
        lambda hp: optim.rmsprop(hp["lr"], decay=hp["beta"]),
        lambda hp: optim.adam(hp["lr"], b1=hp["beta"]),
        lambda hp: optim.adamw(hp["lr"], b1=hp["beta"], weight_decay=hp["lr"]),
    ],
    ids=["sgd", "rmsprop", "adam", "adamw"],
)
def test_jitted_step_does_not_recompile_when_hyperparameters_change(make):
    params = _params()
    grads = jax.tree.map(jnp.ones_like, params)
    state = make({"lr": 0.1, "beta": 0.9}).init(params)

    @jax.jit
    def step(params, state, hp):
        updates, state = make(hp).update(grads, state, params)
        return optim.apply_updates(params, updates), state

    outs = []
    for lr, beta in [(0.1, 0.9), (0.01, 0.5), (0.3, 0.0)]:
        new_params, state_out = step(params, state, {"lr": lr, "beta": beta})
        outs.append(new_params)
        expected, _ = make({"lr": lr, "beta": beta}).update(grads, state, params)
        _assert_trees_close(new_params, optim.apply_updates(params, expected), rtol=1e-6)
    assert step._cache_size() == 1


def test_vmap_over_learning_rates():
    """A sweep: one vmapped call, one learning rate per lane."""
    lrs = jnp.array([0.0, 0.1, 0.2])
    x0 = jnp.array([1.0, 1.0])

    def final(lr):
        return _minimize(optim.adam(lr), _quadratic, x0, 10)

    finals = jax.vmap(final)(lrs)
    np.testing.assert_allclose(finals[0], x0)
    np.testing.assert_allclose(finals[2], final(0.2), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Eager validation of concrete hyperparameters.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: optim.sgd(-0.1), "learning_rate"),
        (lambda: optim.adagrad(-1), "learning_rate"),
        (lambda: optim.rmsprop(-1e-3), "learning_rate"),
        (lambda: optim.adam(-1e-3), "learning_rate"),
        (lambda: optim.adamax(-1e-3), "learning_rate"),
        (lambda: optim.nadam(-1e-3), "learning_rate"),
        (lambda: optim.adamw(-1e-3), "learning_rate"),
        (lambda: optim.sgd(0.1, momentum=1.0), "momentum"),
        (lambda: optim.sgd(0.1, momentum=-0.1), "momentum"),
        (lambda: optim.rmsprop(0.1, decay=1.5), "decay"),
        (lambda: optim.adam(0.1, b1=1.0), "b1"),
        (lambda: optim.adam(0.1, b2=-0.5), "b2"),
        (lambda: optim.nadam(0.1, b1=1.2), "b1"),
        (lambda: optim.adamax(0.1, b2=1.0), "b2"),
        (lambda: optim.adamw(0.1, b1=np.float32(1.0)), "b1"),
        (lambda: optim.adam(0.1, eps=0.0), "eps"),
        (lambda: optim.adagrad(0.1, eps=-1e-7), "eps"),
        (lambda: optim.rmsprop(0.1, eps=0), "eps"),
        (lambda: optim.adamax(0.1, eps=0.0), "eps"),
        (lambda: optim.adagrad(0.1, initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: optim.adamw(0.1, weight_decay=-1e-4), "weight_decay"),
        (lambda: optim.clip(-1.0), "max_delta"),
        (lambda: optim.clip_by_global_norm(0.0), "max_norm"),
    ],
)
def test_invalid_hyperparameters_raise_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=rf"^{argument} must be"):
        make()


def test_boundary_values_are_accepted():
    optim.sgd(0.0, momentum=0.0)
    optim.adam(0.1, b1=0.0, b2=0.0)
    optim.adagrad(0.1, initial_accumulator_value=0.0)
    optim.adamw(0.1, weight_decay=0.0)


def test_traced_hyperparameters_are_not_validated():
    @jax.jit
    def first_update(lr, b1):
        opt = optim.adam(lr, b1=b1)
        return opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))[0]

    assert first_update(-0.1, 0.9).shape == (2,)  # no ValueError inside jit


def test_adamw_needs_params():
    opt = optim.adamw(0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))


def test_switch_picks_one_optimizer_even_under_vmap():
    """optim.switch(index, ...) with a traced (and vmapped) index equals each optimizer alone."""
    choices = [optim.sgd(0.05, momentum=0.9), optim.adam(0.01), optim.rmsprop(0.01)]
    x0 = jnp.array([1.0, 1.0])

    def final(index):
        return _minimize(optim.switch(index, choices), _quadratic, x0, 20)

    finals = jax.vmap(final)(jnp.arange(3.0))
    for k, opt in enumerate(choices):
        np.testing.assert_allclose(finals[k], _minimize(opt, _quadratic, x0, 20), rtol=1e-5)


# --------------------------------------------------------------------------- momentum schedules
def _run_steps(opt, grads, params):
    state, path = opt.init(params), []
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        path.append(params)
    return jnp.stack(path)


_GRADS = [jnp.array([1.0, -2.0]), jnp.array([0.5, 0.5]), jnp.array([-1.0, 3.0]), jnp.ones(2)]


@pytest.mark.parametrize("nesterov", [False, True])
def test_constant_momentum_schedule_equals_constant_momentum(nesterov):
    p0 = jnp.array([1.0, 2.0])
    constant = optim.sgd(0.1, momentum=0.9, nesterov=nesterov)
    scheduled = optim.sgd(0.1, momentum=lambda count: jnp.float32(0.9), nesterov=nesterov)
    np.testing.assert_allclose(
        _run_steps(scheduled, _GRADS, p0), _run_steps(constant, _GRADS, p0), rtol=1e-6
    )


def test_momentum_schedule_changes_the_iterates_as_computed_by_hand():
    # mu_t = 0.5, 0.8, 0.0, 0.9 at counts 0..3; m_t = g_t + mu_t m_{t-1}; w -= 0.1 m_t
    mus = jnp.array([0.5, 0.8, 0.0, 0.9])
    opt = optim.sgd(0.1, momentum=lambda count: mus[count])
    w, m, want = np.array([1.0, 2.0]), np.zeros(2), []
    for g, mu in zip(_GRADS, np.asarray(mus), strict=True):
        m = np.asarray(g) + mu * m
        w = w - 0.1 * m
        want.append(w)
    got = _run_steps(opt, _GRADS, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-6)
    constant = _run_steps(optim.sgd(0.1, momentum=0.5), _GRADS, jnp.array([1.0, 2.0]))
    assert not np.allclose(got, constant)  # the schedule is actually read


def test_one_cycle_momentum_schedule_matches_optax_inject_hyperparams():
    from lessonlib import schedules

    total = 40
    lr, mom = schedules.one_cycle(total, 0.5), schedules.one_cycle_momentum(total)
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=3), jnp.float32) for _ in range(total + 5)]
    p0 = jnp.zeros(3)
    ours = _run_steps(optim.sgd(lr, momentum=mom), grads, p0)
    with jax.numpy_dtype_promotion("standard"):
        ref_opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=mom)
        ref = _run_steps(ref_opt, grads, p0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_momentum_schedule_runs_under_jit_without_recompiling():
    from lessonlib import schedules

    @jax.jit
    def steps(peak):
        opt = optim.sgd(schedules.one_cycle(20, peak), momentum=schedules.one_cycle_momentum(20))
        return _scan_quadratic(opt)

    a, b = steps(0.1), steps(0.2)
    assert steps._cache_size() == 1 and not np.allclose(a, b)


def _scan_quadratic(opt):
    p = jnp.array([1.0, -1.0])

    def body(carry, _):
        p, s = carry
        u, s = opt.update(p, s, p)  # gradient of |p|^2 / 2
        return (optim.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), None, length=20)
    return p
