# %% [markdown]
# # 05 · Initialization, activations, vanishing and exploding gradients, clipping
#
# Backpropagation multiplies the gradient by one weight matrix and one activation derivative per
# layer on its way down to the inputs. The notes on Géron's chapter 11 ("Deep Neural Networks参数配置",
# source 5 in [the sources](../sources.md)) put it this way: the gradients often get smaller and
# smaller as the algorithm progresses down to the lower layers, so gradient descent leaves the
# lower layers' weights virtually unchanged — the **vanishing gradients** problem; in other cases
# they grow until the updates are huge and training diverges — **exploding gradients**. The notes
# then give recipes: Glorot, He and LeCun initialization, better activations (LeakyReLU, ELU, SELU,
# GELU, Swish, Mish) and gradient clipping, plus a table of training speed-ups that nobody
# measured.
#
# **You will:** watch activations and gradients shrink or blow up layer by layer in a 50-layer
# network, with sliders; derive the variance-preserving initializations and check each step
# numerically; measure the notes' "random ×1, Glorot ×3, He ×5" on this machine; plot the
# activations and their derivatives, watch ReLU units die at large learning rates, and see when
# SELU normalizes itself through 100 layers and when it does not; clip gradients by value and by
# norm; and implement the variance-scaling initializer, `clip_by_global_norm`, SELU and the
# fraction of dead units yourself (four graded exercises).

# %%
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Markdown, display
from scipy import integrate

from lessonlib import data, layers, models, optim, viz
from lessonlib.exercises import check
from lessonlib.demos import ch05_initialization as demo

notebook_start = time.perf_counter()
ds = demo.standardized_digits()  # 1,437 train / 360 test digits, every feature standardized
print("train", ds.x_train.shape, "test", ds.x_test.shape, "| JAX on", jax.devices()[0].platform)
# Sections 3, 5 and 7 train 39 networks. They start now, one after the other in a background
# thread, and those sections pick up the results (`experiments["race"].result()`); meanwhile
# the cells in between run on the other core.
experiments = demo.start_experiments(ds)

# %% [markdown]
# ## 1 · Vanishing and exploding gradients, seen
#
# Take a stack of 30 dense ReLU layers of 64 units and push one batch of digits through it at
# initialization. For every hidden layer $i$ we record the standard deviation of its output
# $h_i$ and of the gradient $\partial L/\partial h_i$ that backpropagation carries down through
# it. Three ways to draw the weights: the old default $N(0, 1)$, Glorot and He (defined in
# section 2). `demo.deep_net_stats` returns those per-layer numbers; its network has the depth,
# activation, initializer and weight scale as *traced* inputs, so the panel below reuses one
# compiled program for every slider position.

# %%
seen = {init: demo.deep_net_stats(30, "relu", init, 1.0) for init in ("N(0, 1)", "Glorot", "He")}
rows = ["| initializer | layer | 1 | 10 | 20 | 30 |", "|---|---|---|---|---|---|"]
for init, s in seen.items():
    for key, what in (
        ("act_std", "std of $h_i$"),
        ("grad_std", r"std of $\partial L/\partial h_i$"),
    ):
        rows.append(
            f"| {init} | {what} | " + " | ".join(f"{s[key][i]:.2g}" for i in (0, 9, 19, 29)) + " |"
        )
display(Markdown("\n".join(rows)))
glorot, he, normal = seen["Glorot"], seen["He"], seen["N(0, 1)"]
shrink = glorot["act_std"][29] / glorot["act_std"][0]
vanish = glorot["grad_std"][0] / glorot["grad_std"][29]
he_ratio = he["act_std"][29] / he["act_std"][0]
explode = normal["act_std"][29]
print(
    f"Glorot: activation std, layer 30 / layer 1 = {shrink:.2g}; gradient std, layer 1 / layer 30 = {vanish:.2g}"
)
print(f"He:     activation std, layer 30 / layer 1 = {he_ratio:.2g}")
print(f"N(0,1): activation std at layer 30 = {explode:.3g}")
assert shrink < 1e-3 and vanish < 1e-3  # Glorot + ReLU: both vanish
he_grad_ratio = he["grad_std"][0] / he["grad_std"][29]
print(f"He:     gradient std, layer 1 / layer 30 = {he_grad_ratio:.2g}")
assert 0.2 < he_ratio < 5 and 0.2 < he_grad_ratio < 5  # He keeps both scales
assert not np.isfinite(explode) or explode > 1e10  # N(0, 1) explodes (or overflows float32)

# %% [markdown]
# What to notice: with Glorot weights every ReLU layer shrinks the signal, so after 30 layers the
# activations are orders of magnitude smaller than at layer 1 — and on the way back the gradient
# reaching the *first* layers is orders of magnitude smaller than at the top (the ratios are
# printed above): the lower layers barely learn. He weights keep both scales roughly constant.
# $N(0, 1)$ multiplies the scale at every layer until float32 gives up.
#
# ### How the statistics are recorded, without touching the model
#
# `models.layer_stats(model, params, x, y)` works for any model with a `forward` (every
# `models.mlp` has one): the forward pass adds a zero "probe" offset $o_i$ to each hidden output,
# $h_i + o_i$, and returns the $h_i$. Since $\partial L/\partial o_i = \partial L/\partial h_i$,
# one `jax.grad` with respect to the offsets gives every layer's backward signal, in one jitted
# call. A check by hand on a small MLP: for the last hidden layer
# $\partial L/\partial h_2 = \tfrac1B(\mathrm{softmax}(z_3) - \mathrm{onehot}(y))\,W_3^\top$, and one
# layer further down $\partial L/\partial h_1 = (\partial L/\partial h_2 \odot \mathbb 1[z_2 > 0])\,W_2^\top$.

# %%
small = models.mlp([64, 32, 32, 10])
p_small, _ = small.init(jax.random.key(1))
xb, yb = ds.x_train[:256], ds.y_train[:256]
stats = models.layer_stats(small, p_small, xb, yb)


@jax.jit
def grad_std_by_hand(params, x, y):
    (w1, b1), (w2, b2), (w3, b3) = [(d["w"], d["b"]) for d in params["dense"]]
    z2 = jax.nn.relu(x @ w1 + b1) @ w2 + b2
    z3 = jax.nn.relu(z2) @ w3 + b3
    d_h2 = (jax.nn.softmax(z3) - jax.nn.one_hot(y, 10)) / len(y) @ w3.T
    d_h1 = (d_h2 * (z2 > 0)) @ w2.T
    return jnp.stack([d_h1.std(), d_h2.std()])


by_hand = grad_std_by_hand(p_small, xb, yb)
print("layer_stats grad std:", np.asarray(stats["grad_std"]), "| by hand:", np.asarray(by_hand))
assert np.allclose(stats["grad_std"], by_hand, rtol=1e-4)

# %% [markdown]
# ### The panel
#
# Move the sliders: **depth** (1–50 layers), **activation**, **initializer** (the weights'
# standard deviation: 1, LeCun $\sqrt{1/n_{in}}$, Glorot $\sqrt{2/(n_{in}+n_{out})}$, He
# $\sqrt{2/n_{in}}$) and a **weight scale** that multiplies it. Left: standard deviation of each
# layer's output; right: of the gradient flowing down through it (both on log axes; the grey line
# is 1). Here every hidden layer has 64 inputs and 64 outputs, so Glorot and LeCun coincide except
# in the first layer.

# %%
panel_vanishing = demo.vanishing_panel(depth=30, activation="relu", init="Glorot")
panel_vanishing

# %% [markdown]
# What to try: ReLU with Glorot vs He; then SELU with LeCun (flat lines near 1); sigmoid with any
# initializer (its derivative is at most 1/4: the gradient reaching layer 1 is smaller than at the
# top every time); and ReLU/He with a weight scale of 1.3 or 0.7 — a factor per layer compounds
# over 50 layers. The same numbers, checked:

# %%
selu_lecun = demo.deep_net_stats(50, "selu", "LeCun", 1.0)["act_std"]
print(
    f"SELU, LeCun: activation std over 50 layers in [{selu_lecun.min():.2f}, {selu_lecun.max():.2f}]"
)
sig = {init: demo.deep_net_stats(50, "sigmoid", init, 1.0)["grad_std"] for init in demo.PANEL_INITS}
print(
    "sigmoid, gradient std layer 1 / layer 50:", {k: f"{v[0] / v[-1]:.2g}" for k, v in sig.items()}
)
up, down = (demo.deep_net_stats(50, "relu", "He", g)["act_std"] for g in (1.3, 0.7))
print(
    f"ReLU, He x 1.3: layer 50 / layer 1 = {up[-1] / up[0]:.3g};  x 0.7: {down[-1] / down[0]:.3g}"
)
assert 0.8 < selu_lecun.min() and selu_lecun.max() < 1.25
assert all(v[0] < v[-1] for v in sig.values())
assert up[-1] / up[0] > 100 and down[-1] / down[0] < 0.01

# %% [markdown]
# ## 2 · Why Glorot and He: keeping the variance
#
# A dense layer computes $z_j = \sum_{i=1}^{n_{in}} w_{ij} x_i$. Draw the weights independently,
# with mean 0 and variance $\mathrm{Var}(w)$, independently of the inputs. Then every term has mean
# 0 and the terms are uncorrelated, so
#
# $$\mathrm{Var}(z_j) = \sum_i \mathrm{Var}(w_{ij} x_i) = n_{in}\,\mathrm{Var}(w)\,E[x^2] .$$
#
# Note $E[x^2]$, not $\mathrm{Var}(x)$: they agree only for zero-mean inputs. The check below
# feeds inputs with mean 1 and variance 2, so $E[x^2] = 3$, and compares both predictions with the
# measured variance (the tolerance is five standard errors of a variance estimated from the
# sample).

# %%
rng = np.random.default_rng(0)  # the check is about the math: NumPy float64 draws
n_in, n_out, batch, var_w, mean_x = 256, 512, 2048, 0.01, 1.0
x = mean_x + math.sqrt(2.0) * rng.standard_normal((batch, n_in))  # E[x^2] = 1 + 2 = 3
w = math.sqrt(var_w) * rng.standard_normal((n_in, n_out))
measured = (x @ w).var()
with_second_moment = n_in * var_w * (x**2).mean()
with_variance = n_in * var_w * x.var()
# 5 standard errors; the widest comes from mean_x * (column sums of w): only n_out draws
tol = (
    5 * math.sqrt(2 / n_out) * n_in * var_w * mean_x**2
    + 5 * math.sqrt(2 / (batch * n_out)) * measured
)
print(f"measured Var(z) = {measured:.3f} (tolerance {tol:.2f})")
print(f"n_in Var(w) E[x^2] = {with_second_moment:.3f}   n_in Var(w) Var(x) = {with_variance:.3f}")
assert abs(measured - with_second_moment) < tol
assert abs(measured - with_variance) > tol  # the zero-mean formula is wrong here

# %% [markdown]
# **Forward.** To keep $E[z^2]$ the same from layer to layer we need $n_{in}\mathrm{Var}(w)E[x^2]
# = E[z_{prev}^2]$. For a layer whose inputs are zero-mean (tanh near 0, SELU — or the inputs of
# the first layer) $E[x^2] = \mathrm{Var}(z_{prev})$, so $\mathrm{Var}(w) = 1/n_{in}$: **LeCun**.
# For ReLU, $x = \max(z_{prev}, 0)$ with $z_{prev}$ symmetric around 0, so half of
# $E[z_{prev}^2]$ survives: $E[x^2] = \tfrac12 E[z_{prev}^2]$, and $\mathrm{Var}(w) = 2/n_{in}$:
# **He** (He et al. 2015).
#
# **Backward.** The gradient with respect to the inputs is
# $\partial L/\partial x_i = \sum_j w_{ij}\,\partial L/\partial z_j$, a sum of $n_{out}$ terms, so
# by the same argument $\mathrm{Var}(\partial L/\partial x) = n_{out}\mathrm{Var}(w)\,
# \mathrm{Var}(\partial L/\partial z)$: the backward pass wants $\mathrm{Var}(w) = 1/n_{out}$.
# **Glorot** (Glorot & Bengio 2010) takes the compromise $\mathrm{Var}(w) = 2/(n_{in} + n_{out})$,
# i.e. $1/\mathrm{fan_{avg}}$. Three numeric checks: ReLU halves the second moment; He keeps
# $E[z^2]$ through 20 ReLU layers; and for a 256 → 512 Glorot layer the forward and backward
# variance gains are $2n_{in}/(n_{in}+n_{out})$ and $2n_{out}/(n_{in}+n_{out})$.

# %%
zs = 1.7 * rng.standard_normal(200_000)
half = (np.maximum(zs, 0) ** 2).mean() / (zs**2).mean()
print(f"E[relu(z)^2] / E[z^2] = {half:.4f} (He's derivation: 1/2)")
assert abs(half - 0.5) < 0.01

h = rng.standard_normal((1024, 128))
second = []
for _ in range(20):  # 20 ReLU layers of 128 units, He weights: Var(w) = 2 / 128
    z_layer = h @ (math.sqrt(2 / 128) * rng.standard_normal((128, 128)))
    second.append((z_layer**2).mean())
    h = np.maximum(z_layer, 0)
print("E[z^2] at layers 1, 5, 10, 15, 20:", np.round(np.array(second)[[0, 4, 9, 14, 19]], 2))
assert 0.5 < second[-1] / second[0] < 2.0

w_g = math.sqrt(2 / (256 + 512)) * rng.standard_normal((256, 512))  # Glorot, 256 -> 512
x_in, g_out = rng.standard_normal((4096, 256)), rng.standard_normal((4096, 512))
forward_gain = (x_in @ w_g).var() / x_in.var()
backward_gain = (g_out @ w_g.T).var() / g_out.var()
print(
    f"Glorot 256 -> 512: forward gain {forward_gain:.3f} (2*256/768 = {2 * 256 / 768:.3f}), "
    f"backward gain {backward_gain:.3f} (2*512/768 = {2 * 512 / 768:.3f})"
)
assert abs(forward_gain - 2 * 256 / 768) < 0.03 and abs(backward_gain - 2 * 512 / 768) < 0.03

# %% [markdown]
# The three initializers are one function, **variance scaling**: $\mathrm{Var}(w) =
# \text{scale}/\text{fan}$ with fan = $n_{in}$ (fan_in), $n_{out}$ (fan_out) or their average
# (fan_avg). `models.variance_scaling(key, fan_in, fan_out, kind=..., dist=...)` has the three
# kinds built in and takes Keras's `scale=` and `mode=` as overrides:
#
# | kind | mode | scale | for |
# |---|---|---|---|
# | LeCun | fan_in | 1 | SELU (and tanh) |
# | Glorot ("Xavier") | fan_avg | 1 | tanh, sigmoid, softmax |
# | He | fan_in | 2 | ReLU and its variants |
#
# The table is `models.KINDS`; the next cell checks it against `jax.nn.initializers` (same key,
# same draws).

# %%
checks = {
    "lecun": jax.nn.initializers.lecun_uniform(),
    "glorot": jax.nn.initializers.glorot_uniform(),
    "he": jax.nn.initializers.he_uniform(),
}
for kind, ref in checks.items():
    ours = models.variance_scaling(jax.random.key(9), 300, 500, kind=kind, dist="uniform")
    same = bool(jnp.allclose(ours, ref(jax.random.key(9), (300, 500)), rtol=1e-6))
    print(
        f"{kind:6s} {models.KINDS[kind]}: same draws as jax.nn.initializers.{kind}_uniform: {same}"
    )
    assert same

# %% [markdown]
# ### Normal, truncated normal or uniform: the same variance
#
# The variance is what matters, not the shape, so each kind comes in three distributions with
# exactly $\sigma^2 = \text{scale}/\text{fan}$:
#
# - **normal** $N(0, \sigma^2)$;
# - **uniform** $U(-a, a)$ with $a = \sqrt3\,\sigma$, since $\mathrm{Var}\,U(-a, a) = a^2/3$;
# - **truncated normal**: draw $N(0, s^2)$ and redraw anything beyond $\pm 2s$. Cutting the tails
#   removes variance: a standard normal cut at $\pm2$ has standard deviation
#   $\sqrt{1 - 2\cdot 2\,\varphi(2)/(\Phi(2) - \Phi(-2))} \approx 0.8796$, so Keras and
#   `jax.nn.initializers` draw with $s = \sigma/0.8796$ to land on $\sigma$ exactly.
#
# Computed, and the cost of forgetting the correction:

# %%
phi2 = math.exp(-2) / math.sqrt(2 * math.pi)  # standard normal density at 2
mass = math.erf(2 / math.sqrt(2))  # P(-2 < Z < 2)
trunc_sd = math.sqrt(1 - 4 * phi2 / mass)
print(
    f"sd of N(0, 1) cut at +-2: {trunc_sd:.10f}   models.TRUNCATED_STD: {models.TRUNCATED_STD:.10f}"
)
assert abs(trunc_sd - models.TRUNCATED_STD) < 1e-12

fan_in, fan_out = 300, 500
target = 2.0 / fan_in  # He
draws = {
    d: np.asarray(models.variance_scaling(jax.random.key(10), fan_in, fan_out, dist=d))
    for d in models.DISTRIBUTIONS
}
uncorrected = np.asarray(
    math.sqrt(target)
    * jax.random.truncated_normal(jax.random.key(10), -2.0, 2.0, (fan_in, fan_out))
)
tol = 5 * target * math.sqrt(2 / draws["normal"].size)
for d, wd in draws.items():
    print(
        f"{d:17s} Var(w) * fan_in / 2 = {wd.var() / target:.4f}   max |w| / sigma = {np.abs(wd).max() / math.sqrt(target):.2f}"
    )
    assert abs(wd.var() - target) < tol
bound = (
    np.abs(draws["uniform"]).max() / math.sqrt(target),
    np.abs(draws["truncated_normal"]).max() / math.sqrt(target),
)
assert bound[0] <= math.sqrt(3) * (1 + 1e-6) and bound[1] <= 2 / trunc_sd * (1 + 1e-6)
print(
    f"truncated, no correction: Var(w) / target = {uncorrected.var() / target:.4f} (0.8796^2 = {trunc_sd**2:.4f})"
)
assert abs(uncorrected.var() / target - trunc_sd**2) < 0.02

fig, (ax,) = viz.figure(1, width=5.5)
bins = np.linspace(-4, 4, 81) * math.sqrt(target)
for d, wd in draws.items():
    ax.hist(wd.ravel(), bins=bins, histtype="step", density=True, label=d)
ax.set_xlabel("w (He, fan_in = 300)")
ax.set_ylabel("density")
ax.legend(fontsize=8)
viz.show(fig)

# %% [markdown]
# What to notice: three different shapes, one variance. The uniform stops at $\pm\sqrt3\sigma
# \approx \pm1.73\sigma$, the truncated normal at $\pm2s \approx \pm2.27\sigma$, the normal has
# tails. Without the correction a "truncated He" initializer falls short of the intended variance
# by the factor $0.8796^2$ printed above. Note that `jax.nn.initializers.he_normal` is in fact a
# *truncated* normal (checked below), and so is Keras's `he_normal` according to its
# documentation; `models.variance_scaling(dist="normal")` is a plain normal.

# %%
jax_he = np.asarray(jax.nn.initializers.he_normal()(jax.random.key(12), (fan_in, fan_out)))
print(
    f"jax.nn.initializers.he_normal: max |w| / sigma = {np.abs(jax_he).max() / math.sqrt(target):.3f} "
    f"(truncated at 2 / 0.8796 = {2 / trunc_sd:.3f})"
)
assert np.abs(jax_he).max() <= 2 * math.sqrt(target) / trunc_sd * (1 + 1e-6)

# %% [markdown]
# The notes build a custom initializer, `VarianceScaling(scale=2., mode="fan_avg",
# distribution="uniform")` — He's factor 2 with Glorot's fan. Reproduced, for a layer with 300
# inputs and 50 outputs (the notes' `Dense(50)`): $a = \sqrt{3\cdot 2/\mathrm{fan_{avg}}}$.

# %%
w_notes = models.variance_scaling(
    jax.random.key(11), 300, 50, scale=2.0, mode="fan_avg", dist="uniform"
)
keras_rule = jax.nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")(
    jax.random.key(11), (300, 50)
)
limit = math.sqrt(3 * 2.0 / ((300 + 50) / 2))
print(f"limit a = sqrt(6 / 175) = {limit:.4f}; max |w| = {float(jnp.abs(w_notes).max()):.4f}")
print(f"Var(w) = {float(w_notes.var()):.5f}, scale / fan_avg = {2.0 / 175:.5f}")
print(
    "same draws as jax.nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform'):",
    bool(jnp.allclose(w_notes, keras_rule, rtol=1e-6)),
)
assert float(jnp.abs(w_notes).max()) <= limit and bool(jnp.allclose(w_notes, keras_rule, rtol=1e-6))
assert abs(float(w_notes.var()) - 2.0 / 175) < 5 * (2.0 / 175) * math.sqrt(2 / w_notes.size)

# %% [markdown]
# ## 3 · "Random ×1, Glorot ×3, He ×5": measured
#
# The notes' table of initializers says training speed is slow (×1) for random initialization,
# fast (×3) for Glorot and very fast (×5) for He — with no network, data set or measurement behind
# it (erratum 10 of this course). Here is one measurement: the same 8-layer ReLU MLP (64 → 8 × 32
# → 10) on the standardized digits, plain SGD with learning rate 0.05, batch 32, 12 epochs; the
# score is the number of epochs until the test accuracy first reaches 90%. "Random" is a
# fixed-standard-deviation normal, the pre-2010 practice: $N(0, 1)$, and $N(0, 0.05^2)$ (Keras's
# `RandomNormal()` default). Every initializer gets the same three seeds, and all 12 runs are one
# vmapped call: `train.sweep(..., stacked=True)` starts run $k$ from the $k$-th set of
# initial weights.

# %%
cfg = demo.DEEP
print(
    f"network 64 -> {cfg['depth']} x {cfg['width']} -> 10 (ReLU), SGD lr {demo.RACE_LR}, batch {cfg['batch_size']}, "
    f"{cfg['epochs']} epochs, target test acc {demo.RACE_TARGET}, {demo.RACE_SEEDS} seeds per initializer"
)
race = experiments["race"].result()  # demo.initializer_race(ds), started in the first cell
epochs_to = race["epochs_to_target"]  # (initializers, seeds), 0 = never
n_epochs = race["test_acc"].shape[-1]
claimed = {"random N(0, 1)": "×1", "random N(0, 0.05²)": "×1", "Glorot": "×3", "He": "×5"}
median = {
    n: float(np.median(np.where(e > 0, e, np.inf)))
    for n, e in zip(race["names"], epochs_to, strict=True)
}
rows = [
    "| initializer | epochs to 90% (3 seeds) | median | final test acc | speed vs Glorot | the notes' claim |",
    "|---|---|---|---|---|---|",
]
for i, name in enumerate(race["names"]):
    seeds = ", ".join(str(e) if e else "never" for e in epochs_to[i])
    speed = median["Glorot"] / median[name] if np.isfinite(median[name]) else 0.0
    rows.append(
        f"| {name} | {seeds} | {median[name]:g} | {race['test_acc'][i, :, -1].mean():.3f} | "
        f"{f'×{speed:.2f}' if speed else '—'} | {claimed[name]} |"
    )
display(Markdown("\n".join(rows)))
he_vs_glorot = median["Glorot"] / median["He"]
print(
    f"He reaches 90% {he_vs_glorot:.2f}x as fast as Glorot here (the notes' ratio: 5/3 = {5 / 3:.2f}x)"
)
never = [n for n, e in zip(race["names"], epochs_to, strict=True) if not e.any()]
print(f"never reached 90% within {n_epochs} epochs: {never}")
chance = race["test_acc"][: len(never), :, -1]
print(f"their final test accuracy: {np.round(chance.ravel(), 3)} (chance is 1/10)")

fig, (ax,) = viz.figure(1, width=5.5)
ep = np.arange(1, n_epochs + 1)
for i, name in enumerate(race["names"]):
    ax.plot(ep, viz.finite(race["test_acc"][i].mean(0)), "o-", ms=3, label=name)
ax.axhline(demo.RACE_TARGET, color="0.6", ls=":", lw=1)
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy (mean of 3 seeds)")
ax.set_ylim(0, 1)
ax.legend(fontsize=8, loc="lower right")
viz.show(fig)

# %%
# NBVAL_CHECK_OUTPUT
print("He reaches 90% before Glorot:", median["He"] < median["Glorot"])
print(
    f"both random initializations never reach 90% in {n_epochs} epochs:",
    set(never) == {"random N(0, 1)", "random N(0, 0.05²)"},
)
# OUTPUT: He reaches 90% before Glorot: True
# OUTPUT: both random initializations never reach 90% in 12 epochs: True

# %% [markdown]
# > **Myth:** "random initialization ×1, Glorot ×3, He ×5 training speed" (the notes' table).
# > **Fact:** a speed-up is a property of one network, one data set and one optimizer, not of an
# > initializer. On this 8-layer ReLU network the random initializations never train at all
# > (their test accuracy stays at chance level, printed above — so a ratio "×3" to them has no
# > meaning), and He beats Glorot by the factor printed above, not by 5/3. Measure on yours.
#
# ## 4 · Activation functions and their derivatives
#
# The derivative is what multiplies the gradient at every layer, so it is what to look at:
# ReLU's is 0 or 1 (no shrinking, but exactly 0 for negative inputs), LeakyReLU keeps a small
# slope, ELU and SELU are smooth and saturate at $-\alpha$ (SELU: $-\lambda\alpha$) for very
# negative inputs, GELU $z\,\Phi(z)$, Swish $z\,\sigma(\beta z)$ and Mish
# $z\tanh(\mathrm{softplus}(z))$ are smooth and dip slightly below 0. The derivatives are computed
# with `jax.grad` and checked against central differences in float64.

# %%
names = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish"]
fns = [layers.ACTIVATIONS[name] for name in names]


@jax.jit
def values_and_slopes(z):
    """Every activation of ``names`` and its derivative (jax.grad) at the points z."""
    values = jnp.stack([f(z) for f in fns])
    slopes = jnp.stack([jax.vmap(jax.grad(f))(z) for f in fns])
    return values, slopes


grid = jnp.linspace(-4.0, 3.0, 701)
values, slopes = values_and_slopes(grid)
fig, (ax_f, ax_d) = viz.figure(2)
for name, v, d in zip(names, values, slopes, strict=True):
    ax_f.plot(grid, v, label=name)
    ax_d.plot(grid, d, label=name)
ax_f.set_title("f(z)")
ax_d.set_title("f'(z) (jax.grad)")
for ax in (ax_f, ax_d):
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("z")
ax_f.set_ylim(-2, 3)
ax_f.legend(fontsize=8)
viz.show(fig)

with jax.enable_x64(True):  # float64, so that a central difference is accurate to ~1e-10
    xp = jnp.array([-3.1, -0.7, -0.2, 0.4, 1.3, 2.9], jnp.float64)
    _, exact = values_and_slopes(xp)
    central = (values_and_slopes(xp + 1e-6)[0] - values_and_slopes(xp - 1e-6)[0]) / 2e-6
    worst = float(jnp.max(jnp.abs(exact - central)))
print(f"largest |jax.grad - central difference| over {len(names)} activations: {worst:.1e}")
assert worst < 1e-6
at_minus4 = {n: float(v[0]) for n, v in zip(names, values, strict=True)}  # grid[0] = -4
dips = {n: float(values[names.index(n)].min()) for n in ("gelu", "silu", "mish")}
print("at z = -4:", {n: round(v, 3) for n, v in at_minus4.items()})
print("smallest value of the smooth ones:", {n: round(v, 3) for n, v in dips.items()})
assert (
    -1 < at_minus4["elu"] < -0.95
    and -layers.SELU_SCALE * layers.SELU_ALPHA < at_minus4["selu"] < -1.7
)
assert all(-0.35 < v < 0 for v in dips.values())

# %% [markdown]
# ### SELU's two constants
#
# SELU is $\lambda\,\mathrm{ELU}_\alpha$ with $\alpha \approx 1.6733$, $\lambda \approx 1.0507$
# (Klambauer et al. 2017). They are the solution of two equations: if $z \sim N(0, 1)$ then
# $E[\mathrm{selu}(z)] = 0$ and $E[\mathrm{selu}(z)^2] = 1$ — mean 0 and variance 1 are a fixed
# point of a LeCun-initialized layer. Checked by numerical integration:


# %%
def selu_moment(k):
    def integrand(z):
        v = layers.SELU_SCALE * (z if z > 0 else layers.SELU_ALPHA * math.expm1(z))
        return v**k * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    return sum(integrate.quad(integrand, a, b)[0] for a, b in [(-30, 0), (0, 30)])


m1, m2 = selu_moment(1), selu_moment(2)
print(f"E[selu(z)] = {m1:.2e}, E[selu(z)^2] = {m2:.8f}  (z ~ N(0, 1))")
assert abs(m1) < 1e-6 and abs(m2 - 1) < 1e-6

# %% [markdown]
# ### GELU: exact or tanh, and Swish with β = 1.702
#
# GELU is $z\,\Phi(z)$ with $\Phi$ the standard normal CDF. `jax.nn.gelu` (and so
# `layers.gelu`) uses the tanh approximation by default (`approximate=True`); PyTorch and Keras
# default to the exact erf form. The notes say GELU is roughly Swish with $\beta = 1.702$, because
# $\sigma(1.702\,z) \approx \Phi(z)$. How close, measured on $[-8, 8]$:

# %%
zz = jnp.linspace(-8.0, 8.0, 16001)


@jax.jit
def gaps(z):
    exact = layers.gelu(z, approximate=False)
    return jnp.abs(layers.gelu(z) - exact), jnp.abs(layers.swish(z, beta=1.702) - exact)


tanh_gap, swish_gap = gaps(zz)
at = float(zz[jnp.argmax(swish_gap)])
print(f"largest |gelu_tanh - gelu_exact| = {float(tanh_gap.max()):.2e}")
print(f"largest |swish(z, 1.702) - gelu_exact| = {float(swish_gap.max()):.4f}, at z = {at:.2f}")
print(f"for comparison, at z = 1: gelu = {float(layers.gelu(1.0, approximate=False)):.4f}")
assert float(tanh_gap.max()) < 1e-3 and float(swish_gap.max()) < 0.03

# %% [markdown]
# ## 5 · Dead ReLUs, and LeakyReLU/ELU as the fix
#
# A ReLU unit whose pre-activation is negative for *every* training example outputs 0 everywhere
# and gets zero gradient: nothing can move its weights any more, it is **dead**. A large step can
# push a unit there in one update. The experiment: a 3-hidden-layer MLP (64 units each) trained
# with Adam (chapter 06; its steps are bounded by the learning rate, so large rates kill units
# without the loss becoming NaN) at five learning rates, with ReLU, LeakyReLU (slope 0.01) and
# ELU. After every epoch we count the hidden units that are never active ($h \le 0$) on the whole
# training set. One compiled program for all 15 runs: `models.mlp(activation=("relu",
# "leaky_relu", "elu"))` picks the activation with a traced index, swept like the learning rate.

# %%
print(
    "sizes",
    demo.DEAD["sizes"],
    "| Adam, learning rates",
    demo.DEAD["lrs"],
    "| activations",
    demo.DEAD["activations"],
)
dead = experiments["dead"].result()  # demo.dead_unit_sweep(ds), started in the first cell
rows = [
    "| lr | " + " | ".join(f"{a}: never active / test acc" for a in dead["activations"]) + " |",
    "|---|" + "---|" * len(dead["activations"]),
]
for j, lr in enumerate(dead["lrs"]):
    cells = [f"{dead['dead'][a, j, -1]:.0%} / {dead['test_acc'][a, j, -1]:.2f}" for a in range(3)]
    rows.append(f"| {lr:.3g} | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))
relu, leaky, elu = 0, 1, 2
big, large_lr = dead["lrs"] >= 0.03, dead["lrs"] >= 0.1
leaky_better = bool(
    np.all(dead["dead"][leaky, big, -1] < dead["dead"][relu, big, -1])
    and np.all(dead["test_acc"][leaky, large_lr, -1] > dead["test_acc"][relu, large_lr, -1] + 0.1)
)
print(
    "LeakyReLU has fewer never-active units than ReLU for lr >= 0.03, and a test accuracy",
    "at least 0.1 higher for lr >= 0.1:",
    leaky_better,
)
assert leaky_better
print(
    f"ReLU at lr {dead['lrs'][-2]:.3g}: {dead['dead'][relu, -2, -1]:.0%} never active; "
    f"ELU {dead['dead'][elu, -2, -1]:.0%} with test acc {dead['test_acc'][elu, -2, -1]:.2f}"
)

# %%
small_lr = dead["lrs"] <= 0.01
moderate = int(np.argmin(np.abs(dead["lrs"] - 0.0316)))
print(
    "lr <= 0.01, every activation, never active at the end <= 5%:",
    bool(np.all(dead["dead"][:, small_lr, -1] <= 0.05)),
)
print(
    "lr >= 0.1, ReLU never active after the first epoch > 40%:",
    bool(np.all(dead["dead"][relu, large_lr, 1] > 0.4)),
)
print(
    "lr >= 0.1, ReLU never active at the end > 50%:",
    bool(np.all(dead["dead"][relu, large_lr, -1] > 0.5)),
)
elu_moderate = dead["dead"][elu, moderate, -1] < dead["dead"][relu, moderate, -1]
print(
    f"lr {dead['lrs'][moderate]:.3g}: ELU has fewer never-active units than ReLU:",
    bool(elu_moderate),
)
print(
    "lr >= 0.1: ELU test accuracy below 0.5:",
    bool(np.all(dead["test_acc"][elu, large_lr, -1] < 0.5)),
)
assert np.all(dead["dead"][:, small_lr, -1] <= 0.05) and np.all(
    dead["dead"][relu, large_lr, 1] > 0.4
)
assert np.all(dead["dead"][relu, large_lr, -1] > 0.5) and elu_moderate
assert np.all(dead["test_acc"][elu, large_lr, -1] < 0.5)

# %%
panel_dead = demo.dead_units_panel(dead, lr=0.1)
panel_dead

# %% [markdown]
# What to notice: at small learning rates almost no unit dies, whatever the activation. As the
# rate grows, ReLU loses a large share of its units in the first epoch and keeps most of them
# dead: a dead unit gets no gradient through its own weights, and can only come back if the
# layers below change its inputs. LeakyReLU's units stay trainable and the network keeps
# learning. ELU keeps more of its units alive at moderate rates, but not the accuracy at the
# largest ones (see the table): for very negative inputs its slope $e^z$ is nearly 0 too. Which of
# ReLU and ELU is more accurate at a moderate rate is not stable (two processors that round the
# same sums differently already disagree), so no sentence here rests on it. The checks above the
# panel hold each of these sentences to the numbers. The other fix is a smaller learning rate.
#
# ## 6 · SELU normalizes itself — under three conditions
#
# Klambauer et al. show that in a plain stack of dense SELU layers the mean and variance of the
# activations are pulled towards (0, 1), layer after layer, *if* the weights are LeCun normal (and
# the notes add: the inputs standardized, and no ordinary dropout). 100 layers of 100 units, in
# training mode, one compiled program for every condition (`demo.selu_moments`):

# %%
x_std = ds.x_train[:1000]
x_raw = data.digits().x_train[:1000] * 16  # the original pixel values 0..16
conditions = {
    "standardized inputs, LeCun": demo.selu_moments(x_std),
    "raw pixels 0..16, LeCun": demo.selu_moments(x_raw),
    "standardized inputs, He": demo.selu_moments(x_std, init="he"),
    "LeCun + dropout 0.1": demo.selu_moments(x_std, dropout="dropout"),
    "LeCun + alpha dropout 0.1": demo.selu_moments(x_std, dropout="alpha_dropout"),
}
rows = ["| condition | mean, layers 1 / 10 / 100 | std, layers 1 / 10 / 100 |", "|---|---|---|"]
for name, (m, s) in conditions.items():
    rows.append(
        f"| {name} | {m[0]:.2f} / {m[9]:.2f} / {m[99]:.2f} | {s[0]:.2f} / {s[9]:.2f} / {s[99]:.3g} |"
    )
display(Markdown("\n".join(rows)))
fig, (ax_m, ax_s) = viz.figure(2)
for name, (m, s) in conditions.items():
    ax_m.plot(np.arange(1, 101), m, label=name)
    ax_s.plot(np.arange(1, 101), s, label=name)
ax_m.set_ylim(-1, 2)
ax_s.set_yscale("log")
ax_m.set_ylabel("mean of layer output")
ax_s.set_ylabel("std of layer output")
for ax in (ax_m, ax_s):
    ax.set_xlabel("layer")
ax_s.legend(fontsize=7)
viz.show(fig)

m, s = conditions["standardized inputs, LeCun"]
print(
    f"standardized + LeCun: |mean| <= {np.abs(m).max():.3f}, std in [{s.min():.3f}, {s.max():.3f}] over 100 layers"
)
assert np.abs(m).max() < 0.1 and np.abs(s - 1).max() < 0.1
m, s = conditions["raw pixels 0..16, LeCun"]
back = int(np.argmax((np.abs(m) < 0.1) & (np.abs(s - 1) < 0.1))) + 1
print(f"raw pixels: layer 1 std {s[0]:.2f}; mean and std within 0.1 of (0, 1) from layer {back} on")
assert s[0] > 2 and back < 30 and np.abs(s[back - 1 :] - 1).max() < 0.15
s_he = conditions["standardized inputs, He"][1]
s_do = conditions["LeCun + dropout 0.1"][1]
s_ad = conditions["LeCun + alpha dropout 0.1"][1]
print(
    f"He: std at layer 100 = {s_he[-1]:.3g};  dropout: {s_do[-1]:.3f};  alpha dropout: {s_ad[-1]:.3f}"
)
assert s_he[-1] > 10 and abs(s_do[-1] - 1) > 0.15 and np.abs(s_ad - 1).max() < 0.05

# %% [markdown]
# What to notice: with LeCun weights the stack holds mean 0 and standard deviation 1 for 100
# layers. **He** weights break it (the standard deviation grows layer after layer). **Ordinary dropout** breaks
# it too: zeroing units and scaling the survivors by $1/(1-p)$ keeps the mean but raises the
# variance, and SELU settles at a different, larger standard deviation. **Alpha dropout**
# (`layers.alpha_dropout`) sets dropped units to SELU's saturation value $-\lambda\alpha$ and
# applies the affine map that restores mean 0 and variance 1, and the stack stays normalized. The
# notes' first condition, standardized inputs, is the mildest here: raw pixel values push the
# first layers off, and the fixed point pulls them back within the number of layers printed above
# — in training, those first layers would still see badly scaled inputs.
#
# ## 7 · Gradient clipping: by value or by norm
#
# The notes' example: the gradient $[0.9, 100.0]$ points almost along the second axis. Clipping
# *by value* at 1.0 (Keras `clipvalue=1.0`, `optim.clip(1.0)`) gives $[0.9, 1.0]$, which points
# along the diagonal; clipping *by norm* at 1.0 (`optim.clip_by_global_norm(1.0)`) rescales the
# whole vector and keeps its direction.

# %%
g = jnp.array([0.9, 100.0])
by_value, _ = optim.clip(1.0).update(g, optim.clip(1.0).init(g))
by_norm, _ = optim.clip_by_global_norm(1.0).update(g, optim.clip_by_global_norm(1.0).init(g))
turn_value, turn_norm = demo.angle_deg(g, by_value), demo.angle_deg(g, by_norm)
print(
    f"by value: {np.asarray(by_value)}  norm {float(jnp.linalg.norm(by_value)):.4f}  direction changed by {turn_value:.2f} degrees"
)
print(
    f"by norm:  {np.round(np.asarray(by_norm), 5)}  norm {float(jnp.linalg.norm(by_norm)):.4f}  direction changed by {turn_norm:.2f} degrees"
)
assert np.allclose(by_value, [0.9, 1.0]) and turn_value > 40 and turn_norm < 1e-3

# %% [markdown]
# **Global or per variable?** A network has many parameter arrays. `clip_by_global_norm` (optax,
# lessonlib, Keras's `global_clipnorm`) uses the norm of *all* of them together,
# $\sqrt{\sum_\ell \|g_\ell\|^2}$, and scales every array by the same factor. Keras's `clipnorm`
# clips each variable by its own norm — which changes the direction of the full gradient again:

# %%
grads = {"w": jnp.array([0.9, 100.0]), "b": jnp.array([3.0])}
flat = lambda tree: jnp.concatenate([tree["b"], tree["w"]])  # noqa: E731
global_clip, _ = optim.clip_by_global_norm(1.0).update(grads, None)
per_leaf = {k: v * jnp.minimum(1.0, 1.0 / jnp.linalg.norm(v)) for k, v in grads.items()}
print(
    f"global norm {float(optim.global_norm(grads)):.3f}: clipped direction changed by {demo.angle_deg(flat(grads), flat(global_clip)):.3f} degrees"
)
print(
    f"per variable: clipped direction changed by {demo.angle_deg(flat(grads), flat(per_leaf)):.2f} degrees"
)
assert (
    demo.angle_deg(flat(grads), flat(global_clip))
    < 1e-3
    < demo.angle_deg(flat(grads), flat(per_leaf))
)

# %% [markdown]
# ### Clipping rescues a network whose gradients explode
#
# The same 8-layer network as in section 3, but its He weights multiplied by 1.5: every layer now
# amplifies the signal and the gradient, and plain SGD at learning rate 0.1 blows up within the
# first epoch. `train_deep` trains it with SGD after `clip_by_global_norm` at 11 thresholds from
# 0.1 to 100 and once without clipping (threshold $\infty$) — the same compiled program as the
# initializer race (the count of new compilations is printed).

# %%
print(f"He weights x {demo.CLIP_GAIN}, SGD lr {demo.CLIP_LR}, thresholds {demo.THRESHOLDS} and inf")
clip_run, compiled = experiments["clipping"].result()  # demo.clipping_sweep(ds), in the background
print("training programs compiled for the 12 clipping runs:", compiled)
assert compiled == 0
h = clip_run.history
diverged = clip_run.diverged_at()
best = int(np.nanargmax(h["test_acc"][:-1, -1]))
print(
    f"no clipping: diverged (NaN) in epoch {diverged[-1]}, final test acc {h['test_acc'][-1, -1]:.3f}"
)
first_nan = int(np.argmax(~np.isfinite(h["batch_loss"][-1].ravel()))) + 1
print(f"no clipping: the minibatch loss is NaN from step {first_nan} on")
assert first_nan <= 10
print(f"best threshold {demo.THRESHOLDS[best]:.3g}: final test acc {h['test_acc'][best, -1]:.3f}")
print(
    f"smallest threshold {demo.THRESHOLDS[0]:.3g}: final test acc {h['test_acc'][0, -1]:.3f} (steps too short)"
)
print(
    "thresholds that diverged:",
    [t for t, d in zip(demo.THRESHOLDS, diverged[:-1], strict=True) if d],
)
assert diverged[-1] == 1 and not diverged[:-1].any()
assert h["test_acc"][best, -1] > 0.9 and h["test_acc"][0, -1] < h["test_acc"][best, -1] - 0.2

# %%
panel_clipping = demo.clipping_panel(clip_run, threshold=3.981)
panel_clipping

# %% [markdown]
# What to notice: without clipping the loss is NaN within the first steps (printed above). Any threshold
# keeps training finite, but too small a threshold makes every step short and training slow; an
# intermediate threshold trains best (printed above; move the slider). Clipping treats the
# symptom: here the cause is the initialization (section 2 says what the variance of each layer
# should be). In recurrent networks, where batch normalization is awkward, clipping is the
# standard remedy (Pascanu et al. 2013).
#
# ## Exercises
#
# ### Exercise 1 — the variance-scaling initializer
#
# Write `variance_scaling(key, fan_in, fan_out, scale=1.0, mode="fan_in",
# distribution="truncated_normal")` returning a `(fan_in, fan_out)` float32 matrix with
# $\mathrm{Var}(w) = \text{scale}/\text{fan}$, where fan is `fan_in`, `fan_out` or
# `(fan_in + fan_out) / 2` for `mode` `"fan_in"`, `"fan_out"`, `"fan_avg"`, and `distribution` is
# `"normal"`, `"truncated_normal"` (cut at ±2 standard deviations, variance corrected) or
# `"uniform"`. Draw only from `key`. Raise `ValueError` for an unknown mode or distribution and for
# `scale <= 0`. The check draws 150,000 weights per case and tests the variance, the shape of the
# distribution and the key.


# %% [solution] id=ex05-variance-scaling
def variance_scaling(
    key, fan_in, fan_out, scale=1.0, mode="fan_in", distribution="truncated_normal"
):
    """Keras's VarianceScaling: Var(w) = scale / fan."""
    ### BEGIN SOLUTION
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "uniform"):
        raise ValueError(
            f"distribution must be normal, truncated_normal or uniform, got {distribution!r}"
        )
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / fan)
    shape = (fan_in, fan_out)
    if distribution == "normal":
        return std * jax.random.normal(key, shape)
    if distribution == "truncated_normal":
        return std / 0.87962566103423978 * jax.random.truncated_normal(key, -2.0, 2.0, shape)
    limit = math.sqrt(3) * std
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)
    ### END SOLUTION


# %% [tests] id=ch05-test-variance-scaling points=3
check("05.variance_scaling", variance_scaling)
### BEGIN HIDDEN TESTS
check("05.variance_scaling", variance_scaling, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — `clip_by_global_norm` on a pytree
#
# Write `clip_by_global_norm(grads, max_norm)`: `grads` is a pytree (nested dicts and lists of
# arrays); if the global norm $\sqrt{\sum_\ell \|g_\ell\|^2}$ over *all* leaves exceeds `max_norm`,
# scale every leaf by `max_norm / norm`, otherwise return the gradients unchanged. Keep the
# structure, never produce NaN (all-zero gradients are a valid input), and raise `ValueError` for
# `max_norm <= 0`.


# %% [solution] id=ex05-clip-by-global-norm
def clip_by_global_norm(grads, max_norm):
    """Rescale the whole gradient pytree to norm <= max_norm, keeping its direction."""
    ### BEGIN SOLUTION
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    factor = max_norm / jnp.maximum(norm, max_norm)  # 1 when norm <= max_norm
    return jax.tree.map(lambda g: g * factor, grads)
    ### END SOLUTION


# %% [tests] id=ch05-test-clip-by-global-norm points=2
check("05.clip_by_global_norm", clip_by_global_norm)
### BEGIN HIDDEN TESTS
check("05.clip_by_global_norm", clip_by_global_norm, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — SELU
#
# Write `selu(x)` elementwise: $\lambda x$ for $x > 0$ and $\lambda\alpha(e^x - 1)$ otherwise, with
# $\alpha = 1.6732632423543772$ and $\lambda = 1.0507009873554805$. It must also be safe to
# differentiate: `jax.grad` at $x = 100$ must be finite (see Sharp bits).


# %% [solution] id=ex05-selu
def selu(x):
    ### BEGIN SOLUTION
    alpha, lam = 1.6732632423543772, 1.0507009873554805
    negative = jnp.minimum(x, 0.0)  # exp never sees a large positive x
    return lam * jnp.where(x > 0, x, alpha * jnp.expm1(negative))
    ### END SOLUTION


# %% [tests] id=ch05-test-selu points=2
check("05.selu", selu)
### BEGIN HIDDEN TESTS
check("05.selu", selu, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 — the fraction of dead units
#
# Write `dead_fraction(h)`: `h` holds a ReLU layer's outputs over the whole training set, with the
# units on the last axis and the examples on all the other axes (e.g. `(examples, units)` or
# `(batches, batch_size, units)`). Return the fraction of units that are never active, i.e. whose
# output is 0 for every example.


# %% [solution] id=ex05-dead-fraction
def dead_fraction(h):
    ### BEGIN SOLUTION
    units = h.reshape(-1, h.shape[-1])  # every example of every batch, units last
    return jnp.mean(~jnp.any(units > 0, axis=0))
    ### END SOLUTION


# %% [tests] id=ch05-test-dead-fraction points=2
check("05.dead_fraction", dead_fraction)
### BEGIN HIDDEN TESTS
check("05.dead_fraction", dead_fraction, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## Sharp bits
#
# - **`jnp.where` and NaN gradients.** `jnp.where(x > 0, x, jnp.exp(x) - 1)` evaluates both
#   branches; at $x = 100$ `exp` overflows to inf and the backward pass computes $0\cdot\infty =$
#   NaN even though the forward value is fine. Feed `exp` only what it can take
#   (`jnp.minimum(x, 0)`), as `layers.elu` and `jax.nn.elu` do.
# - **"normal" initializers are often truncated.** Keras's `he_normal`/`glorot_normal`/
#   `lecun_normal` and `jax.nn.initializers.he_normal` etc. draw from a truncated normal with
#   the 0.8796 correction; `models.variance_scaling(dist="normal")` is a plain normal. PyTorch's
#   `nn.init.trunc_normal_(std=s)` cuts at the absolute values $a=-2$, $b=2$, not at $\pm2s$, and
#   does not correct $s$.
# - **Glorot = LeCun for square layers** (fan_avg = fan_in when $n_{in} = n_{out}$).
# - **`clipnorm` vs `global_clipnorm`.** Keras's `clipnorm` clips each variable by its own norm
#   and changes the direction of the update; `optax.clip_by_global_norm` and lessonlib's clip the
#   global norm.
# - **LeakyReLU's slope has three defaults:** 0.01 in `jax.nn`/PyTorch/lessonlib; 0.3 in Keras's
#   `LeakyReLU` layer (`alpha` in Keras 2 — the notes' comment — `negative_slope` in Keras 3);
#   0.2 in the function `keras.activations.leaky_relu`.
# - **GELU's default form differs:** `jax.nn.gelu(approximate=True)` is the tanh form, PyTorch and
#   Keras default to the exact erf form (the gap is printed in section 4).
# - **SELU's guarantees are for plain dense stacks** with LeCun normal weights and alpha dropout;
#   the notes also list ℓ1/ℓ2 penalties, max-norm and batch norm as incompatible (not measured
#   here). Unusual inputs only disturb the first layers of the stack measured above.
# - **Speed-ups are measurements, not constants** (erratum 10): re-run the race for your network.
# - **Dead units are invisible in the loss curve**: count them (`dead_fraction`) when a ReLU
#   network stalls at a large learning rate.
#
# ## References
#
# - X. Glorot, Y. Bengio. *Understanding the difficulty of training deep feedforward neural
#   networks.* AISTATS 2010.
# - K. He, X. Zhang, S. Ren, J. Sun. *Delving Deep into Rectifiers: Surpassing Human-Level
#   Performance on ImageNet Classification.* ICCV 2015.
# - Y. LeCun, L. Bottou, G. Orr, K.-R. Müller. *Efficient BackProp.* 1998.
# - G. Klambauer, T. Unterthiner, A. Mayr, S. Hochreiter. *Self-Normalizing Neural Networks.*
#   NeurIPS 2017.
# - D.-A. Clevert, T. Unterthiner, S. Hochreiter. *Fast and Accurate Deep Network Learning by
#   Exponential Linear Units (ELUs).* ICLR 2016.
# - A. L. Maas, A. Y. Hannun, A. Y. Ng. *Rectifier Nonlinearities Improve Neural Network Acoustic
#   Models.* ICML 2013 (leaky ReLU).
# - D. Hendrycks, K. Gimpel. *Gaussian Error Linear Units (GELUs).* 2016.
# - P. Ramachandran, B. Zoph, Q. V. Le. *Searching for Activation Functions.* 2017 (Swish).
# - D. Misra. *Mish: A Self Regularized Non-Monotonic Activation Function.* 2019.
# - R. Pascanu, T. Mikolov, Y. Bengio. *On the difficulty of training recurrent neural networks.*
#   ICML 2013.
# - A. Géron. *Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow*, chapter 11, and
#   the notes on it, "Deep Neural Networks参数配置" ([the sources](../sources.md)).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | vanishing gradients | 梯度消失 | gradients shrink layer by layer towards the inputs |
# | exploding gradients | 梯度爆炸 | gradients grow layer by layer until updates diverge |
# | initialization | 初始化 | how the weights are drawn before training |
# | variance scaling | 方差缩放 | Var(w) = scale / fan |
# | fan-in / fan-out / fan-avg | 扇入 / 扇出 / 平均扇数 | inputs, outputs, their average, of a layer |
# | Glorot (Xavier) initialization | Glorot（Xavier）初始化 | Var(w) = 1 / fan_avg |
# | He initialization | He 初始化 | Var(w) = 2 / fan_in, for ReLU |
# | LeCun initialization | LeCun 初始化 | Var(w) = 1 / fan_in, for SELU |
# | truncated normal | 截断正态分布 | normal with values beyond ±2 sd redrawn |
# | uniform distribution | 均匀分布 | U(-a, a), variance a²/3 |
# | activation function | 激活函数 | the nonlinearity after each dense layer |
# | saturation | 饱和 | the flat region where the derivative is near 0 |
# | dead (dying) ReLU | 死亡 ReLU | a unit that outputs 0 on every example and gets no gradient |
# | leaky ReLU | 带泄漏的 ReLU | small slope for negative inputs |
# | ELU / SELU | 指数线性单元 / 缩放指数线性单元 | smooth, saturating negative branch; SELU scaled to self-normalize |
# | self-normalizing network | 自归一化网络 | activations stay at mean 0, variance 1 layer after layer |
# | alpha dropout | Alpha Dropout | dropout that keeps mean and variance for SELU |
# | GELU / Swish (SiLU) / Mish | GELU / Swish（SiLU）/ Mish | smooth ReLU-like activations |
# | gradient clipping | 梯度裁剪 | limit the gradient before the update |
# | clip by value / by norm | 按值裁剪 / 按范数裁剪 | per coordinate / rescale the whole vector |
# | global norm | 全局范数 | the norm of all parameter gradients together |

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s")
