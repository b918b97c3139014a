# %% [markdown]
# # 02 · Dropout
#
# A network with 256 + 256 hidden units can memorize 4,000 training signals. Dropout fights that by
# switching off a random part of the hidden units at every training step. In this chapter you derive
# why the survivors are scaled by $1/(1-p)$, fix a broken dropout from a JAX book, measure the gap
# dropout closes on MNIST-1D, move a slider over $p$, and use dropout at prediction time to get an
# uncertainty estimate (MC dropout).
#
# Three views of the same trick:
# - **Noise injection.** Bishop (1995) showed that training on inputs with small added noise acts like
#   a smoothness penalty (Tikhonov regularization). Dropout injects noise into every hidden layer, not
#   only the inputs: $h' = h \cdot m / (1-p)$ with a random 0/1 mask $m$.
# - **No co-adaptation.** A unit cannot rely on one particular partner being present, so features must
#   be useful on their own (Srivastava et al. 2014).
# - **Ensemble.** Every mask selects one of $2^n$ thinned sub-networks that share weights; training
#   samples one per step, and the full network at test time approximates their average.
#
# **Sources.** The JAX book chapter supplies the broken dropout; the 2024 study notes and the notes
# on *Dive into Deep Learning* §4.5–4.6 two myths; the notes on Géron's chapter 11 MC dropout.
# [The course's sources](../sources.md) says what each document is and where each of its mistakes
# is corrected.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import cache, data, layers, models, train, viz
from lessonlib.demos import ch02_dropout as demo
from lessonlib.exercises import check

# %% [markdown]
# ## Inverted dropout and its expectation
#
# ![Left: a training step of a network with two hidden layers; about half of the hidden units are
# crossed out, the others are marked times two. Right: the same network at evaluation, every unit
# present and unscaled.](../assets/figures/ch02_inverted_dropout.svg)
#
# A training step draws a new mask: each *hidden* unit is dropped with probability $p$ (inputs and
# outputs never are), and the survivors are multiplied by $1/(1-p)$ — by 2 for $p = 0.5$, as in the
# picture. Evaluation uses every unit as it is. The scaling is what makes the two agree on average:
# with drop probability $p$ every unit becomes
# $$x' = \begin{cases} 0 & \text{with probability } p \\ \dfrac{x}{1-p} & \text{with probability } 1-p \end{cases}
# \qquad\Rightarrow\qquad E[x'] = p \cdot 0 + (1-p)\,\frac{x}{1-p} = x,$$
# and $\operatorname{Var}[x'] = E[x'^2] - x^2 = \frac{x^2}{1-p} - x^2 = x^2 \frac{p}{1-p}$.
# The mean of $n$ independent draws therefore has standard deviation $|x|\sqrt{p / ((1-p)\,n)}$:
# that is the tolerance of the check below (5 standard deviations).

# %%
x0, p0, n0 = 1.7, 0.3, 1_000_000
draws = layers.dropout(jnp.full((n0,), x0, jnp.float32), p0, key=jax.random.key(0))
mean, var = float(jnp.mean(draws)), float(jnp.var(draws))
sd_of_mean = abs(x0) * np.sqrt(p0 / ((1 - p0) * n0))
print(
    f"E[x'] ~ {mean:.4f}   x = {x0}   |difference| / sd_of_mean = {abs(mean - x0) / sd_of_mean:.2f}"
)
print(f"Var[x'] ~ {var:.4f}   x^2 p/(1-p) = {x0**2 * p0 / (1 - p0):.4f}")
print(f"fraction of zeros ~ {float(jnp.mean(draws == 0)):.4f}   p = {p0}")
assert abs(mean - x0) < 5 * sd_of_mean
assert np.isclose(var, x0**2 * p0 / (1 - p0), rtol=0.01)

# %%
# NBVAL_CHECK_OUTPUT
print("expectation check passed:", abs(mean - x0) < 5 * sd_of_mean)
# OUTPUT: expectation check passed: True

# %% [markdown]
# **The ensemble view, exactly, for one linear unit.** For $y = w \cdot x'$ the average over all
# $2^n$ masks (weighted by their probabilities) equals the output without dropout, $w \cdot x$. The
# cell enumerates all $2^{10} = 1024$ masks of a 10-input unit. With a nonlinearity after the layer this
# is only approximately true — the MC-dropout section measures how close the approximation is.

# %%
n_in, p_ens = 10, 0.3
w_ens = jax.random.normal(jax.random.key(1), (n_in,), jnp.float32)
x_ens = jax.random.normal(jax.random.key(2), (n_in,), jnp.float32)
masks = ((np.arange(2**n_in)[:, None] >> np.arange(n_in)) & 1).astype(np.float64)  # all 1024 masks
prob = np.prod(np.where(masks == 1, 1 - p_ens, p_ens), axis=1)  # P(mask)
outputs = (masks * np.asarray(x_ens) / (1 - p_ens)) @ np.asarray(w_ens, np.float64)
ensemble = float(prob @ outputs)
full_net = float(jnp.dot(w_ens, x_ens))
print(f"sum of mask probabilities = {prob.sum():.6f}")
print(
    f"ensemble average over 1024 sub-networks = {ensemble:.6f},  full network w.x = {full_net:.6f}"
)
assert np.isclose(ensemble, full_net, rtol=1e-5)

# %% [markdown]
# ## Classic vs inverted scaling
#
# *Classic* dropout (Srivastava et al. 2014) trains with $h \cdot m$ (no rescaling); the expected
# training activation is then $(1-p)\,h$, so at test time every unit is multiplied by the **keep**
# probability $1-p$. *Inverted* dropout (what every framework does today, and `lessonlib.layers.dropout`)
# rescales by $1/(1-p)$ during training and leaves the test-time network alone. Both make the test-time
# activation equal the training expectation; inverted dropout keeps inference code free of $p$.
#
# > **Myth:** "At test time multiply by a scaling factor, usually the inverse of the drop rate" (the
# > 2024 study notes). **Fact:** classic dropout scales by the keep probability $1-p$ at test time; inverted dropout
# > scales by $1/(1-p)$ at training time. Scaling by $1/p$ makes test activations $1/(p(1-p))$ times too
# > large — computed below for $p = 0.2$.

# %%
h = jnp.full((200_000,), 2.0, jnp.float32)
p_c = 0.2
key_classic, key_inverted = jax.random.split(jax.random.key(3))  # one key per draw
m = jax.random.uniform(key_classic, h.shape) >= p_c  # keep with probability 1 - p
classic_train = float(jnp.mean(h * m))
inverted_train = float(jnp.mean(layers.dropout(h, p_c, key=key_inverted)))
print(f"classic : E[train] ~ {classic_train:.3f}   test (1-p)*h = {(1 - p_c) * 2.0:.3f}")
print(f"inverted: E[train] ~ {inverted_train:.3f}   test h       = {2.0:.3f}")
print(
    f"the notes' h/p = {2.0 / p_c:.3f}, {2.0 / p_c / classic_train:.2f}x the training mean "
    f"(1/(p(1-p)) = {1 / (p_c * (1 - p_c)):.2f})"
)
assert abs(classic_train - (1 - p_c) * 2.0) < 0.01 and abs(inverted_train - 2.0) < 0.01

# %% [markdown]
# ## Spot the bug: the JAX book chapter's dropout
#
# The JAX book chapter (a Chinese translation of chapter 6 of a book on deep learning with JAX)
# writes dropout like this:
#
# ```python
# def dropout_layer(x, dropout_prob, is_training):
#     if is_training:
#         mask = jax.random.bernoulli(jax.random.PRNGKey(0), dropout_prob, x.shape)
#         return x * mask / (1 - dropout_prob)
#     return x
# ```
#
# It runs without an error. Measure it before reading on.


# %%
def book_dropout_layer(x, dropout_prob, is_training):
    """The JAX book chapter's dropout, copied unchanged (two bugs)."""
    if is_training:
        mask = jax.random.bernoulli(jax.random.PRNGKey(0), dropout_prob, x.shape)
        return x * mask / (1 - dropout_prob)
    return x


ones = jnp.ones((100_000,), jnp.float32)
p_s = 0.3
step1, step2 = book_dropout_layer(ones, p_s, True), book_dropout_layer(ones, p_s, True)
print(
    f"mean of the book's dropout(1) = {float(step1.mean()):.4f}   "
    f"p/(1-p) = {p_s / (1 - p_s):.4f}   (should be 1)"
)
print("fraction of units KEPT =", float((step1 != 0).mean()), " (should be 1-p =", 1 - p_s, ")")
print("same mask at every step:", bool(jnp.array_equal(step1, step2)))

# %% [markdown]
# Two bugs:
# 1. `jax.random.bernoulli(key, q, shape)` returns True with probability $q$ — it **keeps** units with
#    probability `dropout_prob`, so $E[x'] = \frac{p}{1-p}\,x$ (0.43 x for $p = 0.3$, printed above).
# 2. `PRNGKey(0)` is a fixed key: the same units are dropped at every step, so the network simply
#    learns to live without them — no noise, no ensemble. Derive a fresh key per step:
#    `jax.random.fold_in(key, step)` (this is what `lessonlib.train.fit` does for you).
#
# > **Myth:** "JAX's `jax.nn.dropout` makes dropout seamless" (the JAX book chapter). **Fact:** there is no
# > `jax.nn.dropout` (nor `jax.nn.batch_norm`): JAX is a numerics library; layers live in Flax,
# > Haiku, Equinox — or in eight lines of your own, as below.

# %%
# NBVAL_CHECK_OUTPUT
print(
    "jax.nn has dropout:",
    hasattr(jax.nn, "dropout"),
    "| batch_norm:",
    hasattr(jax.nn, "batch_norm"),
)
# OUTPUT: jax.nn has dropout: False | batch_norm: False

# %% [markdown]
# ### Exercise 1 (2 points): fix the book's dropout
#
# Write `fixed_dropout(x, dropout_prob, is_training, *, key)` with the book's structure
# (`jax.random.bernoulli`, then `x * mask / (1 - dropout_prob)`) and change only what is wrong.


# %% [solution] id=ch02-fixed-dropout
def fixed_dropout(x, dropout_prob, is_training, *, key):
    ### BEGIN SOLUTION
    if is_training:
        mask = jax.random.bernoulli(key, 1 - dropout_prob, x.shape)
        return x * mask / (1 - dropout_prob)
    return x
    ### END SOLUTION


# %% [tests] id=ch02-test-fixed-dropout points=2
check("02.fixed_dropout", fixed_dropout)
### BEGIN HIDDEN TESTS
check("02.fixed_dropout", fixed_dropout, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (3 points): implement dropout
#
# `dropout(x, rate, *, key=None, train=True)`: inverted dropout as derived above. Return `x` itself
# when `train=False` or `rate == 0`; raise `ValueError` naming the rate when it lies outside
# $[0, 1)$, and when `train=True` but no key is given (a silent default key is the book's bug 2).
# The checks are statistical: mean, fraction of zeros, kept values, and that two keys give two masks.


# %% [solution] id=ch02-dropout
def dropout(x, rate, *, key=None, train=True):
    ### BEGIN SOLUTION
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must lie in [0, 1), got {rate!r}")
    if not train or rate == 0:
        return x
    if key is None:
        raise ValueError("dropout needs key=... when train=True")
    keep = jax.random.uniform(key, x.shape) >= rate
    return jnp.where(keep, x / (1 - rate), 0.0)
    ### END SOLUTION


# %% [tests] id=ch02-test-dropout points=3
check("02.dropout", dropout)
### BEGIN HIDDEN TESTS
check("02.dropout", dropout, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## Where dropout goes, and train vs eval
#
# `lessonlib.models.mlp(sizes, dropout=True)` applies dropout after every hidden activation — never to
# the logits. Training (`train=True`) draws a mask from the per-step key; evaluation (`train=False`)
# is the identity. `lessonlib.train.fit` derives the key of step $s$ in epoch $e$ as
# `fold_in(fold_in(key, e), s + 1)`, and the MLP folds in the layer index, so no mask repeats.
#
# > **Myth:** "Dropout is only used in fully connected layers" (the notes on *Dive into Deep
# > Learning*, in their Q&A). **Fact:** it is most
# > common there, but convolutional networks use *spatial dropout* (Tompson et al. 2015): one mask
# > value per channel, broadcast over positions, because neighbouring positions are so correlated that
# > dropping single pixels hardly removes information. A (batch, 1, channels) mask does it:

# %%
feature_maps = jnp.ones((1, 6, 8), jnp.float32)  # (batch, length, channels)
channel_mask = layers.dropout(jnp.ones((1, 1, 8), jnp.float32), 0.5, key=jax.random.key(4))
spatial = feature_maps * channel_mask
print("channel kept (value 2 = 1/(1-p)) or dropped (0), same along the length axis:")
print(np.asarray(spatial[0]))
assert bool(jnp.all(spatial.std(axis=1) == 0))

# %% [markdown]
# ## The gap dropout closes: MLP 40-256-256-10 on MNIST-1D
#
# MNIST-1D (Greydanus 2020) is generated offline: 4,000 training and 1,000 test signals of length 40,
# 10 classes. The setting: SGD with learning rate 0.1, batch 50, 200 epochs, He initialization
# (`init` key 0), shuffling and dropout masks from key 1. Both runs (p = 0 and p = 0.5) are one
# `train.sweep` call: one compiled, vmapped program. This training takes longer than the rest of
# the chapter, so its result is stored on disk the first time and loaded afterwards; the cell
# prints how long the training took when it was computed.

# %%
ds = data.mnist1d()
CACHE_MODULES = [data, layers, models, train, cache]


def sweep_runs(settings):
    """Train settings["sizes"] for every p in settings["p"] in one train.sweep; plain arrays out."""
    model = models.mlp(settings["sizes"], dropout=True)
    params, _ = model.init(jax.random.key(settings["init_seed"]))
    start = time.perf_counter()
    run = train.sweep(
        model,
        params,
        ds,
        key=jax.random.key(settings["train_seed"]),
        hp={"lr": settings["lr"], "dropout": jnp.asarray(settings["p"], jnp.float32)},
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
    )
    seconds = time.perf_counter() - start
    leaves = {f"param_{i}": np.asarray(v) for i, v in enumerate(jax.tree.leaves(run.params))}
    return {
        **{k: np.asarray(v) for k, v in run.history.items()},
        **leaves,
        "seconds": np.float64(seconds),
    }


HEADLINE = {
    "data": "mnist1d-42",
    "sizes": [40, 256, 256, 10],
    "lr": 0.1,
    "batch_size": 50,
    "epochs": 200,
    "p": [0.0, 0.5],
    "init_seed": 0,
    "train_seed": 1,
}
head, hit = cache.cached(
    "ch02-headline", HEADLINE, lambda: sweep_runs(HEADLINE), modules=CACHE_MODULES
)
print(
    f"{'loaded from the cache' if hit else 'computed'}: 2 runs x 200 epochs took {float(head['seconds']):.1f} s "
    f"when computed (device: {jax.devices()[0].platform})"
)
for i, p in enumerate(HEADLINE["p"]):
    print(
        f"p = {p}: train accuracy {head['train_acc'][i, -1]:.3f}, test accuracy {head['test_acc'][i, -1]:.3f}"
    )
gap = head["test_acc"][1, -1] - head["test_acc"][0, -1]
print(f"dropout p = 0.5 raises the final test accuracy by {gap:.3f}")

# %%
fig, axes = viz.figure(2)
epochs_axis = np.arange(1, HEADLINE["epochs"] + 1)
for ax, i, p in zip(axes, (0, 1), HEADLINE["p"], strict=True):
    ax.plot(epochs_axis, head["train_acc"][i], color=viz.COLORS["train"], label="train")
    ax.plot(epochs_axis, head["test_acc"][i], color=viz.COLORS["test"], label="test")
    ax.set(title=f"p = {p}", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax.legend(loc="lower right")
viz.show(fig)

# %% [markdown]
# **What to notice.** Without dropout the training accuracy reaches 1.0 within a few dozen epochs and
# the test accuracy stalls: the network has memorized the training set (the numbers are printed above).
# With $p = 0.5$ training accuracy rises more slowly and stays below 1, and the test accuracy keeps
# climbing past the p = 0 plateau. The training curves are measured with dropout **off** (evaluation
# mode) — see the sharp bits for why that matters.

# %%
assert head["train_acc"][0, -1] > 0.99, "p = 0 should memorize the training set"
assert gap > 0.05, "dropout should close a visible part of the gap"

# %% [markdown]
# ### The d2l setting on Fashion-MNIST
#
# *Dive into Deep Learning* (section 5.6) trains 784-256-256-10 with dropout 0.2 after the first and
# 0.5 after the second hidden layer, SGD lr 0.5, batch 256, 10 epochs. lessonlib never downloads data,
# so this cell runs only when the four Fashion-MNIST IDX files are already on disk
# (`data.load_fashion_mnist()` says where). `models.mlp` uses one rate for all hidden layers; the cell
# compares p = 0, 0.2 and 0.5.

# %%
try:
    fashion = data.load_fashion_mnist()
except FileNotFoundError as err:
    print("Skipping the Fashion-MNIST run: the files are not here.\n", err)
else:
    fm_model = models.mlp([784, 256, 256, 10], dropout=True)
    fm_params, _ = fm_model.init(jax.random.key(0))
    fm = train.sweep(
        fm_model,
        fm_params,
        fashion,
        key=jax.random.key(1),
        hp={"lr": 0.5, "dropout": jnp.array([0.0, 0.2, 0.5])},
        epochs=10,
        batch_size=256,
    )
    for p, tr, te in zip(
        (0.0, 0.2, 0.5), fm.history["train_acc"][:, -1], fm.history["test_acc"][:, -1], strict=True
    ):
        print(f"Fashion-MNIST p = {p}: train {tr:.3f}, test {te:.3f}")

# %% [markdown]
# ## A slider over p: ten runs in one `train.sweep`
#
# Ten values $p = 0, 0.1, \dots, 0.9$ train side by side in one `train.sweep` call: one compiled,
# vmapped XLA computation. To keep the chapter short this sweep uses a smaller network,
# 40-128-128-10, and 100 epochs (same data, learning rate and batch size); it is stored like the
# headline runs.
#
# Which $p$ is best? Chapter 01's rule: choose on a **validation** split, then report the test
# score once. The 1,000 held-out signals are split in two: the first 500 are the validation
# split, the last 500 the test split; both are scored from the ten trained networks.

# %%
SWEEP = {
    "data": "mnist1d-42",
    "sizes": [40, 128, 128, 10],
    "lr": 0.1,
    "batch_size": 50,
    "epochs": 100,
    "p": [round(0.1 * i, 1) for i in range(10)],
    "init_seed": 0,
    "train_seed": 1,
}
swp, hit = cache.cached("ch02-sweep", SWEEP, lambda: sweep_runs(SWEEP), modules=CACHE_MODULES)
print(
    f"{'loaded from the cache' if hit else 'computed'}: the vmapped sweep of {len(SWEEP['p'])} runs took "
    f"{float(swp['seconds']):.1f} s on {jax.devices()[0].platform} when computed"
)
sweep_net = models.mlp(SWEEP["sizes"], dropout=True)
sweep_def = jax.tree.structure(sweep_net.init(jax.random.key(0))[0])
sweep_params = jax.tree.unflatten(  # the ten trained networks, stacked along axis 0
    sweep_def, [jnp.asarray(swp[f"param_{i}"]) for i in range(sweep_def.num_leaves)]
)


@jax.jit
def split_accuracy(params, x, y):
    """Evaluation-mode accuracy of each of the stacked networks on (x, y)."""

    def one(p):
        logits, _ = sweep_net.apply(p, {}, x, key=None, train=False, hp={"dropout": 0.0})
        return train.accuracy(logits, y)

    return jax.vmap(one)(params)


n_val = 500
val_acc = np.asarray(split_accuracy(sweep_params, ds.x_test[:n_val], ds.y_test[:n_val]))
test_acc = np.asarray(split_accuracy(sweep_params, ds.x_test[n_val:], ds.y_test[n_val:]))
best = int(np.argmax(val_acc))
print(
    "validation accuracy by p:", dict(zip(SWEEP["p"], np.round(val_acc, 3).tolist(), strict=True))
)
print(
    f"validation picks p = {SWEEP['p'][best]}: test accuracy {test_acc[best]:.3f} "
    f"(p = 0: {test_acc[0]:.3f}; the best test accuracy of any p, which we may not use to choose: "
    f"{test_acc.max():.3f})"
)
assert test_acc[best] > test_acc[0]  # the chosen rate beats no dropout on the untouched split

# %%
panel_sweep = demo.sweep_panel(swp, SWEEP["p"], p=0.5)  # indexes the stored runs: no training
panel_sweep

# %% [markdown]
# **What to notice.** Small rates already close most of the gap; past the best value the network
# underfits — both train and test accuracy fall, and at p = 0.9 it barely learns in 100 epochs.
# The dropout rate is a hyperparameter like $\lambda$: the $p$ printed above was chosen on the
# validation half and scored on the test half, which played no part in the choice.
#
# ## Live retraining on a small problem
#
# Each slider move below retrains from scratch: two moons whose points are jittered by Gaussian
# noise of standard deviation 0.3 (so the two classes overlap; no label is flipped), 60 training points,
# MLP 2-32-32-2, 100 full-batch SGD steps (lr 0.5). The whole run is one compiled call and `p` is a
# traced value, so moving the slider never recompiles. Look at the decision boundary: without dropout
# it bends around single noisy points; with dropout it is smoother.

# %%
moons = data.toy_2d("moons", 200, seed=0, noise=0.3, train_share=0.3)
live_model = models.mlp([2, 32, 32, 2], dropout=True)
live_params, _ = live_model.init(jax.random.key(0))
LIVE = {"epochs": 100, "batch_size": 60, "lr": 0.5}


def fit_live(p):
    """One training run at dropout rate p: traced, so a new p reuses the compiled run."""
    return train.fit(
        live_model,
        live_params,
        moons,
        key=jax.random.key(1),
        hp={"lr": LIVE["lr"], "dropout": p},
        epochs=LIVE["epochs"],
        batch_size=LIVE["batch_size"],
    )


panel_live = demo.live_panel(fit_live, moons, live_model, epochs=LIVE["epochs"], p=0.0)
panel_live

# %%
live_ms = [panel_live.update(p=p) for p in (0.1, 0.3, 0.5, 0.2, 0.0)]
print(
    f"live retrain + redraw: median {np.median(live_ms):.0f} ms over {len(live_ms)} moves, "
    f"compiled versions of the training run: {train.compile_count()}"
)
live = {p: fit_live(p).history for p in (0.0, 0.3, 0.5, 0.7)}
for p, h in live.items():
    print(
        f"p = {p}: train loss {h['train_loss'][-1]:.3f}, test loss {h['test_loss'][-1]:.3f}, "
        f"accuracy train {h['train_acc'][-1]:.3f} / test {h['test_acc'][-1]:.3f}"
    )
train_losses = [h["train_loss"][-1] for h in live.values()]
test_losses = [h["test_loss"][-1] for h in live.values()]
assert np.all(np.diff(train_losses) > 0) and np.all(np.diff(test_losses) > 0)
assert live[0.0]["train_loss"][-1] > 0.05  # p = 0 has not memorized the 60 points
assert live[0.7]["test_acc"][-1] < live[0.0]["test_acc"][-1]

# %% [markdown]
# **What to notice.** Here the test accuracy is highest *without* dropout and lower with it —
# and the training accuracy falls too, while both losses rise steadily with $p$ (printed above).
# In 100 full-batch steps the network without
# dropout has not memorized its 60 points (its training loss is still well above 0), so there is
# little overfitting for dropout to remove, and the noise it adds only slows fitting: with every
# $p$ the network underfits more. That is not "dropout hurts": dropout pays when a network
# overfits, as the 256-wide network trained for 200 epochs on MNIST-1D did above. The boundary
# still shows dropout's smoothing — compare p = 0 and p = 0.5.

# %% [markdown]
# ## MC dropout: dropout at prediction time
#
# Gal & Ghahramani (2016) read a network trained with dropout as an approximate Bayesian model: keep
# dropout **on** at prediction time, run $T$ stochastic passes and average the probabilities,
# $p(y\mid x) \approx \frac1T \sum_t \operatorname{softmax}(f(x; m_t))$. Pass $t$ uses the key
# `fold_in(key, t)`. We take the p = 0.5 network of the headline run and do $T = 100$ passes over the
# 1,000 test signals.

# %%
net = models.mlp(HEADLINE["sizes"], dropout=True)
treedef = jax.tree.structure(net.init(jax.random.key(0))[0])
n_leaves = treedef.num_leaves
params_05 = jax.tree.unflatten(
    treedef, [jnp.asarray(head[f"param_{i}"][1]) for i in range(n_leaves)]
)
start = time.perf_counter()
probs = demo.mc_dropout_probs(
    net, params_05, ds.x_test, key=jax.random.key(7), hp={"dropout": 0.5}, passes=100
)
probs.block_until_ready()
print(
    f"100 stochastic passes over {ds.x_test.shape[0]} signals: {time.perf_counter() - start:.2f} s"
)
eval_logits, _ = net.apply(params_05, {}, ds.x_test, key=None, train=False, hp={"dropout": 0.5})
eval_acc = float(train.accuracy(eval_logits, ds.y_test))
mc_curve = demo.running_mean_accuracy(probs, ds.y_test)
print(f"test accuracy, dropout off (weight scaling): {eval_acc:.3f}")
print(
    f"test accuracy, MC dropout: 1 pass {mc_curve[0]:.3f}, 10 passes {mc_curve[9]:.3f}, 100 passes {mc_curve[-1]:.3f}"
)
mc_vs_eval = "below" if mc_curve[-1] < eval_acc else "at or above"
print(f"MC dropout with 100 passes is {mc_vs_eval} the evaluation-mode accuracy here")
assert mc_curve[-1] < eval_acc  # the text below says "less accurate"

# %%
mean_probs = np.asarray(probs.mean(axis=0))
entropy = demo.predictive_entropy(mean_probs)
right = mean_probs.argmax(-1) == np.asarray(ds.y_test)
# the baseline: the deterministic network's own softmax entropy, and its own right/wrong split
det_probs = np.asarray(jax.nn.softmax(eval_logits, axis=-1))
det_entropy = demo.predictive_entropy(det_probs)
det_right = det_probs.argmax(-1) == np.asarray(ds.y_test)
fig, (ax1, ax2) = viz.figure(2)
ax1.plot(
    np.arange(1, 101), mc_curve, color=viz.COLORS["test"], label="MC dropout, mean of T passes"
)
ax1.axhline(eval_acc, color="k", ls="--", label="dropout off")
ax1.set(
    xscale="log", xlabel="passes T", ylabel="test accuracy", title="accuracy vs number of passes"
)
ax1.legend(loc="lower right")
bins = np.linspace(0, np.log(10), 30)
ax2.hist(entropy[right], bins=bins, alpha=0.6, density=True, label=f"MC, right ({right.sum()})")
ax2.hist(entropy[~right], bins=bins, alpha=0.6, density=True, label=f"MC, wrong ({(~right).sum()})")
for mask, color, what in ((det_right, "C0", "right"), (~det_right, "C1", "wrong")):
    ax2.hist(
        det_entropy[mask],
        bins=bins,
        density=True,
        histtype="step",
        ls="--",
        color=color,
        label=f"dropout off, {what}",
    )
ax2.set(
    xlabel="predictive entropy (nats)", ylabel="density", title="entropy of the mean prediction"
)
ax2.legend(fontsize=7)
viz.show(fig)


def auroc(score_wrong, score_right):
    """P(a random wrong prediction has a higher entropy than a random right one)."""
    diff = score_wrong[:, None] - score_right[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


mc_sep, det_sep = (
    auroc(entropy[~right], entropy[right]),
    auroc(det_entropy[~det_right], det_entropy[det_right]),
)
print(
    f"mean entropy, MC dropout: right {entropy[right].mean():.3f} nats, wrong {entropy[~right].mean():.3f} nats"
)
print(
    f"mean entropy, dropout off: right {det_entropy[det_right].mean():.3f} nats, "
    f"wrong {det_entropy[~det_right].mean():.3f} nats"
)
print(
    f"P(entropy of a wrong prediction > that of a right one): MC dropout {mc_sep:.3f}, "
    f"dropout off {det_sep:.3f}"
)
assert entropy[~right].mean() > entropy[right].mean()
assert det_entropy[~det_right].mean() > det_entropy[det_right].mean()
assert mc_sep < det_sep + 0.02  # the text: MC dropout ranks no better than the baseline here

# %% [markdown]
# **What to notice.** One stochastic pass is clearly worse than the deterministic network; averaging
# more passes closes most of that gap, but not all of it: on this problem MC dropout with 100
# passes is *less* accurate than evaluation mode (both printed above; the sentence after them is
# computed). The deterministic network ("weight scaling") is itself a cheap approximation of the
# same ensemble average. What the right plot shows is the entropy of the *averaged* prediction:
# wrong predictions have clearly higher entropy than right ones. The dashed outlines are the
# baseline that costs nothing extra — the deterministic network's own softmax entropy — and it
# separates wrong from right predictions too; the last printed line compares how well each does
# (the probability that a wrong prediction is more uncertain than a right one). On this problem
# MC dropout does no better than that free baseline (asserted in the cell), so here its T forward
# passes buy neither accuracy nor a better uncertainty ranking; it is worth its cost only where it
# beats the baseline — measure before you pay for it.
#
# **The Géron notes' point: measure training accuracy with dropout off.** During training, the accuracy a
# framework reports per batch comes from thinned networks. Evaluated with dropout on, the training
# set looks harder than it is:


# %%
def accuracy_with_dropout(params, x, y, *, train_mode, key):
    logits, _ = net.apply(params, {}, x, key=key, train=train_mode, hp={"dropout": 0.5})
    return float(train.accuracy(logits, y))


on = accuracy_with_dropout(
    params_05, ds.x_train, ds.y_train, train_mode=True, key=jax.random.key(8)
)
off = accuracy_with_dropout(params_05, ds.x_train, ds.y_train, train_mode=False, key=None)
print(f"training accuracy with dropout on: {on:.3f}, off (the real one): {off:.3f}")
assert off > on

# %% [markdown]
# ### Exercise 3 (2 points): MC-dropout prediction
#
# `mc_predict(forward, x, *, key, passes)` gets `forward(x, key) -> logits` (dropout on inside) and
# returns the average of `softmax(forward(x, jax.random.fold_in(key, t)))` over
# `t = 0 .. passes-1`, shape (n, classes). Raise `ValueError` when `passes < 1`.


# %% [solution] id=ch02-mc-predict
def mc_predict(forward, x, *, key, passes):
    ### BEGIN SOLUTION
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    probs = [jax.nn.softmax(forward(x, jax.random.fold_in(key, t)), axis=-1) for t in range(passes)]
    return jnp.mean(jnp.stack(probs), axis=0)
    ### END SOLUTION


# %% [tests] id=ch02-test-mc-predict points=2
check("02.mc_predict", mc_predict)
### BEGIN HIDDEN TESTS
check("02.mc_predict", mc_predict, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (1 point): choose p as chapter 01 taught
#
# `pick_p(ps, val_acc, test_acc)` gets the rates and each rate's validation and test accuracy (as
# the sweep above computed them) and returns the rate to use: the best on validation, the first
# (smallest p) on a tie. The test accuracies are only reported, never used to choose. Raise
# `ValueError` when the three lengths differ.


# %% [solution] id=ch02-pick-p
def pick_p(ps, val_acc, test_acc):
    ### BEGIN SOLUTION
    if not (len(ps) == len(val_acc) == len(test_acc)) or len(ps) == 0:
        raise ValueError(
            f"one entry per rate, got lengths {len(ps)}, {len(val_acc)}, {len(test_acc)}"
        )
    return float(ps[int(np.argmax(val_acc))])
    ### END SOLUTION


# %% [tests] id=ch02-test-pick-p points=1
check("02.pick_p", pick_p)
### BEGIN HIDDEN TESTS
check("02.pick_p", pick_p, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## Sharp bits
#
# - **A fresh key every step.** `jax.random` is deterministic: the same key gives the same mask.
#   Derive keys with `jax.random.fold_in(key, step)` (or `split`); never use a fixed `PRNGKey(0)` or a
#   key as a default argument (evaluated once, so every call shares it).
# - **`bernoulli(key, q)` keeps with probability q.** For a drop rate p, the keep probability is 1 - p.
# - **Train vs eval.** Evaluate (and report training accuracy) with `train=False`; with dropout on
#   the training set looks harder than it is (the Géron notes' point, measured above).
# - **Classic vs inverted.** Inverted dropout scales by 1/(1-p) during training and does nothing at
#   test time; never scale by 1/p (the 2024 study notes' myth).
# - **Where.** After hidden layers, not on the logits; for convolutions prefer spatial (channel-wise)
#   dropout; with batch norm, MC dropout must keep BN in evaluation mode.
# - **Rate validation under jit.** `layers.dropout` raises `ValueError` for a concrete rate outside
#   [0, 1), but a traced rate cannot be checked inside a compiled function — validate sweeps first.
# - **MC dropout costs T forward passes** and averages probabilities, not logits.
#
# ## References
#
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov. *Dropout: A Simple Way to
#   Prevent Neural Networks from Overfitting.* JMLR 15 (2014).
# - Y. Gal, Z. Ghahramani. *Dropout as a Bayesian Approximation: Representing Model Uncertainty in
#   Deep Learning.* ICML 2016.
# - C. Bishop. *Training with Noise is Equivalent to Tikhonov Regularization.* Neural Computation 7 (1995).
# - J. Tompson, R. Goroshin, A. Jain, Y. LeCun, C. Bregler. *Efficient Object Localization Using
#   Convolutional Networks* (spatial dropout). CVPR 2015.
# - S. Greydanus. *Scaling down Deep Learning* (MNIST-1D). 2020.
# - A. Zhang, Z. Lipton, M. Li, A. Smola. *Dive into Deep Learning*, section "Dropout".
# - The course's sources (the JAX book chapter, the 2024 study notes, the notes on *Dive into Deep
#   Learning*, the Géron notes) and their mistakes: [sources.md](../sources.md).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | dropout | 丢弃法 / 暂退法 / 随机失活 | zero each hidden unit with probability p during training |
# | drop rate p | 丢弃率 | probability that a unit is zeroed |
# | keep probability | 保留概率 | 1 - p |
# | inverted dropout | 倒置丢弃法 | scale survivors by 1/(1-p) at training time |
# | mask | 掩码 | the random 0/1 pattern of kept units |
# | co-adaptation | 共适应 | units relying on specific partners being present |
# | ensemble | 集成 | averaging the predictions of many models |
# | noise injection | 噪声注入 | adding random perturbations while training |
# | spatial dropout | 空间丢弃法 | dropping whole channels of a feature map |
# | Monte Carlo (MC) dropout | 蒙特卡洛丢弃法 | dropout kept on at prediction, T passes averaged |
# | predictive entropy | 预测熵 | $-\sum_c p_c \log p_c$ of the averaged prediction |
# | overfitting | 过拟合 | low training error, high test error |
# | evaluation mode | 评估模式 | the network without dropout (train=False) |
