"""Chapter 08 (hyperparameter search): the study notes' MNIST random search and its fix, the
chapter's search problem on digits, the stored experiments behind the notebook, its slider panel,
and a worker process for one optuna study shared by several processes.

- ``SourceNetwork``: the 2024 study notes' NumPy network, copied with its bugs (``fit`` nested in
  ``backward``, softmax minus the global max, ``np.int`` in the loader, weights built in
  ``__init__`` so a searched ``hidden_size`` never changes them); ``FixedNetwork`` fixes them.
- ``search_data``/``search_setup``: digits with a validation split held out of the training set;
  MLP 64-64-10 with the hidden width masked, SGD, batch 64, an L2 penalty ``hp["lam"]``.
- ``source_study``: the notes' search space on digits, 10 random configurations plus the notes'
  default as the baseline, over several seeds, as one population (the number of epochs is read off
  the history: a run of 49 epochs passes through the run of every shorter length).
- ``compare_methods``: grid, random, successive halving, Hyperband, TPE (optuna) and a genetic
  search on the same problem, their budget curves and logs, for one seed.
- ``budget_panel``: budget vs best validation accuracy per method with a seed selector, drawn from
  stored results only.
- ``python -m lessonlib.demos.ch08_search worker --storage URL --study NAME --trials N``: a worker
  that adds N trials to a shared study (start several; PostgreSQL lets them run on many machines).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from lessonlib import _buckets, data, models, regularization, search, viz
from lessonlib.search import Choice, IntUniform, LogUniform

# --------------------------------------------------------------------------- the study notes' script


class SourceNetwork(BaseEstimator, ClassifierMixin):
    """The study notes' network, as printed (comments translated, bugs kept)."""

    def __init__(
        self,
        input_size,
        hidden_size=128,
        output_size=10,
        learning_rate=0.01,
        epochs=20,
        batch_size=64,
    ):
        # He initialization of the weights
        self.W1 = self.he_normal((input_size, hidden_size))
        self.b1 = np.zeros((1, hidden_size))
        self.W2 = self.he_normal((hidden_size, output_size))
        self.b2 = np.zeros((1, output_size))
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size

    def he_normal(self, shape, fan_in=None):
        if fan_in is None:
            fan_in = shape[0]
        std = np.sqrt(2.0 / fan_in)
        return np.random.normal(loc=0.0, scale=std, size=shape)

    def softmax(self, z):
        exp_z = np.exp(z - np.max(z))  # "prevents overflow"
        return exp_z / exp_z.sum(axis=1, keepdims=True)

    def forward(self, X):
        self.z1 = np.dot(X, self.W1) + self.b1
        self.a1 = np.maximum(0, self.z1)
        self.z2 = np.dot(self.a1, self.W2) + self.b2
        self.a2 = self.softmax(self.z2)
        return self.a2

    def compute_loss(self, y_true, y_pred):
        m = y_true.shape[0]
        log_likelihood = -np.log(y_pred[range(m), y_true])
        return np.sum(log_likelihood) / m

    def backward(self, X, y_true):
        m = y_true.shape[0]
        delta2 = self.a2
        delta2[range(m), y_true] -= 1
        delta2 /= m
        dW2 = np.dot(self.a1.T, delta2)
        db2 = np.sum(delta2, axis=0, keepdims=True)
        delta1 = np.dot(delta2, self.W2.T)
        delta1[self.z1 <= 0] = 0
        dW1 = np.dot(X.T, delta1)
        db1 = np.sum(delta1, axis=0, keepdims=True)
        self.W1 -= self.learning_rate * dW1
        self.b1 -= self.learning_rate * db1
        self.W2 -= self.learning_rate * dW2
        self.b2 -= self.learning_rate * db2

        def fit(self, X, y):  # indented one level too deep: a local function of backward
            for _epoch in range(self.epochs):
                indices = np.arange(X.shape[0])
                np.random.shuffle(indices)
                X_shuffled = X[indices]
                y_shuffled = y[indices]
                for i in range(0, X.shape[0], self.batch_size):
                    X_batch = X_shuffled[i : i + self.batch_size]
                    y_batch = y_shuffled[i : i + self.batch_size]
                    y_pred = self.forward(X_batch)
                    loss = self.compute_loss(y_batch, y_pred)  # noqa: F841
                    self.backward(X_batch, y_batch)

        return self

    def predict(self, X):
        return np.argmax(self.forward(X), axis=1)

    def score(self, X, y):
        return np.mean(self.predict(X) == y)


def source_labels(target) -> np.ndarray:
    """The notes' loader line ``mnist.target.astype(np.int)``: ``np.int`` was removed in NumPy 1.24."""
    return np.asarray(target).astype(np.int)


def global_max_softmax(z: np.ndarray) -> np.ndarray:
    """The notes' softmax: subtracts the largest logit of the whole batch."""
    exp_z = np.exp(z - np.max(z))
    return exp_z / exp_z.sum(axis=1, keepdims=True)


def row_max_softmax(z: np.ndarray) -> np.ndarray:
    """The fix: subtract each row's own largest logit (exactly what jax.nn.softmax does)."""
    exp_z = np.exp(z - np.max(z, axis=1, keepdims=True))
    return exp_z / exp_z.sum(axis=1, keepdims=True)


class FixedNetwork(BaseEstimator, ClassifierMixin):
    """The notes' network with its bugs fixed; scikit-learn's rules kept: ``__init__`` only stores
    its arguments, ``fit`` builds the weights (so a searched ``hidden_size`` takes effect) and is
    a method of the class. Softmax subtracts each row's max; ``backward`` does not write into the
    forward pass's output; ``random_state`` makes a fit repeatable."""

    def __init__(
        self,
        input_size=64,
        hidden_size=128,
        output_size=10,
        learning_rate=0.01,
        epochs=20,
        batch_size=64,
        random_state=0,
    ):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y):
        rng = np.random.default_rng(self.random_state)
        sizes = (self.input_size, self.hidden_size, self.output_size)
        self.W1_ = rng.normal(0.0, np.sqrt(2.0 / sizes[0]), sizes[:2])
        self.b1_ = np.zeros((1, sizes[1]))
        self.W2_ = rng.normal(0.0, np.sqrt(2.0 / sizes[1]), sizes[1:])
        self.b2_ = np.zeros((1, sizes[2]))
        for _epoch in range(self.epochs):
            order = rng.permutation(len(X))
            for i in range(0, len(X), self.batch_size):
                batch = order[i : i + self.batch_size]
                self._step(X[batch], y[batch])
        return self

    def _forward(self, X):
        z1 = X @ self.W1_ + self.b1_
        a1 = np.maximum(0, z1)
        return z1, a1, row_max_softmax(a1 @ self.W2_ + self.b2_)

    def _step(self, X, y):
        m = len(y)
        z1, a1, probs = self._forward(X)
        delta2 = probs.copy()
        delta2[np.arange(m), y] -= 1
        delta2 /= m
        delta1 = (delta2 @ self.W2_.T) * (z1 > 0)
        self.W2_ -= self.learning_rate * a1.T @ delta2
        self.b2_ -= self.learning_rate * delta2.sum(axis=0, keepdims=True)
        self.W1_ -= self.learning_rate * X.T @ delta1
        self.b1_ -= self.learning_rate * delta1.sum(axis=0, keepdims=True)

    def predict(self, X):
        return np.argmax(self._forward(X)[2], axis=1)

    def score(self, X, y):
        return float(np.mean(self.predict(X) == y))


# The notes' search space (MNIST, 784 inputs) and the one the chapter uses on digits (64 inputs):
# hidden widths scaled by 1/4 like the inputs' side (28 -> 8 pixels is 1/3.5), the rest unchanged.
NOTES_SPACE = {"hidden_size": (32, 256), "learning_rate": (0.001, 0.01, 0.1), "epochs": (10, 50)}
SOURCE_SPACE = {
    "width": IntUniform(8, 64),
    "lr": Choice((0.001, 0.01, 0.1)),
    "epochs": IntUniform(10, 49),
}
BASELINE = {"width": 32.0, "lr": 0.01, "epochs": 20.0}  # the notes' defaults (hidden 128 / 4)

# --------------------------------------------------------------------------- the search problem

SIZES = (64, 64, 10)
BATCH = 64
N_VAL = 360
SPACE = {
    "lr": LogUniform(1e-3, 1.0),
    "width": IntUniform(8, 64),
    "lam": LogUniform(1e-6, 1e-1),
}
MAX_EPOCHS, ETA = 27, 3


def l2(params, hp):
    """The L2 penalty lam/2 ||w||^2 with ``hp["lam"]`` (module level: one compiled run)."""
    return regularization.l2_penalty(params, hp["lam"])


def search_data(*, split_seed: int = 0) -> tuple[data.Dataset, data.Dataset]:
    """Digits as (search data, test data): both train on the same 1,077 images; the search data's
    "test" split is the 360-image validation split, the test data's is the real test set."""
    full = data.digits(seed=0)
    val = search.validation_split(full, N_VAL, key=jax.random.key(split_seed))
    return val, data.Dataset(val.x_train, val.y_train, full.x_test, full.y_test)


# One model object for the whole chapter: compiled runs are cached per model object, so a new
# ``models.mlp(...)`` per search would compile every population again.
MODEL = models.mlp(list(SIZES), masked_width=True)


def search_setup(ds: data.Dataset, *, penalty: bool = True) -> search.Setup:
    """The chapter's MLP 64-64-10 (hidden width masked, read from ``hp["width"]``) on ``ds``."""
    return search.Setup(MODEL, ds, batch_size=BATCH, penalty=l2 if penalty else None)


# --------------------------------------------------------------------------- the notes' search


def source_study(seeds, *, n_configs: int = 10) -> dict[str, np.ndarray]:
    """The notes' search over ``seeds``: per seed, ``n_configs`` random configurations of
    ``SOURCE_SPACE`` plus ``BASELINE`` (last row). All seeds train as ONE population (each seed
    its own keys) to 49 epochs, scored on validation and - the same runs again - on the test set,
    each configuration read after its own number of epochs. Arrays are (seeds, n_configs + 1)."""
    val_data, test_data = search_data()
    pops, epochs = [], []
    for s in seeds:
        hp = search.sample(SOURCE_SPACE, key=jax.random.fold_in(jax.random.key(80), s), n=n_configs)
        hp = {k: np.append(v, np.float32(BASELINE[k])) for k, v in hp.items()}
        epochs.append(hp.pop("epochs").astype(int))
        pops.append(
            search.population(search_setup(val_data, penalty=False), hp, key=jax.random.key(s))
        )
    big, epochs = search.stack(pops), np.concatenate(epochs)
    start = time.perf_counter()
    out = {}
    for name, ds in (("val", val_data), ("test", test_data)):
        setup = search_setup(ds, penalty=False)
        trained = search.train_to(setup, big, int(SOURCE_SPACE["epochs"].high))
        out[name] = search.scores(setup, trained.history, epochs - 1).reshape(len(seeds), -1)
    shape = out["val"].shape
    return {
        **out,
        "width": big.hp["width"].reshape(shape),
        "lr": big.hp["lr"].reshape(shape),
        "epochs": epochs.reshape(shape),
        "seconds": np.float64(time.perf_counter() - start),
    }


def paired_interval(baseline, searched, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-seed gains ``searched - baseline`` and its Student-t interval:
    ``mean +- t_{(1+c)/2, n-1} * s / sqrt(n)`` with the sample standard deviation ``s``."""
    from scipy import stats

    gain = np.asarray(searched, np.float64) - np.asarray(baseline, np.float64)
    n = len(gain)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * gain.std(ddof=1) / math.sqrt(n)
    return float(gain.mean()), float(gain.mean() - half), float(gain.mean() + half)


# --------------------------------------------------------------------------- grid vs random


def bumpy(x: np.ndarray) -> np.ndarray:
    """The important dimension of the toy objective: a narrow peak at x = 0.63 on a slope."""
    return 0.3 * x + np.exp(-(((x - 0.63) / 0.06) ** 2))


def toy_objective(x, y):
    """Bergstra & Bengio's picture: ``bumpy(x)`` matters, y moves the score by at most 0.02."""
    return bumpy(x) + 0.02 * np.sin(3 * np.pi * y)


def grid_vs_random_toy(ks=(2, 3, 4, 5, 6, 7), *, repeats: int = 2000, seed: int = 0) -> dict:
    """Best toy objective found with a k x k grid vs k^2 random points (mean, 10% and 90%
    quantiles over ``repeats`` random searches), and the distinct x values each one tries."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0, 1, 100_001)
    optimum = float((bumpy(xs) + 0.02).max())
    out = {"ks": np.asarray(ks), "optimum": np.float64(optimum)}
    grid_best, rand = [], []
    for k in ks:
        g = np.linspace(0.0, 1.0, k)
        gx, gy = np.meshgrid(g, g)
        grid_best.append(toy_objective(gx, gy).max())
        pts = rng.random((repeats, k * k, 2))
        rand.append(toy_objective(pts[..., 0], pts[..., 1]).max(axis=1))
    rand = np.asarray(rand)
    out.update(
        grid_best=np.asarray(grid_best),
        random_mean=rand.mean(1),
        random_q10=np.quantile(rand, 0.1, axis=1),
        random_q90=np.quantile(rand, 0.9, axis=1),
        grid_distinct_x=np.asarray(ks),
        random_distinct_x=np.asarray([k * k for k in ks]),
    )
    return out


# --------------------------------------------------------------------------- the methods compared

METHODS = ("grid", "random", "halving", "hyperband", "TPE", "genetic")


def compare_methods(seed: int, *, study_prefix: str, storage: str | None = None) -> dict:
    """Every method of the chapter on the search problem, one seed, as flat arrays:
    ``{method}.budget``/``.best`` (budget curve), ``.score``, ``.lr``/``.width``/``.lam`` per
    evaluation, ``.seconds``; TPE's study is ``{study_prefix}-seed{seed}`` in ``storage``."""
    val_data, _ = search_data()
    setup = search_setup(val_data)
    key = jax.random.fold_in(jax.random.key(800), seed)
    keys = {m: jax.random.fold_in(key, i) for i, m in enumerate(METHODS)}
    n = 27  # configurations of grid, random and TPE; 27 epochs each

    def fitness(hp, *, epochs=MAX_EPOCHS, k=keys["TPE"]):
        return search.evaluate_all(setup, hp, key=k, epochs=epochs).score

    study = search.create_study(f"{study_prefix}-seed{seed}", storage=storage, seed=seed)
    runs = {
        "grid": lambda: search.evaluate_all(
            setup, search.grid(SPACE, 3), key=keys["grid"], epochs=MAX_EPOCHS
        ),
        "random": lambda: search.evaluate_all(
            setup,
            search.sample(SPACE, key=keys["random"], n=n),
            key=jax.random.fold_in(keys["random"], 1),
            epochs=MAX_EPOCHS,
        ),
        "halving": lambda: search.sh_search(
            setup,
            search.sample(SPACE, key=keys["halving"], n=81),
            key=jax.random.fold_in(keys["halving"], 1),
            min_epochs=1,
            eta=ETA,
            max_epochs=MAX_EPOCHS,
        ),
        "hyperband": lambda: search.hyperband(
            setup, SPACE, key=keys["hyperband"], max_epochs=MAX_EPOCHS, eta=ETA
        ),
        "TPE": lambda: search.tpe_search(
            fitness, SPACE, study=study, trials=n, batch=9, cost=MAX_EPOCHS
        ),
        "genetic": lambda: search.genetic(
            lambda hp: fitness(hp, k=keys["genetic"]),
            SPACE,
            key=jax.random.fold_in(keys["genetic"], 1),
            size=9,
            generations=3,
            cost=MAX_EPOCHS,
        ),
    }
    out = {}
    for method, run in runs.items():
        start = time.perf_counter()
        log = run()
        out[f"{method}.seconds"] = np.float64(time.perf_counter() - start)
        budget, best = search.budget_curve(log)
        out[f"{method}.budget"], out[f"{method}.best"] = budget, best
        out[f"{method}.score"] = log.score
        out[f"{method}.epochs"] = log.epochs
        out[f"{method}.config"] = log.config
        for name in SPACE:
            out[f"{method}.{name}"] = log.hp[name][log.config]
    importance = tpe_importances(study)
    out["TPE.importance"] = np.array([importance[name] for name in SPACE])
    return out


def seed_noise(hp: dict, seeds, *, epochs: int = MAX_EPOCHS) -> dict[str, np.ndarray]:
    """ONE configuration ``hp`` (scalars) trained once per seed, as one population with a key per
    seed; validation and test accuracy of every run (the same runs scored twice)."""
    val_data, test_data = search_data()
    row = {k: np.full(1, v, np.float32) for k, v in hp.items()}
    pops = [
        search.population(search_setup(val_data), row, key=jax.random.key(1000 + s)) for s in seeds
    ]
    big = search.stack(pops)
    out = {}
    for name, ds in (("val", val_data), ("test", test_data)):
        setup = search_setup(ds)
        out[name] = search.scores(setup, search.train_to(setup, big, epochs).history)
    return out


def best_at(results: dict, method: str, budgets) -> np.ndarray:
    """The best validation accuracy ``method`` had found once it had spent each of ``budgets``
    epochs (NaN before its first evaluation finished)."""
    spent, best = results[f"{method}.budget"], results[f"{method}.best"]
    i = np.searchsorted(spent, np.asarray(budgets), side="right") - 1
    return np.where(i >= 0, best[np.maximum(i, 0)], np.nan)


def tpe_importances(study) -> dict[str, float]:
    """optuna's fANOVA parameter importances (Hutter et al. 2014) of a study, seeded."""
    import optuna

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


# The code behind the stored results: the notebook's cache keys hash its source (with the core
# modules'), so editing any of it recomputes them; editing the panel below does not. The width
# buckets (``_buckets``) train every population of 32 configurations or more.
COMPUTE = (
    _buckets,
    search_data,
    search_setup,
    l2,
    source_study,
    seed_noise,
    compare_methods,
    tpe_importances,
)


# --------------------------------------------------------------------------- the slider panel

COLORS = dict(
    zip(METHODS, ("#7f7f7f", "#1f77b4", "#2ca02c", "#17becf", "#d62728", "#9467bd"), strict=True)
)


def budget_panel(results: dict[int, dict], *, step: int = 27):
    """Budget (epochs spent) vs best validation accuracy per method, over stored results.

    ``results`` maps a seed to ``compare_methods``'s arrays. The budget slider moves a marker and
    the bar chart of what each method had found by then; the seed selector swaps the bold curves
    (the faint ones are the other seeds). Nothing is recomputed: every value is looked up.
    """
    import ipywidgets as widgets

    seeds = sorted(results)
    top = int(max(results[s][f"{m}.budget"][-1] for s in seeds for m in METHODS))
    budgets = np.arange(0, top + step, step)
    table = {s: {m: best_at(results[s], m, budgets) for m in METHODS} for s in seeds}
    low = min(
        np.nanmin(np.where(t[m] > 0.5, t[m], np.nan)) for t in table.values() for m in METHODS
    )
    fig, (ax, bx) = viz.figure(2, width=4.6)
    for s in seeds:
        for m in METHODS:
            ax.step(budgets, table[s][m], where="post", color=COLORS[m], alpha=0.18, lw=1)
    lines = {
        m: ax.step([], [], where="post", color=COLORS[m], lw=2, label=m, animated=True)[0]
        for m in METHODS
    }
    marker = ax.axvline(0, color="k", ls=":", lw=1, animated=True)
    ax.set(
        xlim=(0, top),
        ylim=(low - 0.01, 1.0),
        xlabel="budget (epochs trained)",
        ylabel="best validation accuracy",
    )
    ax.legend(loc="lower right", fontsize=7)
    per_seed = np.array([[table[s][m] for s in seeds] for m in METHODS])  # (method, seed, budget)
    found = np.isfinite(per_seed)
    spread = np.stack(  # range over seeds (0 where no seed has a result yet)
        [
            np.where(found, per_seed, np.inf).min(axis=1),
            np.where(found, per_seed, -np.inf).max(axis=1),
        ],
        axis=1,
    )
    spread[~np.isfinite(spread)] = 0.0
    bars = bx.bar(
        range(len(METHODS)),
        np.zeros(len(METHODS)),
        color=[COLORS[m] for m in METHODS],
        animated=True,
    )
    ranges = [
        bx.plot([i, i], [0, 0], color="k", lw=3, alpha=0.35, animated=True)[0]
        for i in range(len(METHODS))
    ]
    bx.set(ylim=(low - 0.01, 1.0), xticks=range(len(METHODS)), ylabel="best found so far")
    bx.set_xticklabels(METHODS, rotation=30, fontsize=8)
    title = ax.set_title("", animated=True)
    btitle = bx.set_title("", animated=True, fontsize=9)

    def draw(budget, seed):
        j = int(round(budget / step))
        for i, m in enumerate(METHODS):
            lines[m].set_data(budgets, table[seed][m])
            v = table[seed][m][j]
            bars[i].set_height(0.0 if np.isnan(v) else v)
            ranges[i].set_data([i, i], spread[i, :, j])
        marker.set_xdata([budgets[j]])
        found = {m: table[seed][m][j] for m in METHODS if not np.isnan(table[seed][m][j])}
        lead = max(found, key=found.get) if found else "none yet"
        title.set_text(f"seed {seed}, budget {budgets[j]} epochs")
        btitle.set_text(
            f"best so far: {lead}"
            + (f" {found[lead]:.3f}" if found else "")
            + " (bar: range over seeds)"
        )

    controls = dict(
        budget=widgets.IntSlider(
            value=int(budgets[len(budgets) // 3]),
            min=0,
            max=int(budgets[-1]),
            step=step,
            description="budget",
            continuous_update=False,
        ),
        seed=widgets.Dropdown(options=seeds, value=seeds[0], description="seed"),
    )
    return viz.Panel(fig, draw, **controls)


# --------------------------------------------------------------------------- a study's worker


def worker_fitness(*, epochs: int):
    """The chapter's search problem as a fitness function: one population per batch of trials."""
    setup = search_setup(search_data()[0])

    def fitness(hp):
        return search.evaluate_all(setup, hp, key=jax.random.key(0), epochs=epochs).score

    return fitness


def main(argv=None) -> int:
    """``worker``: add trials to a shared optuna study; prints one JSON line per trial it ran."""
    parser = argparse.ArgumentParser(prog="python -m lessonlib.demos.ch08_search")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run trials of one study (several workers may share it)")
    w.add_argument("--study", required=True, help="the study's name")
    w.add_argument("--storage", default=None, help="database URL (default: SQLite in the cache)")
    w.add_argument("--trials", type=int, default=9, help="trials this worker runs")
    w.add_argument("--batch", type=int, default=3, help="trials trained at once (one population)")
    w.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    w.add_argument("--seed", type=int, default=0, help="this worker's sampler seed")
    w.add_argument("--name", default="worker", help="recorded with every trial it runs")
    args = parser.parse_args(argv)
    study = search.create_study(args.study, storage=args.storage, seed=args.seed)
    ran = search.run_trials(
        worker_fitness(epochs=args.epochs),
        SPACE,
        study=study,
        trials=args.trials,
        batch=args.batch,
        attrs={"worker": args.name},
    )
    for number, value, params in ran:
        print(json.dumps({"worker": args.name, "number": number, "value": value, "params": params}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
