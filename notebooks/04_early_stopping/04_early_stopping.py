# %% [markdown]
# # 04 · Early stopping, noise, augmentation, max-norm
#
# Four regularizers that the course's sources give as recipes: stop training when the validation
# loss stops improving, add noise to the inputs or hidden units, train on transformed copies of the
# data, and cap the norm of every unit's weights. This chapter shows *why* the first two are an L2
# penalty in disguise (derived, then checked numerically), and *measures* what each one buys on
# MNIST-1D (Greydanus 2020).
#
# **Sources.** The JAX book chapter gives an `early_stopping` function (it stops but keeps the last
# weights); Xiao Han's blog post on regularization augments images with Keras's
# `ImageDataGenerator`; the notes on Géron's chapter 11 use Keras's `max_norm` constraint.
# [The course's sources](../sources.md) says what each document is.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import augment, cache, data, layers, models, regularization, stopping, train, viz
from lessonlib.demos import ch04_early_stopping as demo
from lessonlib.exercises import check

T0 = time.perf_counter()

# %% [markdown]
# ## Overfitting over time
#
# A 40-128-128-10 MLP trained on 1,000 MNIST-1D signals memorizes them. Three splits: **train**
# (1,000 signals, the gradient steps), **validation** (500 signals held out of the training set by
# `data.with_validation`: what we choose the epoch on) and **test** (1,000 signals, scored once at
# the end). Choosing the epoch with the test split would make its score optimistic — chapter 01's
# point, and why `train.fit` warns if early stopping monitors a `test_*` entry.
#
# The same sweep also adds Gaussian noise of standard deviation $\sigma_h$ to the hidden units
# (`layers.gaussian_noise`, section "Noise on hidden units" below); row 0 has $\sigma_h = 0$. SGD,
# learning rate 0.1, batch 50, 120 epochs; cached like chapter 02's sweeps.

# %%
full = data.mnist1d()
small = data.with_validation(
    data.Dataset(full.x_train[:1500], full.y_train[:1500], full.x_test, full.y_test), 500, seed=0
)
print("train", small.x_train.shape, "validation", small.x_val.shape, "test", small.x_test.shape)
# the stored results depend on these (the panels' code is left out: editing it recomputes nothing)
MODULES = [data, layers, models, train, stopping, augment, regularization, cache]
MODULES += [demo.noisy_mlp, demo.unit_norms]


def history_of(run, seconds):
    return {**{k: np.asarray(v) for k, v in run.history.items()}, "seconds": np.float64(seconds)}


NOISE = {"data": "mnist1d-42[:1500]-val500", "sizes": [40, 128, 128, 10], "lr": 0.1,
         "batch_size": 50, "epochs": 120, "noise": [0.0, 0.5, 1.0, 1.5], "seeds": [0, 1]}  # fmt: skip


def noise_sweep():
    model = demo.noisy_mlp(NOISE["sizes"])
    params, _ = model.init(jax.random.key(NOISE["seeds"][0]))
    start = time.perf_counter()
    run = train.sweep(
        model,
        params,
        small,
        key=jax.random.key(NOISE["seeds"][1]),
        hp={"lr": NOISE["lr"], "noise": jnp.asarray(NOISE["noise"], jnp.float32)},
        epochs=NOISE["epochs"],
        batch_size=NOISE["batch_size"],
    )
    return history_of(run, time.perf_counter() - start)


noise_h, hit = cache.cached("ch04-noise", NOISE, noise_sweep, modules=MODULES)
print(f"{'loaded from the cache' if hit else 'computed'} ({float(noise_h['seconds']):.1f} s)")
h0 = {k: v[0] for k, v in noise_h.items() if k != "seconds"}  # the run without noise
turn = int(np.argmin(h0["val_loss"]))
print(
    f"validation loss: {h0['val_loss'][0]:.3f} after epoch 0, lowest {h0['val_loss'][turn]:.3f} "
    f"after epoch {turn}, {h0['val_loss'][-1]:.3f} after the last; "
    f"train accuracy at the end {h0['train_acc'][-1]:.3f}"
)
print(
    f"validation accuracy: {h0['val_acc'][turn]:.3f} at that epoch, {h0['val_acc'][-1]:.3f} at the end"
)
assert h0["val_loss"][-1] > 1.2 * h0["val_loss"][turn], "the validation curve should turn up"
assert h0["train_acc"][-1] > 0.98
assert h0["val_acc"][-1] > h0["val_acc"][turn] - 0.02, "accuracy does not fall with the loss"

# %%
fig, (ax_l, ax_a) = viz.figure(2)
ep = np.arange(NOISE["epochs"])
ax_l.plot(ep, h0["train_loss"], color=viz.COLORS["train"], label="train")
ax_l.plot(ep, h0["val_loss"], color=viz.COLORS["val"], label="validation")
ax_l.axvline(turn, color="k", ls=":", lw=1)
ax_l.set(xlabel="epoch", ylabel="loss", yscale="log")
ax_l.legend()
ax_a.plot(ep, h0["train_acc"], color=viz.COLORS["train"], label="train")
ax_a.plot(ep, h0["val_acc"], color=viz.COLORS["val"], label="validation")
ax_a.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
ax_a.legend(loc="lower right")
viz.show(fig)

# %% [markdown]
# **What to notice.** The training loss keeps falling; the validation loss falls, bottoms out (the
# dotted line) and climbs again while the training accuracy goes to 1: from there on the network
# learns the training set's noise. The validation *accuracy* does not fall with it (printed above):
# the loss grows because the network becomes ever more confident, also on the signals it gets wrong.
# Loss and accuracy can disagree about when to stop.
#
# ## Early stopping: the JAX book chapter's version and Keras's
#
# The JAX book chapter writes (copied below, unchanged):

# %%
print(demo.source1_early_stopping.__doc__.splitlines()[0])
source1 = (
    demo.source1_early_stopping
)  # best_loss, counter, stop = source1(val_loss, patience, best_loss, counter)

# %% [markdown]
# ```python
# def early_stopping(validation_loss, patience, best_loss, counter):
#     if validation_loss < best_loss:
#         best_loss = validation_loss
#         counter = 0
#     else:
#         counter += 1
#     return best_loss, counter, counter >= patience
# ```
#
# It says *when* to stop, and nothing else: the loop that calls it stops with the weights of the last
# epoch — `patience` epochs past the best one. Keras 3's `EarlyStopping` callback has the same
# counter (its `wait`) plus `min_delta` (an improvement must beat the best by *more* than it),
# `baseline`, `start_from_epoch` and `restore_best_weights`. `train.early_stopping` is that rule,
# jittable: `(stop_epoch, best_epoch) = train.early_stopping(values, patience=..., min_delta=...)`.
# On this history the two stop at the same epoch for every patience from 1 to 30:

# %%
val = h0["val_loss"]
patiences = np.arange(1, 31)
keras = [train.early_stopping(val, patience=int(p)) for p in patiences]
stops = np.array([int(s) for s, _ in keras])
bests = np.array([int(b) for _, b in keras])
book = np.array([demo.source1_stop_epoch(val, int(p)) for p in patiences])
assert (book == stops).all()
last = np.where(stops >= 0, stops, NOISE["epochs"] - 1)
acc_last, acc_best = h0["test_acc"][last], h0["test_acc"][bests]
loss_last, loss_best = h0["test_loss"][last], h0["test_loss"][bests]
for p in (3, 10, 20):
    i = p - 1
    print(
        f"patience {p:2d}: stops after epoch {last[i]:3d}; test accuracy with the last weights "
        f"{acc_last[i]:.3f}, with the best epoch's ({bests[i]}) {acc_best[i]:.3f}; test loss "
        f"{loss_last[i]:.3f} vs {loss_best[i]:.3f}"
    )
worth_loss = float(np.mean(loss_last - loss_best))
worth_acc = float(np.mean(acc_best - acc_last))
print(
    f"over patience 1..30, restoring the best weights lowers the test loss by {worth_loss:.3f} "
    f"on average and changes the test accuracy by {worth_acc:+.4f}"
)
assert worth_loss > 0
acc_rule = [train.early_stopping(h0["val_acc"], patience=int(p), mode="max") for p in patiences]
acc_stop = np.array([int(st) if int(st) >= 0 else NOISE["epochs"] - 1 for st, _ in acc_rule])
acc_restored = h0["test_acc"][np.array([int(b) for _, b in acc_rule])]
worth_acc_mon = float(np.mean(acc_restored - h0["test_acc"][acc_stop]))
print(
    f"monitoring val_acc (mode 'max') instead: restoring changes the test accuracy by "
    f"{worth_acc_mon:+.4f} on average, and its restored weights score "
    f"{float(np.mean(acc_restored)):.3f} against {float(np.mean(acc_best)):.3f} for val_loss's"
)

# %% [markdown]
# **What to notice.** Restoring the best epoch's weights always buys a lower test loss here, more so
# the larger the patience (the last weights are `patience` epochs into the climb). The accuracy is
# another matter: the printed averages say whether the weights with the lowest validation *loss*
# also have the best test accuracy — on this run they need not, since the loss keeps rising while
# the accuracy creeps up. Monitor the quantity you will be judged on (`monitor="val_acc"`,
# `mode="max"`). Keras's default is `restore_best_weights=False`: the JAX book chapter's behaviour.
#
# ### Inside the compiled run
#
# `train.fit(..., early_stopping=train.EarlyStopping(monitor="val_loss", patience=10,
# restore_best_weights=True))` applies the same rule after every epoch *inside* the one compiled
# training run: after the stop epoch the parameters stay as they are (the history repeats that
# epoch's row), and the best epoch's parameters come back. `patience` and `min_delta` are traced:
# another value reuses the compiled program. In a `train.sweep` every run stops at its own epoch.

# %%
es_model = demo.noisy_mlp(NOISE["sizes"])
es_params, _ = es_model.init(jax.random.key(0))


def fit_es(patience):
    return train.fit(
        es_model,
        es_params,
        small,
        key=jax.random.key(1),
        hp={"lr": 0.1, "noise": 0.0},
        epochs=NOISE["epochs"],
        batch_size=50,
        early_stopping=train.EarlyStopping(patience=patience, restore_best_weights=True),
    )


ES = {**{k: NOISE[k] for k in ("data", "sizes", "lr", "batch_size", "epochs", "seeds")},
      "patience": [5, 10]}  # fmt: skip


def early_stopped_runs():
    """Two runs stopped inside the compiled run; what they returned, and how many compilations."""
    before, out = train.compile_count(), {}
    for p in ES["patience"]:
        run = fit_es(p)
        logits, _ = es_model.apply(run.params, {}, small.x_test, hp={"noise": 0.0})
        out[f"stop_{p}"], out[f"best_{p}"] = run.stop_epoch, run.best_epoch
        out[f"val_loss_{p}"], out[f"test_acc_{p}"] = (
            run.history["val_loss"],
            run.history["test_acc"],
        )
        out[f"returned_acc_{p}"] = np.mean(np.argmax(np.asarray(logits), -1) == small.y_test)
    return {**out, "compilations": np.int64(train.compile_count() - before)}


es_out, hit = cache.cached("ch04-early-stopped", ES, early_stopped_runs, modules=MODULES)
for p in ES["patience"]:
    stop, best = int(es_out[f"stop_{p}"]), int(es_out[f"best_{p}"])
    acc = float(es_out[f"returned_acc_{p}"])
    print(
        f"patience {p}: stopped after epoch {stop}, restored epoch {best}; "
        f"test accuracy of the returned weights {acc:.3f}"
    )
    rule = train.early_stopping(es_out[f"val_loss_{p}"], patience=p)
    assert (stop, best) == tuple(map(int, rule)), "the engine stops where the rule says"
    assert abs(acc - es_out[f"test_acc_{p}"][best]) < 1e-6, "and returns the best epoch's weights"
    assert (es_out[f"val_loss_{p}"][stop:] == es_out[f"val_loss_{p}"][stop]).all(), "frozen"
print(f"compilations for the two patiences (when computed): {int(es_out['compilations'])}")
assert int(es_out["compilations"]) <= 1

# %% [markdown]
# ### Patience and min_delta, over the stored history
#
# The panel applies `train.early_stopping` to the validation loss of the run above (nothing is
# trained): where it stops, which epoch it restores, and the test accuracy of both. A `min_delta`
# larger than the late, small improvements makes it stop earlier.

# %%
panel_stopping = demo.stopping_panel(h0, patience=10, min_delta=0.0)
panel_stopping

# %% [markdown]
# ## Why early stopping regularizes: it is (almost) an L2 penalty
#
# Take chapter 01's linear regression (20 training points in 200 dimensions) and the loss
# $f(w) = \frac{1}{2n}\lVert Xw - y\rVert^2$. Its Hessian $H = X^\top X / n$ has eigenvalues $s_i$
# and eigenvectors $u_i$; let $w^*$ be the least-squares solution of smallest norm. Gradient descent
# from $w_0 = 0$ with rate $\eta$ is $w_{t+1} - w^* = (I - \eta H)(w_t - w^*)$, so after $\tau$ steps,
# along every eigenvector,
# $$u_i^\top w_\tau = \bigl[1 - (1 - \eta s_i)^\tau\bigr]\, u_i^\top w^* .$$
# The ridge solution $w_\lambda = (H + \lambda I)^{-1} X^\top y / n$ (the minimizer of
# $f(w) + \frac\lambda2\lVert w\rVert^2$) is, in the same basis,
# $$u_i^\top w_\lambda = \frac{s_i}{s_i + \lambda}\, u_i^\top w^* .$$
# Both *filter factors* are close to 1 along directions of large curvature and small along flat ones.
# For $\eta s_i \ll 1$, $(1 - \eta s_i)^\tau \approx e^{-\tau\eta s_i}$; where $\tau\eta s_i \ll 1$ the
# first factor is $\approx \tau\eta s_i$ and the second, where $s_i \ll \lambda$, $\approx s_i/\lambda$:
# they agree when
# $$\lambda \approx \frac{1}{\tau\eta}$$
# (Goodfellow et al. 2016, §7.8; Bishop 1995). Training longer is a weaker penalty. First check the
# filter-factor formula itself against gradient descent run step by step:

# %%
lin = data.d2l_weight_decay_data(seed=0)
X, y = np.asarray(lin.x_train, np.float64), np.asarray(lin.y_train, np.float64)
s, U = np.linalg.eigh(X.T @ X / X.shape[0])
w_star = np.linalg.pinv(X) @ y  # least squares, smallest norm
eta, tau = 0.001, 100
w_gd = demo.gd_weights(X, y, eta=eta, tau=tau)
predicted = U @ (demo.gd_filter(s, eta, tau) * (U.T @ w_star))
print(
    f"|w_gd - filter formula| / |w_gd| = {np.linalg.norm(w_gd - predicted) / np.linalg.norm(w_gd):.2e}"
)
assert np.allclose(w_gd, predicted, rtol=1e-6, atol=1e-9)

# %% [markdown]
# Now the approximation: how close are the weights after $\tau$ steps to ridge at
# $\lambda = 1/(\tau\eta)$, and which $\lambda$ would fit them best?

# %%
lams = np.logspace(-2, 3, 121)


def rel(a, b):
    """|a - b| / |a|"""
    return np.linalg.norm(a - b) / np.linalg.norm(a)


print(
    " eta    tau  1/(tau eta)  |w_gd - ridge|/|w_gd|   best lambda (its distance)  best / (1/(tau eta))"
)
ratios = []
# ridge for every lambda at once, in the eigenbasis: w_lambda = U diag(1 / (s + lambda)) U^T X^T y / n
ridge_path = U @ ((U.T @ (X.T @ y / X.shape[0]))[:, None] / (s[:, None] + lams[None, :]))
assert np.allclose(ridge_path[:, 60], demo.ridge_weights(X, y, lams[60]), atol=1e-8)
for eta_i, tau_i in [(0.001, 100), (0.01, 10), (0.001, 30), (0.0002, 100)]:
    w_i = demo.gd_weights(X, y, eta=eta_i, tau=tau_i)
    lam_i = 1 / (tau_i * eta_i)
    d_all = np.linalg.norm(w_i[:, None] - ridge_path, axis=0) / np.linalg.norm(w_i)
    best = lams[np.argmin(d_all)]
    ratios.append(best / lam_i)
    d_lam = rel(w_i, demo.ridge_weights(X, y, lam_i))
    print(
        f"{eta_i:6g} {tau_i:4d} {lam_i:10.1f}   {d_lam:18.3f}   {best:12.2f} ({d_all.min():.3f})  {best / lam_i:12.2f}"
    )
    assert d_lam < 0.5 * rel(w_i, demo.ridge_weights(X, y, 1e-6)), (
        "closer to ridge at 1/(tau eta) than to no penalty"
    )
print(f"the best lambda is {min(ratios):.2f} to {max(ratios):.2f} times 1/(tau eta)")
assert 0.2 < min(ratios) and max(ratios) < 1.5

# %%
grid = np.logspace(-1, 3, 200)
fig, (ax,) = viz.figure(1, width=5.5)
ax.semilogx(
    grid,
    demo.gd_filter(grid, 0.001, 100),
    color=viz.COLORS["train"],
    label="GD, eta=0.001, tau=100",
)
ax.semilogx(
    grid,
    demo.ridge_filter(grid, 10.0),
    color=viz.COLORS["norm"],
    label="ridge, lambda=1/(tau eta)=10",
)
ax.plot(
    s[s > 1e-9], demo.ridge_filter(s[s > 1e-9], 10.0), "k|", ms=12, label="eigenvalues of H here"
)
ax.set(xlabel="eigenvalue s", ylabel="filter factor", ylim=(0, 1.05))
ax.legend(fontsize=8)
viz.show(fig)

# %% [markdown]
# **What to notice.** The weights after $\tau$ steps sit much closer to ridge at $\lambda = 1/(\tau\eta)$
# than to the unpenalized solution, but the best-fitting $\lambda$ is smaller by the factor printed
# above: the two filter curves have the same slope at small $s$ and differ in the middle
# ($1 - e^{-1} = 0.63$ against $1/2$ at $s = \lambda$). Read $\lambda \approx 1/(\tau\eta)$ as an order of
# magnitude. With 20 points in 200 dimensions, $H$ has only 20 nonzero eigenvalues, all of similar
# size (printed below): only a $\lambda$ of that order changes the solution much.

# %%
nonzero = s[s > 1e-9]
print(f"{nonzero.size} nonzero eigenvalues of H, from {nonzero.min():.1f} to {nonzero.max():.1f}")
assert nonzero.size == X.shape[0] and nonzero.max() < 5 * nonzero.min()

# %% [markdown]
# ## Input noise is an L2 penalty (Bishop 1995)
#
# Train the same linear model on inputs with Gaussian noise, $x + \varepsilon$,
# $\varepsilon \sim N(0, \sigma^2 I)$. For one example,
# $$E_\varepsilon\bigl[(y - w^\top(x + \varepsilon))^2\bigr] = (y - w^\top x)^2
#   - 2 (y - w^\top x)\, w^\top E[\varepsilon] + w^\top E[\varepsilon\varepsilon^\top] w
#   = (y - w^\top x)^2 + \sigma^2 \lVert w\rVert^2 ,$$
# so the expected loss is $\frac{1}{2n}\lVert Xw - y\rVert^2 + \frac{\sigma^2}{2}\lVert w\rVert^2$:
# ridge with $\lambda = \sigma^2$ (with `regularization.l2_penalty`'s $\frac\lambda2$ convention) —
# not $\sigma$. Two checks: the expected loss at a fixed $w$ by Monte Carlo, and the weights
# learned on 1,000 noisy copies of the data against ridge.

# %%
sigma = 3.0
w_fix = demo.ridge_weights(X, y, 1.0)
eps = np.asarray(jax.random.normal(jax.random.key(5), (2000, *X.shape)), np.float64)
per_draw = np.mean(((X[None] + sigma * eps) @ w_fix - y) ** 2, axis=1) / 2
mc, se = per_draw.mean(), per_draw.std() / np.sqrt(per_draw.size)
data_loss = np.mean((X @ w_fix - y) ** 2) / 2
claim = data_loss + sigma**2 / 2 * w_fix @ w_fix
wrong = data_loss + sigma / 2 * w_fix @ w_fix
print(
    f"Monte Carlo {mc:.5f} +- {se:.5f};  lambda = sigma^2: {claim:.5f};  lambda = sigma: {wrong:.5f}"
)
assert abs(mc - claim) < 5 * se and abs(mc - wrong) > 5 * se

# %%
w_noisy = demo.noisy_least_squares(jax.random.key(6), X, y, sigma, copies=1000)
d_sq, d_lin = (
    rel(w_noisy, demo.ridge_weights(X, y, sigma**2)),
    rel(w_noisy, demo.ridge_weights(X, y, sigma)),
)
print(
    f"sigma = {sigma}: |w_noisy - ridge(sigma^2)| = {d_sq:.3f}, |w_noisy - ridge(sigma)| = {d_lin:.3f} (relative)"
)
assert d_sq < 0.5 * d_lin

# %% [markdown]
# **What to notice.** The Monte Carlo loss matches $\lambda = \sigma^2$ within its standard error and
# misses $\lambda = \sigma$ by many; the weights learned from finitely many noisy copies approach ridge
# at $\sigma^2$ (the remaining distance shrinks like $1/\sqrt{\text{copies}}$). The equivalence is exact
# only in expectation and only for a linear model with squared loss; for a network it holds to second
# order in $\sigma$ (Bishop 1995).
#
# ## Noise on hidden units
#
# The overfitting sweep above also trained the MLP with Gaussian noise on its hidden units
# (`layers.gaussian_noise(h, sigma_h, key=...)`: a fresh draw at every step, off at evaluation — the
# key contract of `layers.dropout`). Its effect can also be watched live, retrained at every slider
# move, in the panel after the augmentation section.

# %%
for i, sh in enumerate(NOISE["noise"]):
    print(
        f"sigma_h = {sh}: train acc {noise_h['train_acc'][i, -1]:.3f}, test acc "
        f"{noise_h['test_acc'][i, -1]:.3f}, lowest val loss {noise_h['val_loss'][i].min():.3f}, "
        f"final val loss {noise_h['val_loss'][i, -1]:.3f}"
    )
best_noise = int(np.argmax(noise_h["test_acc"][:, -1]))
print(
    f"best sigma_h = {NOISE['noise'][best_noise]}: test accuracy "
    f"{noise_h['test_acc'][best_noise, -1] - noise_h['test_acc'][0, -1]:+.3f} against no noise"
)
assert best_noise > 0 and noise_h["val_loss"][1:].min() < noise_h["val_loss"][0].min()
assert noise_h["train_acc"][-1, -1] < noise_h["train_acc"][0, -1] - 0.1, "much noise underfits"

# %% [markdown]
# **What to notice.** Some hidden noise beats none on the test set (best value printed above) and
# every noisy run reaches a lower validation loss than the noiseless one; with the largest $\sigma_h$
# the network can no longer fit its training set — noise, like a penalty, trades variance for bias.

# %% [markdown]
# ## Data augmentation, per step, inside the compiled run
#
# Xiao Han's blog post augments images with Keras's stateful
# `ImageDataGenerator(width_shift_range=0.2, zoom_range=0.2, horizontal_flip=True, ...)`. In JAX an
# augmentation is a pure function of a key and a batch (`lessonlib.augment`: `shift`, `scale`, `noise`,
# `shift_2d`, `flip`), and `train.fit(..., augment=f)` calls `f(key, x_batch, hp)` on every minibatch
# with a key of its own (`train.step_keys`: never the key of the dropout masks, never the same twice).
# Every signal in a batch gets its own draw:

# %%
demo_batch = jnp.tile(small.x_train[:1], (4, 1))
shifted = augment.shift(jax.random.key(0), demo_batch, 4, mode="pad")
offsets = [
    int(np.argmax(np.correlate(np.asarray(r), np.asarray(demo_batch[0]), "full"))) - 39
    for r in shifted
]
print("shift of each copy of one signal:", offsets)
assert len(set(offsets)) > 1

# %% [markdown]
# The strength is an `hp` entry (`hp["shift"]`, traced), so one `train.sweep` trains every strength:
# maximal shifts of 0, 5, 10, 15 and 20 samples (zero-padded) of the 40-sample signals. A shift keeps
# the label only while the pattern stays in the window: 20 samples push half a signal out.

# %%
AUG = {"data": NOISE["data"], "sizes": [40, 128, 128, 10], "lr": 0.1, "batch_size": 50,
       "epochs": 120, "shift": [0.0, 5.0, 10.0, 15.0, 20.0], "seeds": [0, 1]}  # fmt: skip


def shift_signals(key, x, hp):
    return augment.shift(key, x, hp["shift"], mode="pad")


def shift_sweep(cfg, ds, augment_fn):
    """One vmapped run per shift strength in ``cfg["shift"]`` (an MLP ``cfg["sizes"]``, SGD), the
    augmentation drawn per step inside the engine; returns the model, the runs and the seconds."""
    model = models.mlp(cfg["sizes"])
    params, _ = model.init(jax.random.key(cfg["seeds"][0]))
    start = time.perf_counter()
    run = train.sweep(
        model,
        params,
        ds,
        key=jax.random.key(cfg["seeds"][1]),
        hp={"lr": cfg["lr"], "shift": jnp.asarray(cfg["shift"], jnp.float32)},
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        augment=augment_fn,
    )
    return model, run, time.perf_counter() - start


def augment_sweep():
    _, run, seconds = shift_sweep(AUG, small, shift_signals)
    return history_of(run, seconds)


aug_h, hit = cache.cached("ch04-augment", AUG, augment_sweep, modules=MODULES)
print(f"{'loaded from the cache' if hit else 'computed'} ({float(aug_h['seconds']):.1f} s)")
gaps = aug_h["train_acc"][:, -1] - aug_h["test_acc"][:, -1]
for i, m in enumerate(AUG["shift"]):
    print(
        f"max shift {m:4.0f}: train acc {aug_h['train_acc'][i, -1]:.3f}, test acc "
        f"{aug_h['test_acc'][i, -1]:.3f}, gap {gaps[i]:.3f}"
    )
best_aug = int(np.argmax(aug_h["test_acc"][:, -1]))
print(
    f"best: max shift {AUG['shift'][best_aug]:.0f}; the largest shift loses "
    f"{aug_h['test_acc'][best_aug, -1] - aug_h['test_acc'][-1, -1]:.3f} of test accuracy against it"
)
assert gaps[best_aug] < gaps[0] and aug_h["test_acc"][best_aug, -1] > aug_h["test_acc"][0, -1]
assert aug_h["test_acc"][-1, -1] < aug_h["test_acc"][best_aug, -1]

# %% [markdown]
# **What to notice.** Moderate shifts shrink the gap between training and test accuracy and raise
# the test accuracy: the network cannot memorize 1,000 signals it never sees twice in the same
# position. Past the best strength the transform starts to destroy the label — the training accuracy
# falls because the task itself has become impossible for some shifted signals. Augment only with
# transforms the label is invariant to (a one-pixel shift of an 8x8 digit: `augment.shift_2d`; not a
# left-right flip of a "6" or of a time series).
#
# ### One-pixel shifts of 8x8 digits
#
# The same idea on scikit-learn's 8x8 digits (`data.digits`): `augment.shift_2d(key, x, 1,
# image_shape=(8, 8))` moves every image by its own $(d_y, d_x) \in \{-1, 0, 1\}^2$, Keras's
# `width_shift_range`/`height_shift_range` of one pixel. Two runs in one sweep (a 64-128-10 MLP,
# 300 training images, SGD 0.1, 100 epochs), with and without; both are also scored on the test
# digits moved by one pixel (one fixed draw).

# %%
DIGITS = {"n_train": 300, "n_val": 300, "sizes": [64, 128, 10], "lr": 0.1, "batch_size": 50,
          "epochs": 100, "shift": [0.0, 1.0], "seeds": [0, 1, 9]}  # fmt: skip
dg = data.digits(seed=0)
n_dg = DIGITS["n_train"] + DIGITS["n_val"]
digits_small = data.with_validation(
    data.Dataset(dg.x_train[:n_dg], dg.y_train[:n_dg], dg.x_test, dg.y_test), DIGITS["n_val"]
)


def shift_digits(key, x, hp):
    return augment.shift_2d(key, x, hp["shift"], image_shape=(8, 8))


def digits_sweep():
    model, run, seconds = shift_sweep(DIGITS, digits_small, shift_digits)
    moved = augment.shift_2d(jax.random.key(DIGITS["seeds"][2]), dg.x_test, 1, image_shape=(8, 8))
    logits = jax.vmap(lambda p: model.apply(p, {}, moved)[0])(run.params)
    moved_acc = np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(dg.y_test)[None], axis=1)
    return {**history_of(run, seconds), "moved_test_acc": moved_acc}


dg_h, hit = cache.cached("ch04-digits-shift", DIGITS, digits_sweep, modules=MODULES)
print(f"{'loaded from the cache' if hit else 'computed'} ({float(dg_h['seconds']):.1f} s)")
dg_gap = dg_h["train_acc"][:, -1] - dg_h["test_acc"][:, -1]
for i, m in enumerate(DIGITS["shift"]):
    print(
        f"one-pixel shifts {'on ' if m else 'off'}: train acc {dg_h['train_acc'][i, -1]:.3f}, "
        f"test acc {dg_h['test_acc'][i, -1]:.3f}, gap {dg_gap[i]:+.3f}; "
        f"on test digits moved by one pixel {dg_h['moved_test_acc'][i]:.3f}"
    )
assert dg_gap[1] < dg_gap[0] - 0.02, "the shifts shrink the gap"
assert dg_h["moved_test_acc"][1] > dg_h["moved_test_acc"][0] + 0.2, "and buy invariance to them"
assert abs(dg_h["test_acc"][1, -1] - dg_h["test_acc"][0, -1]) < 0.05

# %% [markdown]
# **What to notice.** Without augmentation the MLP fits its 300 training digits and scores well on
# the test digits, which are centred the way the training digits are; moved by one pixel, the same
# test digits defeat it (an MLP has no notion that neighbouring pixels are neighbours). Trained on
# shifted copies, its gap closes and it reads far more of the moved digits; on the centred ones it
# stays within a few points of the plain run (printed above). Augmentation buys invariance to the
# transforms you expect at test time — no more.
#
# ## Noise and augmentation, retrained live
#
# A smaller problem, small enough to retrain at every slider move: 200 MNIST-1D signals to train
# on, 200 to validate on, a 40-32-32-10 MLP with hidden noise, 25 epochs of two Adam steps
# (`demo.live_fit`, `demo.LIVE`). Hidden noise $\sigma_h$, the largest shift and the largest
# time scaling (`augment.scale`: each signal stretched or squeezed about its centre by its own
# factor in $1 \pm$ max scale) are all traced `hp` entries of one `train.fit` configuration: a
# slider move runs the compiled program again, it compiles nothing. The grey curves are the run
# with nothing switched on.

# %%
live = {
    "none": demo.live_fit(),
    "sigma_h 1": demo.live_fit(sigma_h=1.0),
    "shift 6": demo.live_fit(shift=6.0),
    "scale 0.3": demo.live_fit(scale=0.3),
}
for name, run in live.items():
    h = run.history
    print(
        f"{name:9s}: gap train - validation {demo.gap(run):.3f}, validation loss lowest "
        f"{h['test_loss'].min():.2f}, last {h['test_loss'][-1]:.2f}"
    )
assert (demo.LIVE["n_train"], demo.LIVE["n_val"], demo.LIVE["epochs"]) == (200, 200, 25)
h_none = live["none"].history
assert h_none["train_acc"][-1] > 0.99 and int(np.argmin(h_none["test_loss"])) < 5
assert h_none["test_loss"][-1] > 2 * h_none["test_loss"].min(), "the validation loss climbs"
for name in ("sigma_h 1", "shift 6", "scale 0.3"):
    assert demo.gap(live[name]) < demo.gap(live["none"]) - 0.1, name
    assert live[name].history["test_loss"][-1] < 0.7 * live["none"].history["test_loss"][-1], name
assert demo.gap(live["shift 6"]) < min(demo.gap(live["sigma_h 1"]), demo.gap(live["scale 0.3"]))

# %%
panel_retrain = demo.retrain_panel(sigma_h=0.0, max_shift=0.0, max_scale=0.0)
panel_retrain

# %% [markdown]
# **What to notice.** With nothing switched on, the network memorizes its 200 signals within a few
# epochs and the validation loss climbs. Each of the three regularizers closes part of the gap and
# stops the climb (printed above); on MNIST-1D, whose signals are the digit templates *moved and
# stretched*, a random shift does the most — it is the transform the data actually varies by.
# Push any slider to its end and the training accuracy falls far below 1 (checked below): the
# model starts to underfit.

# %%
ends = {"sigma_h 2": {"sigma_h": 2.0}, "shift 12": {"shift": 12.0}, "scale 0.5": {"scale": 0.5}}
for name, kw in ends.items():
    acc = float(demo.live_fit(**kw).history["train_acc"][-1])
    print(f"{name}: training accuracy {acc:.3f}")
    assert acc < 0.7, name
#
# ## Max-norm, with and without dropout
#
# Max-norm (used in the notes on Géron's chapter 11 as Keras's `max_norm(1.)` constraint) rescales,
# after every step, each unit's incoming weight vector whose norm exceeds $r$:
# $w_j \leftarrow w_j \min(1, r / \lVert w_j\rVert)$ (`regularization.max_norm`, axis 0 of a
# (fan_in, fan_out) matrix). Srivastava et al. (2014) used it together with dropout. Four runs in one
# sweep: dropout 0 or 0.5, and $r = 100$ (never active) or $r = 1.5$.

# %%
MAXNORM = {"data": NOISE["data"], "sizes": [40, 128, 128, 10], "lr": 0.1, "batch_size": 50,
           "epochs": 120, "dropout": [0.0, 0.0, 0.5, 0.5], "r": [100.0, 1.5, 100.0, 1.5],
           "seeds": [0, 1]}  # fmt: skip


def project_max_norm(params, hp):
    return regularization.max_norm(params, hp["r"])


def maxnorm_sweep():
    model = models.mlp(MAXNORM["sizes"], dropout=True)
    params, _ = model.init(jax.random.key(MAXNORM["seeds"][0]))
    start = time.perf_counter()
    run = train.sweep(
        model,
        params,
        small,
        key=jax.random.key(MAXNORM["seeds"][1]),
        hp={
            "lr": MAXNORM["lr"],
            "dropout": jnp.asarray(MAXNORM["dropout"], jnp.float32),
            "r": jnp.asarray(MAXNORM["r"], jnp.float32),
        },  # fmt: skip
        epochs=MAXNORM["epochs"],
        batch_size=MAXNORM["batch_size"],
        project=project_max_norm,
    )
    norms = {f"norms_{i}": np.stack([demo.unit_norms(w) for w in layer["w"]])
             for i, layer in enumerate(run.params["dense"][:2])}  # fmt: skip
    init = {
        f"init_norms_{i}": demo.unit_norms(layer["w"])
        for i, layer in enumerate(params["dense"][:2])
    }
    return {**history_of(run, time.perf_counter() - start), **norms, **init}


mn, hit = cache.cached("ch04-maxnorm", MAXNORM, maxnorm_sweep, modules=MODULES)
print(f"{'loaded from the cache' if hit else 'computed'} ({float(mn['seconds']):.1f} s)")
print(
    f"at initialization: largest unit norm {mn['init_norms_0'].max():.2f} (layer 1), {mn['init_norms_1'].max():.2f} (layer 2)"
)
for i, (p, r) in enumerate(zip(MAXNORM["dropout"], MAXNORM["r"], strict=True)):
    print(
        f"dropout {p}, r = {r:5.1f}: largest unit norm {mn['norms_0'][i].max():6.2f} / "
        f"{mn['norms_1'][i].max():6.2f}; train acc {mn['train_acc'][i, -1]:.3f}, "
        f"test acc {mn['test_acc'][i, -1]:.3f}"
    )
for i, r in enumerate(MAXNORM["r"]):
    assert mn["norms_0"][i].max() <= r * (1 + 1e-5) and mn["norms_1"][i].max() <= r * (1 + 1e-5)
assert mn["norms_0"][0].max() > 1.5 and mn["norms_1"][0].max() > 1.5, (
    "unconstrained norms grow past r"
)
on_cap = [float(np.mean(mn[f"norms_{k}"][1] > 1.5 * (1 - 1e-4))) for k in (0, 1)]
print(
    f"r = 1.5 without dropout: {on_cap[0]:.0%} / {on_cap[1]:.0%} of the units end exactly on the cap"
)

# %%
fig, axes = viz.figure(2)
bins = np.linspace(0, max(mn["norms_0"].max(), mn["norms_1"].max()) * 1.02, 40)
for ax, layer in zip(axes, (0, 1), strict=True):
    ax.hist(mn[f"init_norms_{layer}"], bins, histtype="step", color="0.5", label="init")
    for i, style in ((0, "-"), (1, "--"), (3, ":")):
        ax.hist(mn[f"norms_{layer}"][i], bins, histtype="step", ls=style,
                label=f"p={MAXNORM['dropout'][i]}, r={MAXNORM['r'][i]:g}")  # fmt: skip
    ax.set(
        xlabel="norm of a unit's incoming weights",
        ylabel="units",
        title=f"hidden layer {layer + 1}",
    )
axes[0].legend(fontsize=7)
viz.show(fig)

# %% [markdown]
# **What to notice.** Without the constraint the units' norms spread out during training; with
# $r = 1.5$ every unit sits at or below the cap (the share exactly on it is printed). The printed accuracies say how
# much the cap changes on its own and with dropout on this problem — a radius, like a penalty
# strength, is tuned on validation data.
#
# ### The radius r, live
#
# Left: the norms of the first hidden layer's 32 units after training the live problem without a
# constraint (grey) and what the projection $w_j \min(1, r / \lVert w_j\rVert)$ makes of them
# (green): only the units above $r$ move, onto the dashed line. Right: the network retrained with
# the projection after every step at that $r$.

# %%
free_norms = demo.unit_norms(live["none"].params["dense"][0]["w"])
capped = {r: demo.live_fit(r=r) for r in (0.5, 2.0)}
for r, run in capped.items():
    print(
        f"r = {r}: {int(np.sum(free_norms > r))} of {free_norms.size} units above the cap; "
        f"retrained: gap {demo.gap(run):.3f} (none: {demo.gap(live['none']):.3f})"
    )
assert demo.gap(capped[0.5]) < demo.gap(live["none"]) - 0.2
assert free_norms.min() > 0.5 and free_norms.size / 2 < np.sum(free_norms > 2.0) < free_norms.size
assert demo.gap(capped[2.0]) > demo.gap(capped[0.5]) + 0.3, "a loose cap changes much less"
assert demo.gap(live["none"]) - demo.gap(capped[2.0]) < 0.1, "barely"
lowest = demo.live_fit(r=10**-0.6).history["train_acc"][-1]  # the slider's lower end
print(f"r = {10**-0.6:.2f}: training accuracy {lowest:.3f}")
assert lowest < 0.5
panel_max_norm = demo.max_norm_panel(r=1.0)
panel_max_norm

# %% [markdown]
# **What to notice.** A large $r$ touches no unit and changes nothing. At $r = 2$ more than half of
# the trained units lie above the cap, yet retraining under it barely changes the gap (printed
# above): a projection after every step is not the same as projecting the finished network. At
# $r = 0.5$ every unit is held on the sphere and the gap shrinks far more; at the slider's lower
# end the network no longer fits its own training signals.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (3 points): Keras's early-stopping rule
#
# Write `keras_early_stopping(values, patience, min_delta=0.0)` in plain Python for mode `"min"`
# (no baseline): `values[e]` is the validation loss after epoch `e` (0-based). Return
# `(stop_epoch, best_epoch)`: the epoch after which Keras 3's `EarlyStopping` stops (-1 if it does
# not stop within `values`) and the epoch whose weights `restore_best_weights=True` gives back.
# Mind the three details the section above named: strict improvement by more than `min_delta`,
# when `wait` is incremented, and which epoch is restored.


# %% [solution] id=ch04-early-stopping
def keras_early_stopping(values, patience, min_delta=0.0):
    ### BEGIN SOLUTION
    best, wait, best_epoch = float("inf"), 0, 0
    for epoch, v in enumerate(values):
        wait += 1
        if v + abs(min_delta) < best:
            best, best_epoch, wait = v, epoch, 0
        elif wait >= patience and epoch > 0:
            return epoch, best_epoch
    return -1, best_epoch
    ### END SOLUTION


# %% [tests] id=ch04-test-early-stopping points=3
check("04.early_stopping", keras_early_stopping)
### BEGIN HIDDEN TESTS
check("04.early_stopping", keras_early_stopping, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (2 points): the max-norm projection
#
# Write `max_norm(w, r)` for a weight matrix `w` of shape (fan_in, fan_out): every unit's incoming
# weight vector (a column) whose norm exceeds `r` is rescaled to norm `r`; the others are unchanged.


# %% [solution] id=ch04-max-norm
def max_norm(w, r):
    ### BEGIN SOLUTION
    norms = jnp.linalg.norm(w, axis=0, keepdims=True)
    return w * jnp.minimum(1.0, r / norms)
    ### END SOLUTION


# %% [tests] id=ch04-test-max-norm points=2
check("04.max_norm", max_norm)
### BEGIN HIDDEN TESTS
check("04.max_norm", max_norm, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (1 point): the penalty input noise amounts to
#
# Write `noise_lambda(sigma)`: the $\lambda$ of the penalty $\frac\lambda2\lVert w\rVert^2$ that Gaussian
# input noise of standard deviation `sigma` adds, in expectation, to the loss
# $\frac1{2n}\lVert Xw - y\rVert^2$ of a linear model.


# %% [solution] id=ch04-noise-lambda
def noise_lambda(sigma):
    ### BEGIN SOLUTION
    return sigma**2
    ### END SOLUTION


# %% [tests] id=ch04-test-noise-lambda points=1
check("04.noise_lambda", noise_lambda)
### BEGIN HIDDEN TESTS
check("04.noise_lambda", noise_lambda, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (2 points): a random shift, one draw per example
#
# Write `random_shift(key, x, max_shift)` for a batch of signals `x` of shape (batch, length): shift
# every signal by its own integer $s_i$, uniform on $-$`max_shift` .. `max_shift` (both ends
# included), so that $y_{i,t} = x_{i, t - s_i}$, with zeros where $t - s_i$ falls outside the signal.


# %% [solution] id=ch04-random-shift
def random_shift(key, x, max_shift):
    ### BEGIN SOLUTION
    n = x.shape[1]
    s = jax.random.randint(key, (x.shape[0],), -max_shift, max_shift + 1)
    idx = jnp.arange(n)[None, :] - s[:, None]
    inside = (idx >= 0) & (idx < n)
    return jnp.where(inside, jnp.take_along_axis(x, jnp.clip(idx, 0, n - 1), axis=1), 0.0)
    ### END SOLUTION


# %% [tests] id=ch04-test-random-shift points=2
check("04.random_shift", random_shift)
### BEGIN HIDDEN TESTS
check("04.random_shift", random_shift, hidden=True)
### END HIDDEN TESTS

# %%
moves = {
    "panel_stopping": [panel_stopping.update(patience=p, min_delta=0.0) for p in (4, 25, 10)],
    "panel_retrain": [panel_retrain.update(sigma_h=v) for v in (1.0, 0.5, 0.0)]
    + [panel_retrain.update(max_shift=v) for v in (6.0, 12.0, 0.0)]
    + [panel_retrain.update(max_scale=v) for v in (0.3, 0.0)],
    "panel_max_norm": [panel_max_norm.update(r=v) for v in (0.5, 2.0, 1.0)],
}
for name, ms in moves.items():
    print(f"{name}: redraws {', '.join(f'{m:.0f}' for m in ms)} ms kernel-side")
print(f"chapter run time: {time.perf_counter() - T0:.1f} s")

# %% [markdown]
# ## Sharp bits
#
# - **Validation, not test.** Early stopping chooses an epoch: choose it on a validation split
#   (`data.with_validation`), or the test score stops being an estimate. `train.fit` warns when
#   `monitor` names a `test_*` entry.
# - **Stopping is not restoring.** The JAX book chapter's function (and Keras by default) stops with
#   the last weights, `patience` epochs past the best. Ask for `restore_best_weights=True`.
# - **`min_delta` is strict and has a sign.** An improvement must beat the best by *more* than
#   `min_delta` (`value + min_delta < best` in mode "min"); an exact tie is no improvement.
# - **Loss and accuracy disagree.** The validation loss can climb while the accuracy still rises;
#   monitor what you are judged on.
# - **λ ≈ 1/(τη) is an order of magnitude**, not an identity (here the best-fitting λ was smaller by
#   the factor printed in that section). Input noise = L2 is exact only in expectation, for a linear model and squared loss.
# - **Noise is λ = σ², not σ.** And a fresh draw at every step: a fixed key is a fixed perturbation
#   of the data, not noise.
# - **One draw per example.** An augmentation that shifts the whole batch by one offset teaches far
#   less; and a transform that can change the label (a large shift, a flip of a "6") is label noise.
# - **Augmentation buys invariance, not accuracy as such.** One-pixel shifts of the centred 8x8
#   digits barely move the centred test score but rescue the shifted one: augment with the
#   variations the test data will have.
# - **Max-norm acts after the step**, per unit (axis 0 of a (fan_in, fan_out) matrix), and leaves
#   units inside the ball alone.
#
# ## References
#
# - L. Prechelt. *Early Stopping — But When?* In *Neural Networks: Tricks of the Trade*, 1998.
# - C. Bishop. *Training with Noise is Equivalent to Tikhonov Regularization.* Neural Computation 7
#   (1995).
# - I. Goodfellow, Y. Bengio, A. Courville. *Deep Learning*, MIT Press 2016, §7.4 (noise), §7.8
#   (early stopping as L2).
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov. *Dropout: A Simple Way to
#   Prevent Neural Networks from Overfitting.* JMLR 15 (2014) — max-norm with dropout.
# - S. Greydanus. *Scaling down Deep Learning* (MNIST-1D). 2020.
# - Keras 3, `keras.callbacks.EarlyStopping` and `keras.constraints.MaxNorm` (the rules transcribed here).
# - The course's sources (the JAX book chapter, Xiao Han's blog post, the notes on Géron's chapter 11)
#   and their mistakes: [sources.md](../sources.md).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | early stopping | 早停 / 提前停止 | stop training when the validation metric stops improving |
# | patience | 耐心值 | epochs without improvement before stopping |
# | validation set | 验证集 | held-out data used to choose epochs and hyperparameters |
# | restore best weights | 恢复最佳权重 | return the weights of the best monitored epoch |
# | min_delta | 最小改进量 | how much better a value must be to count as an improvement |
# | noise injection | 噪声注入 | adding random noise to inputs or hidden units while training |
# | Tikhonov / L2 regularization | 吉洪诺夫正则化 / L2 正则化 | penalty λ/2 ‖w‖² |
# | filter factor | 滤波因子 | how much of the solution survives along one eigenvector |
# | data augmentation | 数据增强 | training on label-preserving transforms of the data |
# | label-preserving transform | 保持标签的变换 | a change that leaves the true class the same |
# | max-norm constraint | 最大范数约束 | cap on the norm of each unit's incoming weights |
# | generalization gap | 泛化差距 | training accuracy minus test accuracy |
