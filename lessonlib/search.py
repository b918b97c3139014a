"""Hyperparameter search: spaces, grid and random search, populations, successive halving and
Hyperband, a genetic search, and Bayesian search with optuna.

A *space* maps hyperparameter names to distributions (``Uniform``, ``LogUniform``, ``IntUniform``,
``Choice``). Samplers take an explicit key and return float32 arrays, one value per configuration,
ready to be an ``hp`` entry of ``train.sweep``. Every search here maximizes a *score* (higher is
better: an accuracy as it is, a loss negated) and returns a ``Log``: one row per evaluation, with
the configuration, the epochs it has been trained for, the epochs this evaluation cost, and its
score. ``budget_curve`` turns any log into "best score found after spending B epochs".

The training behind a search is a *population*: K configurations trained as one vmapped, jitted
``train.sweep`` (float hyperparameters traced, hidden width masked — ``models.mlp(masked_width=
True)``), resumed from their own parameters and optimizer state when a search keeps training them.

References: Bergstra & Bengio 2012 (random search); Li et al. 2017 (Hyperband); Bergstra et al.
2011 and Akiba et al. 2019 (TPE, optuna); Jaderberg et al. 2017 (population-based training).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import _buckets, _checks, train
from lessonlib.cache import cache_dir
from lessonlib.data import Dataset
from lessonlib.models import Model

# --------------------------------------------------------------------------- spaces
# Each distribution maps the unit interval onto its values (``from_unit``, the inverse of its CDF)
# and back (``to_unit``). Sampling is inverse-transform sampling: uniform numbers from the key,
# pushed through ``from_unit`` (one compiled random program serves every distribution).


def _sample(self, key: jax.Array, n: int) -> np.ndarray:
    """``n`` draws as float32: ``from_unit(u)`` for ``u ~ U[0, 1)`` drawn from ``key``."""
    u = np.asarray(jax.random.uniform(_checks.prng_key("key", key), (n,)), np.float64)
    return self.from_unit(u).astype(np.float32)


class Uniform(NamedTuple):
    """``x ~ U(low, high)``: ``from_unit(u) = low + u (high - low)``."""

    low: float
    high: float

    sample = _sample

    def to_unit(self, x):
        return (np.asarray(x, np.float64) - self.low) / (self.high - self.low)

    def from_unit(self, u):
        return self.low + np.clip(u, 0, 1) * (self.high - self.low)

    def grid(self, k: int) -> np.ndarray:
        return np.linspace(self.low, self.high, k) if k > 1 else self.from_unit(np.array([0.5]))


class LogUniform(NamedTuple):
    """``log x ~ U(log low, log high)``: every decade between low and high is equally likely;
    ``from_unit(u) = low (high / low)^u = exp(log low + u (log high - log low))``.

    >>> x = LogUniform(1e-4, 1.0).sample(jax.random.key(0), 100_000)
    >>> round(float(np.mean(x < 1e-2)), 2)  # 2 of the 4 decades
    0.5
    """

    low: float
    high: float

    sample = _sample

    def to_unit(self, x):
        return np.log(np.asarray(x, np.float64) / self.low) / math.log(self.high / self.low)

    def from_unit(self, u):
        return self.low * (self.high / self.low) ** np.clip(u, 0, 1)

    def grid(self, k: int) -> np.ndarray:
        return np.geomspace(self.low, self.high, k) if k > 1 else self.from_unit(np.array([0.5]))


class IntUniform(NamedTuple):
    """An integer in ``low .. high`` (both included), each equally likely; returned as float32.
    ``from_unit(u) = floor(low + u (high - low + 1))``."""

    low: int
    high: int

    sample = _sample

    def to_unit(self, x):
        return (np.asarray(x, np.float64) - self.low + 0.5) / (self.high - self.low + 1)

    def from_unit(self, u):
        x = np.floor(self.low + np.clip(u, 0, 1) * (self.high - self.low + 1))
        return np.clip(x, self.low, self.high)

    def grid(self, k: int) -> np.ndarray:
        return np.unique(np.round(np.linspace(self.low, self.high, k)))


class Choice(NamedTuple):
    """One of ``values`` (numbers), each equally likely: ``values[floor(u len(values))]``."""

    values: tuple

    sample = _sample

    def to_unit(self, x):
        index = np.argmin(np.abs(np.subtract.outer(np.asarray(x), self.values)), axis=-1)
        return (index + 0.5) / len(self.values)

    def from_unit(self, u):
        index = np.minimum((np.clip(u, 0, 1) * len(self.values)).astype(int), len(self.values) - 1)
        return np.asarray(self.values, np.float64)[index]

    def grid(self, k: int) -> np.ndarray:
        del k  # every value
        return np.asarray(self.values, np.float64)


def _check_dist(name: str, d) -> None:
    if isinstance(d, Choice):
        if len(d.values) == 0:
            raise ValueError(f"{name}: Choice needs at least one value")
        for v in d.values:
            _checks.finite(f"{name} choice", v)
    elif isinstance(d, IntUniform):
        _checks.integer(f"{name} low", d.low)
        _checks.integer(f"{name} high", d.high, min_value=d.low)
    elif isinstance(d, Uniform | LogUniform):
        (_checks.positive if isinstance(d, LogUniform) else _checks.finite)(f"{name} low", d.low)
        _checks.check(f"{name} high", d.high, lambda h: d.low < h < math.inf, f"> low = {d.low}")
    else:
        raise TypeError(f"{name} must be Uniform, LogUniform, IntUniform or Choice, got {d!r}")


def check_space(space: Mapping[str, Any]) -> dict:
    """``space`` as a dict after checking every distribution (a ValueError names the bad one)."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError("space must be a non-empty dict of name -> distribution")
    for name, d in space.items():
        _check_dist(name, d)
    return dict(space)


def sample(space: Mapping[str, Any], *, key: jax.Array, n: int) -> dict[str, np.ndarray]:
    """``n`` random configurations: dimension ``i`` (in the space's order) uses ``fold_in(key, i)``."""
    space, n = check_space(space), _checks.positive_int("n", n)
    key = _checks.prng_key("key", key)
    return {
        name: d.sample(jax.random.fold_in(key, i), n) for i, (name, d) in enumerate(space.items())
    }


def grid(space: Mapping[str, Any], points: int | Mapping[str, int]) -> dict[str, np.ndarray]:
    """Every combination of ``points`` evenly spaced values per dimension (all values of a Choice).

    Uniform: ``linspace(low, high, k)``; LogUniform: ``geomspace``; IntUniform: rounded linspace.

    >>> g = grid({"lr": LogUniform(1e-3, 1e-1), "p": Uniform(0.0, 0.5)}, 3)
    >>> [round(float(v), 3) for v in g["lr"][::3]], g["p"][:3].tolist()
    ([0.001, 0.01, 0.1], [0.0, 0.25, 0.5])
    """
    space = check_space(space)
    axes = []
    for name, d in space.items():
        k = points[name] if isinstance(points, Mapping) else points
        axes.append(d.grid(_checks.positive_int(f"points for {name}", k)))
    mesh = np.meshgrid(*axes, indexing="ij")
    return {name: m.ravel().astype(np.float32) for name, m in zip(space, mesh, strict=True)}


# --------------------------------------------------------------------------- logs


class Log(NamedTuple):
    """Evaluations in the order they happened: ``config`` (index into ``hp``), ``epochs`` (the
    configuration's total epochs), ``cost`` (epochs this evaluation trained), ``score``."""

    hp: dict[str, np.ndarray]
    config: np.ndarray
    epochs: np.ndarray
    cost: np.ndarray
    score: np.ndarray

    def best(self) -> int:
        """The configuration with the highest score seen (NaN scores never win)."""
        return int(self.config[np.nanargmax(np.where(np.isnan(self.score), -np.inf, self.score))])


def make_log(hp, config, epochs, cost, score) -> Log:
    as_arr = np.asarray
    return Log({k: as_arr(v) for k, v in hp.items()}, *map(as_arr, (config, epochs, cost, score)))


def concat_logs(logs: list[Log]) -> Log:
    """One log of several (configurations renumbered after each other)."""
    offsets = np.cumsum([0] + [len(next(iter(g.hp.values()))) for g in logs])
    cat = np.concatenate
    return make_log(
        {k: cat([g.hp[k] for g in logs]) for k in logs[0].hp},
        cat([g.config + o for g, o in zip(logs, offsets, strict=False)]),
        *(cat([getattr(g, f) for g in logs]) for f in ("epochs", "cost", "score")),
    )


def budget_curve(log: Log) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative epochs spent after each evaluation, and the best score found so far."""
    score = np.where(np.isnan(log.score), -np.inf, log.score)
    return np.cumsum(log.cost), np.maximum.accumulate(score)


# --------------------------------------------------------------------------- populations


class Setup(NamedTuple):
    """What stays fixed while a search varies ``hp``: the model, the data (its *test* split is the
    validation split the search scores on), the batch size, shared hyperparameters, the optimizer
    factory, the penalty, and the metric (a history key; losses are negated into scores)."""

    model: Model
    data: Dataset
    batch_size: int
    hp: Mapping[str, float] = {}
    optimizer: Callable | None = None
    penalty: Callable | None = None
    metric: str = "test_acc"


class Population(NamedTuple):
    """K configurations mid-training: their ``hp`` rows, stacked ``params``/``state``/``opt_state``,
    the ``ids`` of the configurations they are, the training ``key`` (one shared key, or K keys
    after ``stack``), the epochs done and the per-epoch ``history`` (K, epochs)."""

    hp: dict[str, np.ndarray]
    ids: np.ndarray
    params: Any
    state: Any
    opt_state: Any
    key: jax.Array
    epochs: int
    history: dict[str, np.ndarray]


def population(setup: Setup, hp: Mapping[str, Any], *, key: jax.Array) -> Population:
    """K untrained configurations: ``init_key, train_key = split(key)``; configuration ``i`` is
    initialized with ``fold_in(init_key, i)``, and all train with ``train_key`` (the same batches:
    common random numbers, which make the comparison fairer and the population faster)."""
    hp = {k: np.asarray(v, np.float32) for k, v in hp.items()}
    sizes = {np.shape(v) for v in hp.values()}
    if len(sizes) != 1 or len(sizes.pop()) != 1:
        shapes = {k: np.shape(v) for k, v in hp.items()}
        raise ValueError(f"hp must hold 1-D arrays of equal length, got {shapes}")
    k = len(next(iter(hp.values())))
    init_key, train_key = jax.random.split(_checks.prng_key("key", key))
    blocks = [_init_block(setup.model, init_key, b) for b in range(0, k, _INIT_BLOCK)]
    params, state = jax.tree.map(  # joined on the host, the padding of the last block dropped
        lambda *x: jnp.asarray(np.concatenate([np.asarray(b) for b in x])[:k]), *blocks
    )
    return Population(hp, np.arange(k), params, state, None, train_key, 0, {})


_INIT_BLOCK = 16  # rows initialized per call: one compilation per model, whatever K is


@partial(jax.jit, static_argnums=0)
def _init_block(model: Model, init_key, start):
    """Rows ``start .. start + _INIT_BLOCK - 1``: row ``i`` is ``model.init(fold_in(init_key, i))``
    (vmapped: the same numbers as one call per row, in one dispatch instead of 16)."""
    rows = start + jnp.arange(_INIT_BLOCK)
    return jax.vmap(lambda i: model.init(jax.random.fold_in(init_key, i)))(rows)


def scores(setup: Setup, history: Mapping[str, np.ndarray], epoch=-1) -> np.ndarray:
    """Higher-is-better scores from a (K, epochs) history after epoch index ``epoch`` (default:
    the last; an array gives each row its own, e.g. when the number of epochs is searched too)."""
    value = np.asarray(history[setup.metric])
    value = np.take_along_axis(value, np.broadcast_to(epoch, value.shape[:1])[:, None], 1)[:, 0]
    return -value if setup.metric.endswith("loss") else value


def stack(pops: list[Population]) -> Population:
    """Several populations (same epochs done) as one, trained in one call: each row keeps its
    own population's training key, so e.g. K configurations x S seeds are one vmapped run."""
    if len({p.epochs for p in pops}) != 1:
        raise ValueError("stack needs populations that have trained for the same epochs")
    cat = jnp.concatenate

    def keys(p):
        return p.key if _keys_per_row(p) else jnp.repeat(p.key[None], len(p.ids), axis=0)

    offsets = np.cumsum([0] + [len(p.ids) for p in pops])
    return pops[0]._replace(
        hp={k: np.concatenate([p.hp[k] for p in pops]) for k in pops[0].hp},
        ids=np.concatenate([p.ids + o for p, o in zip(pops, offsets, strict=False)]),
        params=jax.tree.map(lambda *x: cat(x), *(p.params for p in pops)),
        state=jax.tree.map(lambda *x: cat(x), *(p.state for p in pops)),
        opt_state=jax.tree.map(lambda *x: cat(x), *(p.opt_state for p in pops)),
        key=cat([keys(p) for p in pops]),
        history={k: np.concatenate([p.history[k] for p in pops]) for k in pops[0].history},
    )


def _keys_per_row(pop: Population) -> bool:
    return np.ndim(pop.key) == 1


def train_to(setup: Setup, pop: Population, epochs: int) -> Population:
    """Train every configuration of ``pop`` until it has done ``epochs`` epochs: one vmapped call
    that resumes each from its own parameters and optimizer state.

    **Width buckets.** When the width is searched (``"width"`` in the hp), the model can narrow
    (``Model.narrow``: ``models.mlp(masked_width=True)``) and the population has at least
    ``_buckets.MIN_POPULATION`` (32) rows, the rows are grouped by width
    (``buckets``: up to 16, 32, 48, 64 units) and each group is one such call of
    ``model.narrow(b)`` on the first ``b`` units' parameters (``lessonlib._buckets``): a row of
    width ``w`` costs ``b / n`` of the hidden layer's arithmetic instead of all ``n`` units (widths
    8..64: ``E[b] / n = 0.67``), for the same outputs, losses and used units, since the units
    ``j >= w`` are multiplied by 0 either way. Unlike a full-width run, a penalty does not shrink
    the units ``j >= b``, and ``w_norm``/``batch_loss`` count only the bucket's ``b`` units. All
    buckets are one compiled program (compiled once per set of bucket sizes), each worker (core)
    running an equal share of every bucket.
    """
    more = _checks.integer("epochs", epochs, min_value=pop.epochs + 1) - pop.epochs
    hp = {**setup.hp, **pop.hp}
    if setup.model.narrow is not None and "width" in hp and len(pop.ids) >= _buckets.MIN_POPULATION:
        params, state, opt_state, new = _buckets.train(
            setup.model,
            (pop.params, pop.state, pop.opt_state),
            hp,
            data=setup.data,
            key=pop.key,
            epochs=more,
            batch_size=setup.batch_size,
            first_epoch=pop.epochs,
            optimizer=setup.optimizer,
            penalty=setup.penalty,
        )
    else:
        run = _sweep(setup, setup.model, pop, more)
        params, state, opt_state, new = run.params, run.state, run.opt_state, run.history
    history = {
        k: np.concatenate([pop.history[k], v], axis=1) if pop.history else v for k, v in new.items()
    }
    return pop._replace(
        params=params, state=state, opt_state=opt_state, epochs=epochs, history=history
    )


buckets = _buckets.buckets  # the width groups of train_to: (b, rows) pairs


def _sweep(setup: Setup, model: Model, pop: Population, more: int) -> train.Run:
    return train.sweep(
        model,
        pop.params,
        setup.data,
        key=pop.key,
        hp={**setup.hp, **pop.hp},
        epochs=more,
        batch_size=setup.batch_size,
        state=pop.state,
        optimizer=setup.optimizer,
        penalty=setup.penalty,
        stacked=True,
        opt_state=pop.opt_state,
        first_epoch=pop.epochs,
    )


def take(pop: Population, rows) -> Population:
    """The population made of rows ``rows`` (positions, not ids) of ``pop``."""
    rows = np.asarray(rows, int)

    def pick(x):  # on the host: a gather per shape would compile one small program each
        return jnp.asarray(np.asarray(x)[rows])

    return pop._replace(
        hp={k: v[rows] for k, v in pop.hp.items()},
        ids=pop.ids[rows],
        key=pop.key[jnp.asarray(rows)] if _keys_per_row(pop) else pop.key,
        params=jax.tree.map(pick, pop.params),
        state=jax.tree.map(pick, pop.state),
        opt_state=jax.tree.map(pick, pop.opt_state),
        history={k: v[rows] for k, v in pop.history.items()},
    )


def evaluate_all(setup: Setup, hp: Mapping[str, Any], *, key: jax.Array, epochs: int) -> Log:
    """Random or grid search: train every configuration of ``hp`` for ``epochs`` as one population."""
    pop = train_to(setup, population(setup, hp, key=key), epochs)
    k = len(pop.ids)
    return make_log(
        pop.hp, pop.ids, np.full(k, epochs), np.full(k, epochs), scores(setup, pop.history)
    )


# --------------------------------------------------------------------------- successive halving


def keep_best(scores, eta: int) -> np.ndarray:
    """Indices of the ``max(1, floor(n / eta))`` highest scores, best first (a NaN never ranks
    above a number; ties keep the lower index first).

    >>> keep_best([0.5, 0.9, float("nan"), 0.7, 0.1], eta=2).tolist()
    [1, 3]
    """
    s = np.asarray(scores, np.float64)
    eta = _checks.integer("eta", eta, min_value=2)
    order = np.lexsort((np.arange(len(s)), -np.where(np.isnan(s), -np.inf, s)))
    return order[: max(1, len(s) // eta)]


def successive_halving(
    evaluate: Callable,
    state: Any,
    n: int,
    *,
    min_epochs: int,
    eta: int = 3,
    max_epochs: int | None = None,
) -> tuple[Log, Any]:
    """Successive halving (Jamieson & Talwalkar 2016; the inner loop of Li et al. 2017).

    Rung ``i`` trains the surviving configurations to ``min_epochs * eta**i`` epochs in total and
    keeps the best ``floor(n_i / eta)``; it stops when one is left or ``max_epochs`` is reached.
    ``evaluate(state, ids, epochs) -> (state, scores)`` trains configurations ``ids`` (indices
    ``0..n-1``) to ``epochs`` epochs, resuming them, and scores them; ``state`` is whatever it
    needs to carry (a ``Population`` for ``population_evaluate``). Returns the log and the state.
    """
    n, r = _checks.positive_int("n", n), _checks.positive_int("min_epochs", min_epochs)
    eta = _checks.integer("eta", eta, min_value=2)
    ids, done, rows = np.arange(n), np.zeros(n, int), []
    epochs = r
    while True:
        state, s = evaluate(state, ids, epochs)
        s = np.asarray(s, np.float64)
        rows += [(i, epochs, epochs - done[i], v) for i, v in zip(ids, s, strict=True)]
        done[ids] = epochs
        if len(ids) <= 1 or (max_epochs is not None and epochs * eta > max_epochs):
            break
        ids, epochs = ids[keep_best(s, eta)], epochs * eta
    config, ep, cost, score = (np.array(c) for c in zip(*rows, strict=True))
    return make_log({}, config, ep, cost, score), state


def population_evaluate(setup: Setup) -> Callable:
    """``evaluate`` for ``successive_halving`` whose state is a ``Population``: keeps the rows of
    ``ids`` (dropping the others) and trains them on to ``epochs`` in one vmapped call."""

    def evaluate(pop: Population, ids, epochs):
        row_of = {int(i): r for r, i in enumerate(pop.ids)}
        pop = train_to(setup, take(pop, [row_of[int(i)] for i in ids]), epochs)
        return pop, scores(setup, pop.history)

    return evaluate


def sh_search(setup: Setup, hp, *, key, min_epochs: int, eta: int = 3, max_epochs=None) -> Log:
    """Successive halving over the configurations ``hp``, each rung one population call."""
    pop = population(setup, hp, key=key)
    log, _ = successive_halving(
        population_evaluate(setup),
        pop,
        len(pop.ids),
        min_epochs=min_epochs,
        eta=eta,
        max_epochs=max_epochs,
    )
    return log._replace(hp=pop.hp)


def hyperband_brackets(max_epochs: int, eta: int = 3) -> list[tuple[int, int]]:
    """Li et al. 2017, Algorithm 1: ``(n, r)`` per bracket ``s = s_max .. 0`` with
    ``s_max = floor(log_eta R)``, ``n = ceil((s_max + 1) / (s + 1) * eta**s)``, ``r = R / eta**s``.

    >>> hyperband_brackets(27, 3)
    [(27, 1), (12, 3), (6, 9), (4, 27)]
    """
    R, eta = (
        _checks.positive_int("max_epochs", max_epochs),
        _checks.integer("eta", eta, min_value=2),
    )
    s_max = int(math.floor(math.log(R) / math.log(eta) + 1e-9))
    return [(math.ceil((s_max + 1) / (s + 1) * eta**s), R // eta**s) for s in range(s_max, -1, -1)]


def hyperband(setup: Setup, space, *, key, max_epochs: int, eta: int = 3) -> Log:
    """Hyperband: successive halving in every bracket of ``hyperband_brackets``, each bracket with
    fresh configurations sampled from ``space`` (key ``fold_in(key, bracket)``)."""
    logs = []
    for b, (n, r) in enumerate(hyperband_brackets(max_epochs, eta)):
        k = jax.random.fold_in(key, b)
        hp = sample(space, key=jax.random.fold_in(k, 0), n=n)
        logs.append(
            sh_search(
                setup,
                hp,
                key=jax.random.fold_in(k, 1),
                min_epochs=r,
                eta=eta,
                max_epochs=max_epochs,
            )
        )
    return concat_logs(logs)


# --------------------------------------------------------------------------- genetic search


def genetic(
    fitness: Callable[[dict], np.ndarray],
    space: Mapping[str, Any],
    *,
    key: jax.Array,
    size: int,
    generations: int,
    tournament: int = 3,
    mutation: float = 0.3,
    sigma: float = 0.1,
    elite: int = 1,
    cost: int = 1,
) -> Log:
    """A genetic search in the unit cube of ``space`` (each dimension's ``to_unit`` coordinates).

    Each generation: score all ``size`` individuals with one ``fitness(hp) -> scores`` call (a
    population), keep the ``elite`` best unchanged, and make each other child from two parents
    chosen by tournament (the best of ``tournament`` random individuals): uniform crossover (each
    gene from either parent), then with probability ``mutation`` per gene a Gaussian step of size
    ``sigma``. Generation ``g`` breeds with ``fold_in(key, g + 1)``. Configuration ``g * size + i``
    of the log is individual ``i`` of generation ``g``; ``cost`` is the epochs one fitness trains.
    """
    space = check_space(space)
    size = _checks.positive_int("size", size)
    generations = _checks.positive_int("generations", generations)
    _checks.in_range("mutation", mutation, 0.0, 1.0)
    _checks.non_negative("sigma", sigma)
    _checks.in_range("tournament", _checks.positive_int("tournament", tournament), 1, size)
    _checks.in_range("elite", _checks.integer("elite", elite), 0, size - 1)
    dims, n_child = list(space.items()), size - elite
    units = np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (size, len(dims))))
    hps, scored = [], []
    for g in range(generations):
        hp = {n: d.from_unit(units[:, i]).astype(np.float32) for i, (n, d) in enumerate(dims)}
        s = np.asarray(fitness(hp), np.float64)
        hps.append(hp)
        scored.append(s)
        rank = np.where(np.isnan(s), -np.inf, s)
        k_pick, k_cross, k_mut, k_step = jax.random.split(jax.random.fold_in(key, g + 1), 4)
        entrants = np.asarray(jax.random.randint(k_pick, (2, n_child, tournament), 0, size))
        winner = np.argmax(rank[entrants], axis=-1)  # tournament: the best of the entrants
        mum, dad = np.take_along_axis(entrants, winner[..., None], -1)[..., 0]
        from_mum = np.asarray(jax.random.uniform(k_cross, (n_child, len(dims)))) < 0.5
        genes = np.where(from_mum, units[mum], units[dad])
        mutate = np.asarray(jax.random.uniform(k_mut, genes.shape)) < mutation
        step = sigma * np.asarray(jax.random.normal(k_step, genes.shape))
        genes = np.clip(genes + mutate * step, 0.0, 1.0)
        units = np.concatenate([units[np.argsort(-rank, kind="stable")[:elite]], genes])
    k = size * generations
    hp = {n: np.concatenate([h[n] for h in hps]) for n in space}
    return make_log(hp, np.arange(k), np.full(k, cost), np.full(k, cost), np.concatenate(scored))


# --------------------------------------------------------------------------- optuna (TPE)


def default_storage() -> str:
    """The SQLite file where studies are kept unless another database URL is given."""
    path = cache_dir() / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def storage_url(storage: str | None = None) -> str:
    """The URL optuna opens: ``default_storage()`` for None. ``postgresql://`` means the psycopg 3
    driver to SQLAlchemy 2.1; when only psycopg2 is installed it becomes ``postgresql+psycopg2://``."""
    import importlib.util

    url = storage or default_storage()
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def create_study(
    name: str, *, storage: str | None = None, seed: int = 0, direction: str = "maximize"
):
    """An optuna study with the TPE sampler (Bergstra et al. 2011), stored in ``storage`` (any URL
    optuna accepts: SQLite by default, ``postgresql://...`` for workers on several machines);
    an existing study of that name is loaded, so a second worker or a rerun continues it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _checks.one_of("direction", direction, ["maximize", "minimize"])
    sampler = optuna.samplers.TPESampler(seed=_checks.integer("seed", seed), constant_liar=True)
    return optuna.create_study(
        study_name=name,
        storage=storage_url(storage),
        sampler=sampler,
        direction=direction,
        load_if_exists=True,
    )


def suggest(trial, space: Mapping[str, Any]) -> dict[str, float]:
    """Ask an optuna trial for one value per dimension of ``space`` (log scale for LogUniform)."""
    out = {}
    for name, d in check_space(space).items():
        if isinstance(d, Choice):
            out[name] = float(trial.suggest_categorical(name, list(d.values)))
        elif isinstance(d, IntUniform):
            out[name] = float(trial.suggest_int(name, d.low, d.high))
        else:
            out[name] = trial.suggest_float(name, d.low, d.high, log=isinstance(d, LogUniform))
    return out


def run_trials(
    fitness: Callable[[dict], np.ndarray], space, *, study, trials: int, batch: int, attrs=None
) -> list[tuple[int, float, dict]]:
    """Ask ``study`` for ``trials`` new trials, ``batch`` at a time; score each batch with one
    ``fitness(hp)`` call (a population) and tell the results (a NaN score, a diverged run, is told
    as a failed trial). ``attrs`` are stored with every trial (e.g. which worker ran it). Returns
    ``(number, score, params)`` of every trial this call ran."""
    import optuna

    trials, batch = _checks.positive_int("trials", trials), _checks.positive_int("batch", batch)
    ran = []
    while len(ran) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(ran)))]
        values = [suggest(t, space) for t in asked]
        s = np.asarray(fitness({k: np.array([v[k] for v in values], np.float32) for k in space}))
        for t, v, params in zip(asked, s, values, strict=True):
            for name, value in (attrs or {}).items():
                t.set_user_attr(name, value)
            if np.isfinite(v):
                study.tell(t, float(v))
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            ran.append((t.number, float(v), params))
    return ran


def tpe_search(
    fitness: Callable[[dict], np.ndarray], space, *, study, trials: int, batch: int, cost: int = 1
) -> Log:
    """``run_trials`` until ``study`` holds ``trials`` finished trials: trials already stored (a
    rerun, another worker) count, so a second call trains nothing. Returns the study as a log;
    ``cost`` is the epochs one trial trains (for ``budget_curve``)."""
    missing = _checks.positive_int("trials", trials) - len(_finished(study))
    if missing > 0:
        run_trials(fitness, space, study=study, trials=missing, batch=batch)
    return study_log(study, space, cost=cost)


def _finished(study) -> list:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)


def study_log(study, space, *, cost: int = 1) -> Log:
    """A study's finished trials in the order they were numbered, as a ``Log`` (failed: NaN)."""
    done = _finished(study)
    hp = {k: np.array([t.params[k] for t in done], np.float32) for k in space}
    score = np.array([np.nan if t.value is None else t.value for t in done], np.float64)
    k = np.arange(len(done))
    return make_log(hp, k, np.full(len(k), cost), np.full(len(k), cost), score)


def validation_split(data: Dataset, n_val: int, *, key: jax.Array) -> Dataset:
    """Hold ``n_val`` shuffled training examples out as the validation split: the returned
    Dataset's *test* split is that validation split (the real test set is not in it at all)."""
    n = data.x_train.shape[0]
    n_val = _checks.integer("n_val", n_val, min_value=1)
    if n_val >= n:
        raise ValueError(f"n_val must be < the {n} training examples, got {n_val}")
    order = np.asarray(jax.random.permutation(_checks.prng_key("key", key), n))
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)  # index on the host: no compiles
    val, tr = order[:n_val], order[n_val:]
    return Dataset(*(jnp.asarray(a) for a in (x[tr], y[tr], x[val], y[val])))
