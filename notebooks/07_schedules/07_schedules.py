# %% [markdown]
# # 07 · Learning-rate schedules
#
# The learning rate $\eta$ is the one hyperparameter you always tune. Too small and training
# crawls; too large and it diverges — and in between, with minibatch noise, SGD never settles:
# it rattles around the minimum in a "noise ball" whose size grows with $\eta$. A **schedule**
# changes $\eta$ during training: large while far from a minimum, small near it.
#
# The notes on Géron's chapter 11 ("the Géron notes": notes in Chinese on A. Géron's *Hands-On
# Machine Learning*, ch. 11; section 四, 学习率的选择) list the standard recipes from the book:
# power, exponential and piecewise-constant scheduling, performance scheduling (reduce on
# plateau), 1cycle, and the learning-rate range test ("finder"). Their author writes of 1cycle
# "没咋弄懂...抄书上代码" (did not quite get it, copied the book's code) — this chapter takes each
# one apart.
#
# **You will:** see the noise ball and derive its size; plot every schedule next to its formula
# and check it numerically; plug schedules into an optimizer and step them per batch (and see
# what goes wrong per epoch); run the LR finder as a pure function; race 1cycle against constant
# and exponential schedules on the same budget; shape a schedule with sliders; and solve four
# graded exercises.
#
# [The course's sources](../sources.md) says what the Géron notes and the course's other documents
# are, and where each of their mistakes is corrected.

# %%
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import data, lr_finder, models, optim, schedules, train, viz
from lessonlib.demos import ch07_schedules as demo
from lessonlib.exercises import check

notebook_start = time.perf_counter()
print("JAX", jax.__version__, "running on", jax.devices())

# %% [markdown]
# ## 1 · Why decay at all: the noise ball
#
# Take a 2-D least-squares problem, $\ell(w) = \frac1{2N}\sum_i (x_i^\top w - y_i)^2$, with noisy
# targets, and run minibatch SGD (batch 4) from the same start with the same batches three times:
# a large constant rate, a small constant rate, and the large rate decayed exponentially
# ($\eta_t = 0.5\cdot 0.1^{t/300}$). Only the learning rate differs.

# %%
rng = np.random.default_rng(0)
N_NB, STEPS_NB = 512, 600
X_nb = (rng.standard_normal((N_NB, 2)) * [1.0, 0.5]).astype(np.float32)  # an elongated bowl
y_nb = (X_nb @ np.array([1.0, -0.5]) + 0.5 * rng.standard_normal(N_NB)).astype(np.float32)
w_star = np.linalg.lstsq(X_nb, y_nb, rcond=None)[0]  # the minimizer of the full loss
X_nb_j, y_nb_j = jnp.asarray(X_nb), jnp.asarray(y_nb)


def nb_loss(w, x, y):
    return 0.5 * jnp.mean((x @ w - y) ** 2)


@jax.jit
def sgd_path(lr_per_step, key):
    """All iterates of SGD (batch 4) from w0 = (-2, 2); lr_per_step[t] is the rate of step t."""
    idx = jax.random.randint(key, (STEPS_NB, 4), 0, N_NB)

    def step(w, xs):
        i, lr = xs
        w = w - lr * jax.grad(nb_loss)(w, X_nb_j[i], y_nb_j[i])
        return w, w

    _, path = jax.lax.scan(step, jnp.array([-2.0, 2.0]), (idx, lr_per_step))
    return path


t_nb = jnp.arange(STEPS_NB)
nb_rates = {
    "constant 0.5": jnp.full(STEPS_NB, 0.5),
    "constant 0.01": jnp.full(STEPS_NB, 0.01),
    "exponential 0.5 -> 0.005": schedules.exponential_decay(0.5, s=300)(t_nb),
}
# the same key for every rate on purpose: the same minibatches, so only the rate differs
nb_paths = {name: np.asarray(sgd_path(r, jax.random.key(0))) for name, r in nb_rates.items()}
nb_final = {
    name: float(np.linalg.norm(p[-100:] - w_star, axis=1).mean()) for name, p in nb_paths.items()
}
for name, d in nb_final.items():
    print(f"{name:>26}: mean distance to w* over the last 100 steps = {d:.4f}")

# %%
fig, (ax_w, ax_d) = viz.figure(2, height=3.4)
g1, g2 = np.meshgrid(np.linspace(-2.5, 2.0, 80), np.linspace(-1.5, 2.5, 80))
W = np.stack([g1.ravel(), g2.ravel()], 1)
L = 0.5 * np.mean((X_nb @ W.T - y_nb[:, None]) ** 2, axis=0).reshape(g1.shape)
ax_w.contour(
    g1, g2, L, levels=np.geomspace(L.min() + 1e-3, L.max(), 12), colors="0.8", linewidths=0.7
)
colors = ["#d62728", "#1f77b4", "#2ca02c"]
for (name, p), c in zip(nb_paths.items(), colors, strict=True):
    ax_w.plot(p[:, 0], p[:, 1], color=c, lw=0.6, alpha=0.6)
    ax_w.scatter(p[-150:, 0], p[-150:, 1], color=c, s=3, label=name)
    ax_d.plot(np.linalg.norm(p - w_star, axis=1), color=c, lw=0.8, label=name)
ax_w.plot(*w_star, "k*", ms=10)
ax_w.set(xlabel="$w_1$", ylabel="$w_2$", title="SGD iterates (dots: last 150 steps)")
ax_w.legend(fontsize=7, loc="upper right")
ax_d.set(yscale="log", xlabel="step", ylabel="$\\|w_t - w^*\\|$", title="distance to the minimum")
viz.show(fig)

# %% [markdown]
# **What to notice.** The large constant rate reaches the minimum's neighbourhood fastest, then
# keeps jumping around inside a cloud — the *noise ball*: each minibatch gradient points at that
# batch's minimum, not the full loss's. The small rate has a small ball but has not yet arrived
# along the flat direction $w_2$ after 600 steps. The decayed rate gets both: fast travel first,
# then a ball that shrinks as $\eta$ does (the distances printed above).
#
# **How big is the ball?** One coordinate, curvature $h$, a gradient with noise of variance
# $\sigma^2$: $g_t = h w_t + \sigma\xi_t$ with $\xi_t \sim \mathcal N(0, 1)$ (minimum at 0). Then
# $$w_{t+1} = w_t - \eta g_t = (1 - \eta h)\, w_t - \eta\sigma\xi_t,
# \qquad v_{t+1} = (1-\eta h)^2 v_t + \eta^2\sigma^2$$
# for the variance $v_t = \mathbb E[w_t^2]$ (the noise is independent of $w_t$). Its fixed point is
# $$v_\infty = \frac{\eta^2\sigma^2}{1 - (1-\eta h)^2} = \frac{\eta\,\sigma^2}{h\,(2 - \eta h)}
# \approx \frac{\eta\,\sigma^2}{2h}\quad(\eta h \ll 1).$$
# The ball's radius $\sqrt{v_\infty}$ grows like $\sqrt\eta$, while the time to get there,
# $\sim 1/(\eta h)$ steps, shrinks like $1/\eta$. No constant rate wins both; a decaying one does
# (Bottou, Curtis & Nocedal 2018, Thm. 4.6). Numeric check: 2,000 independent chains, 2,000 steps.


# %%
@jax.jit
def stationary_variance(eta, key, h=1.0, sigma=1.0):
    def step(w, k):
        return (1 - eta * h) * w - eta * sigma * jax.random.normal(k, w.shape), None

    w, _ = jax.lax.scan(step, jnp.zeros(2000), jax.random.split(key, 2000))
    return jnp.mean(w**2)


etas = jnp.array([0.2, 0.05, 0.0125])
v_sim = jax.vmap(stationary_variance, in_axes=(0, None))(etas, jax.random.key(1))
v_formula = etas / (1.0 * (2 - etas * 1.0))
for e, vs, vf in zip(etas, v_sim, v_formula, strict=True):
    print(f"eta = {float(e):<7}: simulated variance {float(vs):.5f}, formula {float(vf):.5f}")
assert jnp.allclose(v_sim, v_formula, rtol=0.1)

# %%
# NBVAL_CHECK_OUTPUT
print(
    "variance matches eta*sigma^2 / (h(2 - eta*h)) within 10%:",
    bool(jnp.allclose(v_sim, v_formula, rtol=0.1)),
)
print("quartering eta roughly quarters the variance:", bool(jnp.all(v_sim[1:] / v_sim[:-1] < 0.3)))
print(
    "decayed rate ends closest to w*:",
    min(nb_final, key=nb_final.get) == "exponential 0.5 -> 0.005",
)
print(
    "small constant rate still farther away than the large one:",
    nb_final["constant 0.01"] > nb_final["constant 0.5"],
)
# OUTPUT: variance matches eta*sigma^2 / (h(2 - eta*h)) within 10%: True
# OUTPUT: quartering eta roughly quarters the variance: True
# OUTPUT: decayed rate ends closest to w*: True
# OUTPUT: small constant rate still farther away than the large one: True

# %% [markdown]
# ## 2 · The schedules
#
# A schedule is a function of the optimizer's step counter $t$ — one step per **batch** —
# returning the rate for that step. In `lessonlib.schedules` each one is built once (arguments
# are checked then) and returns a closure whose body uses `jnp` only, so it runs inside `jit` and
# `lax.scan` and can be handed to an optimizer as its `learning_rate`, exactly as in optax.
#
# | schedule | formula | Keras (the Géron notes) |
# |---|---|---|
# | power | $\eta(t) = \eta_0 / (1 + t/s)^c$ | `InverseTimeDecay(eta0, decay_steps=s, decay_rate=1)` ($c=1$) |
# | exponential | $\eta(t) = \eta_0 \cdot 0.1^{t/s}$ | `ExponentialDecay(eta0, decay_steps=s, decay_rate=0.1)` |
# | piecewise constant | $\eta(t) = v_i$ for $b_{i-1} \le t < b_i$ | `PiecewiseConstantDecay(boundaries, values)` |
# | 1cycle | linear $\eta_0 \to \eta_1 \to \eta_0$, then far below $\eta_0$ | Géron's `OneCycleScheduler` callback |
# | cosine | $\eta(t) = \eta_0\,\tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big)$ | `CosineDecay(eta0, decay_steps=T)` |
# | linear warm-up | $\eta_1 t/w$ for $t < w$, then another schedule | optax `warmup_cosine_decay_schedule` |
#
# Power scheduling halves the rate after $s$ steps (for $c = 1$), then decays ever more slowly;
# exponential scheduling divides it by 10 every $s$ steps; piecewise constant is the "drop by 10×
# at epochs 30 and 60" recipe. Below, 1,000 steps of each.
#
# > **Myth** (a mistranslation in the Géron notes): power scheduling is "功率调度".
# > **Fact:** 功率 is *physical* power, energy per unit time. The "power" here is an exponent —
# > $\eta_0 (1 + t/s)^{-c}$ is a power law of the step — so the term is **幂调度** (power-law or
# > inverse-time decay, 逆时衰减). [The course's sources](../sources.md) lists this erratum.

# %%
T_DEMO = 1000
t_demo = jnp.arange(T_DEMO + 1)
zoo = {
    "power, s=100, c=1": schedules.power_decay(0.1, s=100),
    "power, s=100, c=2": schedules.power_decay(0.1, s=100, c=2),
    "exponential, s=500": schedules.exponential_decay(0.1, s=500),
    "piecewise [300, 700]": schedules.piecewise_constant([300, 700], [0.1, 0.05, 0.01]),
}
fig, axes = viz.figure(2)
for name, sched in zoo.items():
    axes[0].plot(t_demo, sched(t_demo), label=name)  # schedules are elementwise
axes[0].set(yscale="log", xlabel="step t", ylabel="learning rate", title="decaying schedules")
axes[0].legend(fontsize=7)
one = schedules.one_cycle(T_DEMO, 0.1)
mom = schedules.one_cycle_momentum(T_DEMO)
axes[1].plot(t_demo, one(t_demo), color="#9467bd", label="learning rate")
axes[1].set(yscale="log", xlabel="step t", ylabel="learning rate", title="1cycle (max 0.1)")
ax_m = axes[1].twinx()
ax_m.plot(t_demo, mom(t_demo), color="#8c564b", ls="--", label="momentum")
ax_m.set_ylabel("momentum")
axes[1].legend(loc="lower left", fontsize=7)
ax_m.legend(loc="lower center", fontsize=7)
viz.show(fig)

# %% [markdown]
# **What to notice.** On a log axis exponential decay is a straight line; power decay bends — fast
# at first, then a long, slowly falling tail (faster for $c = 2$); piecewise constant drops in
# steps. 1cycle is the only schedule that *rises* first, and its momentum (dashed) moves the other
# way. The formulas are checked numerically below.
#
# **1cycle** (Smith 2018) in three linear phases over $T$ steps, with $b_1 = \lfloor 0.45\,T\rfloor$,
# $b_2 = \lfloor 0.9\,T\rfloor$ (two equal halves of 90% of the steps — *about* the split of
# Géron's `OneCycleScheduler`, which rounds differently; checked below):
# $$\eta(t) = \begin{cases}
# \eta_0 + (\eta_1 - \eta_0)\,t/b_1 & 0 \le t < b_1 \quad\text{(warm-up)}\\
# \eta_1 + (\eta_0 - \eta_1)\,(t - b_1)/(b_2 - b_1) & b_1 \le t < b_2\\
# \eta_0 + (\eta_f - \eta_0)\,(t - b_2)/(T - b_2) & b_2 \le t \le T \quad\text{(annihilation)}
# \end{cases}$$
# with $\eta_0 = \eta_1/10$ and $\eta_f = \eta_0/1000$. The high middle phase acts as a
# regularizer and moves fast; the final phase shrinks the noise ball. Momentum runs the other way,
# 0.95 → 0.85 → 0.95, so that the effective step $\eta/(1-\beta)$ does not explode at the peak.
#
# Numeric checks of every formula above at a few steps (library value vs. the formula in numpy):


# %%
def close(name, got, want):
    ok = bool(np.allclose(float(got), want, rtol=1e-5))
    print(f"{name:<44} library {float(got):.6g}   formula {want:.6g}   {ok}")
    return ok


b1, b2 = int(0.45 * T_DEMO), int(0.9 * T_DEMO)
checks = [
    close("power c=1 at t=s: eta0/2", zoo["power, s=100, c=1"](100), 0.1 / 2),
    close("power c=2 at t=3s: eta0/4^2", zoo["power, s=100, c=2"](300), 0.1 / 16),
    close("exponential at t=s: eta0/10", zoo["exponential, s=500"](500), 0.01),
    close("exponential at t=250: eta0*0.1^0.5", zoo["exponential, s=500"](250), 0.1 * 0.1**0.5),
    close("piecewise at t=299", zoo["piecewise [300, 700]"](299), 0.1),
    close("piecewise at t=300 (new value AT boundary)", zoo["piecewise [300, 700]"](300), 0.05),
    close("1cycle at t=0: max/10", one(0), 0.01),
    close("1cycle at t=b1/2: halfway up", one(b1 // 2), 0.01 + 0.09 * (b1 // 2) / b1),
    close("1cycle at t=b1: max", one(b1), 0.1),
    close("1cycle at t=b2: max/10", one(b2), 0.01),
    close("1cycle at t=T: max/10/1000", one(T_DEMO), 1e-5),
    close("momentum at t=b1: 0.85", mom(b1), 0.85),
    close("cosine at t=T/2: eta0/2", schedules.cosine_decay(0.1, T_DEMO)(T_DEMO // 2), 0.05),
    close(
        "cosine at t=T/4: eta0(1+cos(pi/4))/2",
        schedules.cosine_decay(0.1, T_DEMO)(T_DEMO // 4),
        0.05 * (1 + np.cos(np.pi / 4)),
    ),
    close("warm-up 100 steps, at t=25: peak/4", schedules.linear_warmup(0.1, 100)(25), 0.025),
]
assert all(checks)

# %% [markdown]
# Géron's `OneCycleScheduler` callback (3rd ed., ch. 11) does not use $\lfloor 0.45\,T\rfloor$:
# it keeps `last_iterations = T // 10 + 1` steps for the last phase and splits the rest into two
# halves of `(T - last_iterations) // 2` steps. Its knots, written out, against ours:


# %%
def geron_knots(iterations):
    """The phase boundaries of Géron's OneCycleScheduler(iterations), from its __init__."""
    last_iterations = iterations // 10 + 1
    half_iteration = (iterations - last_iterations) // 2
    return half_iteration, 2 * half_iteration


for T_ in (100, 1000, 220):
    print(
        f"T = {T_:>4}: Géron's knots {geron_knots(T_)}, ours (floor(0.45 T), floor(0.9 T)) = "
        f"{(int(0.45 * T_), int(0.9 * T_))}"
    )
assert geron_knots(100) == (44, 88) and (int(0.45 * 100), int(0.9 * 100)) == (45, 90)
assert all(
    abs(g - o) <= 0.02 * T_
    for T_ in (100, 1000, 220)
    for g, o in zip(geron_knots(T_), (int(0.45 * T_), int(0.9 * T_)), strict=True)
)

# %% [markdown]
# Keras' `InverseTimeDecay` computes $\eta_0 / (1 + r\,t/d)$ with `decay_rate` $r$ and
# `decay_steps` $d$: that is power scheduling with $c = 1$ and $s = d/r$. The Géron
# notes' `InverseTimeDecay(0.01, decay_steps=10_000, decay_rate=1.0)` is `power_decay(0.01, s=10_000)`;
# its `ExponentialDecay(0.01, decay_steps=20_000, decay_rate=0.1)` is
# `exponential_decay(0.01, s=20_000)`. Check with Keras' documented formulas written out:

# %%
t_k = np.array([0, 5_000, 10_000, 20_000, 40_000])
keras_inverse_time = 0.01 / (1 + 1.0 * t_k / 10_000)
keras_exponential = 0.01 * 0.1 ** (t_k / 20_000)
ours_power = schedules.power_decay(0.01, s=10_000)(t_k)
ours_exp = schedules.exponential_decay(0.01, s=20_000)(t_k)
print(
    "InverseTimeDecay:",
    np.round(keras_inverse_time, 6),
    " power_decay:",
    np.round(np.asarray(ours_power), 6),
)
print(
    "ExponentialDecay:",
    np.round(keras_exponential, 6),
    " exponential_decay:",
    np.round(np.asarray(ours_exp), 6),
)
assert np.allclose(ours_power, keras_inverse_time, rtol=1e-5)
assert np.allclose(ours_exp, keras_exponential, rtol=1e-5)

# %% [markdown]
# ### Performance scheduling: reduce on plateau
#
# Géron's fourth recipe does not look at the step at all but at the *validation loss*: every
# epoch, if it has not improved for `patience` epochs, multiply $\eta$ by `factor` (the Géron notes:
# `ReduceLROnPlateau(factor=0.5, patience=5)`). Keras' exact rule, per epoch, in this order:
#
# 1. if in cooldown: `cooldown_counter -= 1`, `wait = 0`;
# 2. if `metric < best - min_delta`: `best = metric`, `wait = 0`;
# 3. otherwise, if not (still) in cooldown: `wait += 1`; when `wait >= patience` and
#    `lr > min_lr`: `lr = max(lr * factor, min_lr)`, `cooldown_counter = cooldown`, `wait = 0`.
#
# `schedules.plateau_update(state, metric, ...)` is this rule as a pure function of a small
# state (`lr`, `best`, `wait`, `cooldown_counter`), written with `jnp.where`, so it also runs
# inside `jit`/`lax.scan`. A hand-made history with `patience=2`:

# %%
history_demo = [1.0, 0.9, 0.9, 0.9, 0.85, 0.86, 0.86, 0.86, 0.86]
state = schedules.plateau_init(0.1)
print("epoch  metric  ->  lr      best   wait")
for epoch, m in enumerate(history_demo, 1):
    state = schedules.plateau_update(state, m, patience=2)
    print(
        f"{epoch:>5}  {m:<6}  ->  {float(state.lr):<6.4g}  {float(state.best):<5.3g}  {int(state.wait)}"
    )

# %% [markdown]
# Epochs 3 and 4 do not improve on 0.9: the second of them (`wait` reaches 2) halves the rate.
# Epoch 5 improves; epochs 6–7 do not, so epoch 7 halves it again.
#
# In a real run the rule sits *between* epochs, because it needs the validation loss. Here: the
# digits data (1,797 real 8×8 images, shipped with scikit-learn), a 64-64-10 MLP, SGD with batch
# 32, starting at $\eta = 1$; a quarter of the training images are held out for validation.
# Because `plateau_update` is a pure function of its state, the whole run — 40 epochs of
# minibatch steps, a validation loss and a plateau update after each epoch — is one `lax.scan`
# inside one compiled function: the plateau state is simply carried from epoch to epoch.

# %%
ds = data.digits(seed=0)
n_fit = 1077
x_fit, y_fit, x_val, y_val = (
    ds.x_train[:n_fit],
    ds.y_train[:n_fit],
    ds.x_train[n_fit:],
    ds.y_train[n_fit:],
)
model = models.mlp([64, 64, 10])
params0, _ = model.init(jax.random.key(0))


def digits_loss(params, batch):
    x, y = batch
    logits, _ = model.apply(params, {}, x, key=None, train=True, hp={})
    return train.cross_entropy(logits, y)


@jax.jit
def train_with_plateau(params, lr0, key):
    def epoch(carry, e):
        params, plateau = carry
        idx = data.epoch_batches(jax.random.fold_in(key, e), n_fit, 32)

        def sgd_step(p, i):
            grads = jax.grad(digits_loss)(p, (x_fit[i], y_fit[i]))
            return jax.tree.map(lambda w, g: w - plateau.lr * g, p, grads), None

        params, _ = jax.lax.scan(sgd_step, params, idx)
        val_loss = digits_loss(params, (x_val, y_val))
        new_plateau = schedules.plateau_update(plateau, val_loss, factor=0.5, patience=5)
        return (params, new_plateau), (val_loss, plateau.lr)  # the rate this epoch trained with

    _, (val_losses, lrs) = jax.lax.scan(
        epoch, (params, schedules.plateau_init(lr0)), jnp.arange(40)
    )
    return val_losses, lrs


val_losses, plateau_lrs = (
    np.asarray(a) for a in train_with_plateau(params0, 1.0, jax.random.key(5))
)
cuts = [e + 1 for e in range(1, 40) if plateau_lrs[e] < plateau_lrs[e - 1]]
print("epochs that started with a halved rate:", cuts, " final rate:", plateau_lrs[-1])

fig, (ax_v, ax_r) = viz.figure(2)
ax_v.plot(np.arange(1, 41), val_losses, color=viz.COLORS["val"])
ax_v.set(yscale="log", xlabel="epoch", ylabel="validation loss")
for c in cuts:
    ax_v.axvline(c, color="k", ls=":", lw=1)
ax_r.step(np.arange(1, 41), plateau_lrs, where="post")
ax_r.set(xlabel="epoch", ylabel="learning rate", title="factor 0.5, patience 5")
viz.show(fig)

# %% [markdown]
# **What to notice.** The rate is cut only after five epochs in a row without a new best
# validation loss (dotted lines). A noisy validation curve resets `wait` whenever it dips to a new
# best, which is why the cuts come late; `min_delta` (default $10^{-4}$) decides what counts as
# "better".
#
# ## 3 · The LR range test ("LR finder")
#
# Smith's range test (2017, section 3.3) trains for a few epochs while the rate grows *linearly*
# between two bounds and plots *accuracy* against the rate. The version most people use — and the
# one in the Géron notes — is fastai's and Géron's: the rate grows *exponentially* from tiny to
# huge, one value per batch, and the *loss* is recorded. Plotted against $\log\eta$ it stays flat
# (too small to matter), falls, then shoots up (too large). The Géron notes: choose "一个略低于学习曲线开始再次快速上升的那个值" — a
# rate a bit below where the curve starts to climb — then re-initialize the model and train with it.
#
# `lr_finder.lr_finder(step, params, batches, min_lr=..., max_lr=...)` does the sweep as one
# `lax.scan` over copies of the parameters and returns `(lrs, losses)`; it stops (NaN from there
# on) when the smoothed loss exceeds 4× its best. `step(params, batch, lr) -> (params, loss)` is
# any training step, so the finder works for any model and optimizer. The sweep uses the same
# batch size as training (32); one epoch of digits holds few batches (printed below), so we sweep
# over 4 epochs' worth of batches for a smoother curve.

# %%
BATCH = 32
finder_idx = jnp.concatenate(
    [data.epoch_batches(jax.random.key(10 + e), ds.x_train.shape[0], BATCH) for e in range(4)]
)
finder_batches = (ds.x_train[finder_idx], ds.y_train[finder_idx])
params_before = jax.tree.map(np.array, params0)
lrs, losses = lr_finder.lr_finder(
    lr_finder.make_sgd_step(digits_loss), params0, finder_batches, min_lr=1e-3, max_lr=10.0
)
lr_pick = float(lr_finder.pick_lr(lrs, losses))  # smoothed minimum / 10
lr_edge = 10 * lr_pick  # the smoothed minimum itself: the largest rate that still helped
lr_steep = float(lr_finder.pick_lr(lrs, losses, rule="steepest"))
print(
    f"{finder_idx.shape[0] // 4} batches per epoch, {len(lrs)} in the sweep; smoothed loss is lowest at lr = {lr_edge:.3g}"
)
print(f"pick (minimum / 10) = {lr_pick:.3g};  steepest descent at lr = {lr_steep:.3g}")

# %%
smooth = np.asarray(lr_finder.smooth_losses(losses, beta=0.9))
fig, axes = viz.figure(1, width=5.5)
ax = axes[0]
ax.plot(lrs, losses, color="0.7", lw=0.8, label="loss per batch")
ax.plot(
    lrs, np.where(np.isfinite(smooth), smooth, np.nan), color="k", label="smoothed (EMA, beta=0.9)"
)
ax.axvline(lr_edge, color="#d62728", ls=":", label=f"smoothed minimum {lr_edge:.2g}")
ax.axvline(lr_pick, color="#2ca02c", label=f"pick = minimum/10 = {lr_pick:.2g}")
ax.axvline(lr_steep, color="#1f77b4", ls="--", label=f"steepest descent {lr_steep:.2g}")
ax.set(
    xscale="log",
    ylim=(0, 1.3 * float(losses[0])),
    xlabel="learning rate",
    ylabel="training loss",
    title="LR range test, digits MLP, batch 32",
)
ax.legend(fontsize=7, loc="lower left")
viz.show(fig)

# %%
# NBVAL_CHECK_OUTPUT
unchanged = jax.tree.all(
    jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), params_before, params0)
)
print("params0 unchanged by the finder:", unchanged)
print("finder stopped before max_lr (loss blew up):", bool(np.isnan(np.asarray(losses[-1]))))
print("pick below the smoothed minimum:", lr_pick < lr_edge)
# OUTPUT: params0 unchanged by the finder: True
# OUTPUT: finder stopped before max_lr (loss blew up): True
# OUTPUT: pick below the smoothed minimum: True

# %% [markdown]
# **What to notice.** The per-batch loss (grey) is noisy; the smoothed curve is flat for tiny
# rates, falls, reaches its minimum (red) and shoots up — where it crosses 4× its best the sweep
# stops (NaN from there, asserted above). The pick (green) sits one decade below the minimum.
#
# **Which point to pick, and why.** The raw per-batch losses are noisy, so they are smoothed
# first (a bias-corrected moving average, as in fastai). At the smoothed *minimum* the loss is
# about to climb: training there sits at the edge of divergence. `pick_lr`'s default rule takes
# one order of magnitude less — the Géron notes' (and Géron's) "a bit below where it starts to climb",
# fastai v1's `lr_min / 10` — a rate that is still fast but safely stable. The alternative rule,
# `rule="steepest"`, picks where the loss falls fastest per unit of $\log\eta$ (fastai's
# `lr_steep`); it is usually of the same order (both are printed above). For 1cycle, Smith uses the
# upper end — the largest rate at which the loss still falls — as the *peak* $\eta_1$, and starts
# 10× lower: below, `lr_edge` (the smoothed minimum) is the 1cycle peak.
#
# > **Keras vs. JAX: restoring the weights after the finder.** In Keras, restore them: the sweep
# > trains *your* model in place with absurd rates, which is why the Géron notes' Keras
# > `find_learning_rate` saves `model.get_weights()` first and calls `set_weights` afterwards —
# > correct advice there. In JAX there is nothing to restore: a function cannot modify its inputs,
# > `lr_finder` trains copies inside `lax.scan` and returns only `(lrs, losses)`, and `params0` is
# > bit-for-bit unchanged (checked above).
#
# ## 4 · Schedules inside the optimizer: one step per batch
#
# An optimizer in `lessonlib.optim` (as in optax) accepts a schedule as its `learning_rate`; it
# keeps a step counter in its state and evaluates the schedule at that counter on every
# `update` — once per batch. Check: three updates with a constant gradient of 1.

# %%
sched = schedules.exponential_decay(0.1, s=10)
opt = optim.sgd(learning_rate=sched)
w = jnp.zeros(1)
opt_state = opt.init(w)
for k in range(3):
    updates, opt_state = opt.update(jnp.ones(1), opt_state, w)
    print(f"update {k}: {float(updates[0]):+.6f}   -schedule({k}) = {-float(sched(k)):+.6f}")
    assert np.isclose(float(updates[0]), -float(sched(k)))

# %% [markdown]
# One optimizer for the rest of the chapter: `scheduled_sgd(hp)` builds SGD whose schedule is
# *described by numbers* in `hp` — which family (`kind`), the rate, $s$, the warm-up share, the
# number of steps the cycle was built for, how many optimizer steps make one schedule "tick", and
# whether 1cycle's momentum cycle is on (`optim.sgd` takes a momentum schedule as it takes a
# learning-rate schedule; with `cycle_momentum = 0` the momentum is 0: plain SGD). `train.fit` passes `hp` as traced values, so every one of these can change without
# recompiling: even the family, chosen with `lax.switch` on a traced integer.

# %%
FAMILY = demo.FAMILY  # ("constant", "exponential", "power", "1cycle", "cosine", ...): hp["kind"]
EPOCHS = 5
STEPS_PER_EPOCH = ds.x_train.shape[0] // BATCH  # 44: the last partial batch is dropped
TOTAL = EPOCHS * STEPS_PER_EPOCH


def lr_at(hp, count):
    """The learning rate scheduled_sgd uses at optimizer step `count` (float)."""
    eta, s = hp["lr"], hp["s"]
    family = [
        lambda t: eta,
        schedules.exponential_decay(eta, s),
        schedules.power_decay(eta, s),
        schedules.one_cycle(hp["cycle_steps"], eta, pct_start=hp["pct_start"]),
        schedules.cosine_decay(eta, hp["cycle_steps"]),
        schedules.linear_warmup(
            eta,
            hp["pct_start"] * hp["cycle_steps"],
            schedules.cosine_decay(eta, (1 - hp["pct_start"]) * hp["cycle_steps"]),
        ),
    ]
    tick = jnp.floor(count / hp["every"])  # every=1: per batch; every=STEPS_PER_EPOCH: per epoch
    return jax.lax.switch(hp["kind"].astype(jnp.int32), family, tick)


def momentum_at(hp, count):
    """1cycle's momentum 0.95 -> 0.85 -> 0.95 if hp["cycle_momentum"] is 1; no momentum if 0."""
    cycle = schedules.one_cycle_momentum(hp["cycle_steps"], pct_start=hp["pct_start"])
    return hp["cycle_momentum"] * cycle(jnp.floor(count / hp["every"]))


def scheduled_sgd(hp):
    return optim.sgd(
        lambda count: lr_at(hp, count.astype(jnp.float32)),
        momentum=lambda count: momentum_at(hp, count.astype(jnp.float32)),
    )


lr_curve = jax.jit(jax.vmap(lr_at, in_axes=(None, 0)))
steps_axis = jnp.arange(TOTAL, dtype=jnp.float32)


def make_hp(
    kind, lr, *, s=TOTAL / 2, pct_start=0.45, cycle_steps=TOTAL, every=1.0, cycle_momentum=0.0
):
    return {
        "kind": float(kind),
        "cycle_momentum": float(cycle_momentum),
        "lr": lr,
        "s": s,
        "pct_start": pct_start,
        "cycle_steps": float(cycle_steps),
        "every": float(every),
    }


def fit_schedule(hp):
    """Train the digits MLP from params0 for EPOCHS epochs with scheduled_sgd(hp): one compiled run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # divergence is reported, not warned about
        return train.fit(
            model,
            params0,
            ds,
            key=jax.random.key(1),
            hp=hp,
            epochs=EPOCHS,
            batch_size=BATCH,
            optimizer=scheduled_sgd,
        )


# %% [markdown]
# ### The classic mistake: stepping 1cycle per epoch
#
# PyTorch's `OneCycleLR` and Géron's callback are meant to be stepped after every *batch*.
# Two common slips: building the cycle for the right number of batches but stepping it once per
# *epoch* (the warm-up never ends), and building it for `EPOCHS` steps while the optimizer steps it
# per batch (the whole cycle is over after `EPOCHS` batches, and the rest of training runs at
# $\eta_1/10^4$). Same model, data and budget — `EPOCHS` epochs of `STEPS_PER_EPOCH` batches
# (printed below), peak `lr_edge` from the finder — together with the comparison of the next
# section: nine runs of *one* compiled program, since only numbers in `hp` differ.

# %%
runs_spec = {
    "constant, finder's pick": make_hp(0, lr_pick),
    "constant, smoothed minimum": make_hp(0, lr_edge),
    "exponential from the minimum": make_hp(1, lr_edge),
    "1cycle, peak at the minimum": make_hp(3, lr_edge),
    "cosine from the minimum": make_hp(4, lr_edge),
    "10% warm-up + cosine": make_hp(5, lr_edge, pct_start=0.1),
    "1cycle + cycled momentum": make_hp(3, lr_edge * (1 - 0.85), cycle_momentum=1.0),
    "1cycle stepped per epoch": make_hp(3, lr_edge, every=STEPS_PER_EPOCH),
    f"1cycle built for {EPOCHS} steps": make_hp(3, lr_edge, cycle_steps=EPOCHS),
}
names = list(runs_spec)
compiles_before = train.compile_count()
t0 = time.perf_counter()
runs = {name: fit_schedule(hp) for name, hp in runs_spec.items()}
runs_s = time.perf_counter() - t0
H = {
    k: np.stack([runs[n].history[k] for n in names])
    for k in ("train_loss", "test_loss", "test_acc")
}
curves = {
    name: np.asarray(lr_curve({k: jnp.float32(v) for k, v in hp.items()}, steps_axis))
    for name, hp in runs_spec.items()
}
print(
    f"{len(names)} runs x {EPOCHS} epochs x {STEPS_PER_EPOCH} batches = {TOTAL} steps each: "
    f"{runs_s:.2f} s, {train.compile_count() - compiles_before} compilation(s)\n"
)
print(
    f"{'run':<30} {'max lr':>8} {'last lr':>9} {'train loss':>11} {'test loss':>10} {'test acc':>9}"
)
for i, name in enumerate(names):
    print(
        f"{name:<30} {curves[name].max():>8.3g} {curves[name][-1]:>9.2g} {H['train_loss'][i, -1]:>11.4f} "
        f"{H['test_loss'][i, -1]:>10.4f} {H['test_acc'][i, -1]:>9.3f}"
    )

# %%
fig, (ax_l, ax_t) = viz.figure(2)
mistakes = [
    "1cycle, peak at the minimum",
    "1cycle stepped per epoch",
    f"1cycle built for {EPOCHS} steps",
]
for name, c in zip(mistakes, ["#9467bd", "#ff7f0e", "#7f7f7f"], strict=True):
    ax_l.plot(np.asarray(steps_axis), curves[name], color=c, label=name)
    ax_t.plot(
        np.arange(1, EPOCHS + 1),
        viz.finite(H["train_loss"][names.index(name)]),
        color=c,
        label=name,
    )
ax_l.set(yscale="log", xlabel="optimizer step (batch)", ylabel="learning rate")
ax_l.legend(fontsize=7)
ax_t.set(yscale="log", xlabel="epoch", ylabel="training loss")
viz.show(fig)

# %%
# NBVAL_CHECK_OUTPUT
per_epoch = curves["1cycle stepped per epoch"]
short = curves[f"1cycle built for {EPOCHS} steps"]
print("stepped per epoch never gets past the warm-up:", bool(per_epoch.max() < 0.5 * lr_edge))
print(
    "built for EPOCHS steps sits at peak/1e4 from step EPOCHS on:",
    bool(np.allclose(short[EPOCHS:], lr_edge / 1e4, rtol=1e-4)),
)
i_ok, i_pe, i_sh = (names.index(n) for n in mistakes)
print(
    "the correct 1cycle ends with the lowest training loss of the three:",
    bool(H["train_loss"][i_ok, -1] < min(H["train_loss"][i_pe, -1], H["train_loss"][i_sh, -1])),
)
# OUTPUT: stepped per epoch never gets past the warm-up: True
# OUTPUT: built for EPOCHS steps sits at peak/1e4 from step EPOCHS on: True
# OUTPUT: the correct 1cycle ends with the lowest training loss of the three: True

# %% [markdown]
# **What to notice.** Stepped per epoch, the schedule advances one tick per epoch — `EPOCHS`
# ticks out of the `TOTAL` it was built for: the rate creeps up from $\eta_1/10$ and never comes
# down (the "max lr" column). Built for `EPOCHS` steps, the cycle is over after the first few
# batches, and all later steps train at $\eta_1/10^4$ — almost nothing happens after that. Both are silent
# bugs: no error, just a worse model. Count `total_steps` in batches:
# `epochs * (n_train // batch_size)`.
#
# ## 5 · Seven schedules on the same budget
#
# The same runs held seven honest contenders, all tuned only by the finder: a constant rate at the
# pick (`lr_pick`), a constant rate at the smoothed minimum (`lr_edge`), exponential decay from
# `lr_edge` by 10× every half of the run, 1cycle peaking at `lr_edge`, cosine decay from `lr_edge`
# to 0 (SGDR's cosine annealing, without restarts), the same cosine after a 10% linear warm-up
# from 0, and 1cycle with its momentum cycle 0.95 → 0.85 → 0.95 actually used by the optimizer.
# With momentum $\beta$ a step is about $\eta/(1-\beta)$, so that run peaks at
# $\eta_1 = (1 - 0.85)\,$`lr_edge`: its effective step at the peak equals the others' peak rate.
# Same initial weights, same batches, `TOTAL` steps each.

# %%
contenders = names[:7]
hp_mom = {k: jnp.float32(v) for k, v in runs_spec["1cycle + cycled momentum"].items()}
b1_run = int(0.45 * TOTAL)
used = [float(momentum_at(hp_mom, jnp.float32(t))) for t in (0, b1_run, TOTAL)]
print(f"momentum the 1cycle + cycled momentum run used at steps 0, {b1_run}, {TOTAL}: {used}")
assert np.allclose(used, [0.95, 0.85, 0.95], atol=1e-6)
fig, (ax_l, ax_tr, ax_te) = viz.figure(3, width=3.6)
colors7 = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
for name, c in zip(contenders, colors7, strict=True):
    i = names.index(name)
    ax_l.plot(np.asarray(steps_axis), curves[name], color=c, label=name)
    ax_tr.plot(np.arange(1, EPOCHS + 1), viz.finite(H["train_loss"][i]), color=c)
    ax_te.plot(np.arange(1, EPOCHS + 1), viz.finite(H["test_loss"][i]), color=c)
ax_l.set(yscale="log", xlabel="step", ylabel="learning rate")
ax_l.legend(fontsize=6)
ax_tr.set(yscale="log", xlabel="epoch", ylabel="training loss")
ax_te.set(yscale="log", xlabel="epoch", ylabel="test loss")
viz.show(fig)
best_train = contenders[int(np.argmin([H["train_loss"][names.index(n), -1] for n in contenders]))]
best_test = contenders[int(np.argmin([H["test_loss"][names.index(n), -1] for n in contenders]))]
print(f"lowest final training loss: {best_train};  lowest final test loss: {best_test}")
test_end = {n: H["test_loss"][names.index(n), -1] for n in contenders}
decaying = contenders[2:]  # every contender that ends at a small rate
assert all(test_end[n] < test_end["constant, smoothed minimum"] for n in decaying)
assert test_end["1cycle + cycled momentum"] < test_end["1cycle, peak at the minimum"]

# %%
# NBVAL_CHECK_OUTPUT
final_train = {n: H["train_loss"][names.index(n), -1] for n in contenders}
final_test = {n: H["test_loss"][names.index(n), -1] for n in contenders}
print(
    "the finder's constant pick has the highest final training loss:",
    max(final_train, key=final_train.get) == "constant, finder's pick",
)
print(
    "1cycle ends with a lower test loss than the finder's constant pick:",
    bool(final_test["1cycle, peak at the minimum"] < final_test["constant, finder's pick"]),
)
# OUTPUT: the finder's constant pick has the highest final training loss: True
# OUTPUT: 1cycle ends with a lower test loss than the finder's constant pick: True

# %% [markdown]
# **What to notice** (the ranking is printed above; it is computed, not assumed). The finder's
# conservative pick is safe but slow: in `TOTAL` steps it gets the least far. A constant rate at
# the edge makes fast progress but keeps its full noise ball to the very end. Every decaying
# schedule — exponential, 1cycle, cosine, warm-up + cosine — finishes with a small rate, a small
# noise ball, and ends with a lower test loss than the constant rate at the edge (asserted);
# exponential spends most of its steps at rates far below the edge, while 1cycle and cosine stay
# high for much of the run. With its momentum cycle actually driving the optimizer, 1cycle ends
# with a lower test loss than 1cycle without momentum here (asserted) — Smith's full recipe. The
# test accuracies are in the table of section 4.
#
# ## 6 · Shape a schedule, watch the training curve
#
# Pick a family and move the sliders (release the handle to retrain). Each move retrains the
# digits MLP of section 4 from scratch — `TOTAL` steps, the compiled program of section 4 — and
# redraws the schedule (left) and the train/test loss (right). `lr` is $\eta_0$ (constant,
# exponential, power, cosine) or the peak $\eta_1$ (1cycle, warm-up + cosine); `s` is the decay
# constant of exponential/power (in steps); `pct_start` is the warm-up share of 1cycle and of
# warm-up + cosine. A slider the chosen family
# does not use is greyed out. Everything is a traced number: nothing recompiles.


# %%
def run_schedule(kind, lr, s, pct_start):
    """One panel move: train with that schedule; return the run and its rate at every step."""
    hp = make_hp(kind, lr, s=s, pct_start=pct_start)
    return fit_schedule(hp), lr_curve({k: jnp.float32(v) for k, v in hp.items()}, steps_axis)


panel_schedule = demo.schedule_panel(run_schedule, total=TOTAL, epochs=EPOCHS, lr=round(lr_edge, 3))
panel_schedule

# %% [markdown]
# **What to notice.** The left plot is the schedule the optimizer actually used, step by step; the
# right one the losses it gave after each epoch. Changing only the schedule — same weights, same
# batches — moves the final loss a lot; a peak too high shows up as a title "diverged at epoch k".
#
# How long one move takes (retrain + redraw), over a few settings of every control, and a check
# that none of them compiled anything — every control is a traced number of the same program:

# %%
compiles_before = train.compile_count()
n_before = len(panel_schedule.times_ms)
for settings in [
    {"lr": 0.1},
    {"lr": 1.0},
    {"schedule": 0},
    {"schedule": 1, "s": 50.0},
    {"schedule": 2, "s": 1000.0},
    {"schedule": 3, "pct_start": 0.2},
    {"lr": 5.0},
    {"pct_start": 0.7},
    {"schedule": 4},
    {"schedule": 5, "pct_start": 0.1},
    {"schedule": 3, "lr": round(lr_edge, 3), "pct_start": 0.45},
]:
    panel_schedule.update(**settings)
schedule_ms = panel_schedule.times_ms[n_before:]
print(
    f"schedule panel: median {np.median(schedule_ms):.1f} ms per update (max {max(schedule_ms):.1f} ms), "
    f"new compilations: {train.compile_count() - compiles_before}"
)
assert train.compile_count() == compiles_before

# %% [markdown]
# Try: 1cycle with a peak well past the finder's minimum (the loss stalls at chance level, about
# $\ln 10$, or diverges — the finder's curve warned); exponential with a tiny `s` (the rate
# collapses before the model learns anything); power against exponential at the same `s` (power's
# long tail keeps learning); constant at 1 and at 0.1 (the noise ball versus slow progress).
#
# ## 7 · Exercises
#
# ### Exercise 1 · power scheduling (2 points)
# Write `power_schedule(init_value, s, c=1.0)` returning a schedule `t -> init_value / (1 + t/s)**c`.
# Check the arguments when the schedule is *built*: raise `ValueError` if `init_value`, `s` or `c`
# is not $> 0$. The returned function must work under `jax.jit` (use `jnp`, no Python `if` on `t`);
# `t` arrives as an integer array.


# %% [solution] id=ex07-power
def power_schedule(init_value, s, c=1.0):
    """Return t -> init_value / (1 + t/s)**c; ValueError unless init_value, s, c are all > 0."""
    ### BEGIN SOLUTION
    for name, value in (("init_value", init_value), ("s", s), ("c", c)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")

    def schedule(t):
        return init_value / (1.0 + jnp.asarray(t, jnp.float32) / s) ** c

    return schedule
    ### END SOLUTION


# %% [tests] id=ch07-test-power points=2
check("07.power_schedule", power_schedule)
### BEGIN HIDDEN TESTS
check("07.power_schedule", power_schedule, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 · 1cycle (3 points)
# Write `one_cycle_schedule(total_steps, max_lr)` returning the 1cycle schedule of section 2 with
# Géron's defaults: $\eta_0 = $ `max_lr/10`, $\eta_f = \eta_0/1000$, $b_1 = \lfloor 0.45\,T\rfloor$,
# $b_2 = \lfloor 0.9\,T\rfloor$; linear from $\eta_0$ up to `max_lr` on $[0, b_1]$, down to
# $\eta_0$ on $[b_1, b_2]$, down to $\eta_f$ on $[b_2, T]$, and $\eta_f$ after $T$. Raise
# `ValueError` if `total_steps` or `max_lr` is not $> 0$. It must work under `jax.jit`
# (`jnp.interp` or `jnp.where`).


# %% [solution] id=ex07-one-cycle
def one_cycle_schedule(total_steps, max_lr):
    """Return Géron's 1cycle schedule t -> lr for a run of total_steps optimizer steps."""
    ### BEGIN SOLUTION
    if not total_steps > 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not max_lr > 0:
        raise ValueError(f"max_lr must be > 0, got {max_lr}")
    start = max_lr / 10
    knots = jnp.array(
        [0, int(0.45 * total_steps), int(0.9 * total_steps), total_steps], jnp.float32
    )
    values = jnp.array([start, max_lr, start, start / 1000], jnp.float32)

    def schedule(t):
        return jnp.interp(jnp.asarray(t, jnp.float32), knots, values)

    return schedule
    ### END SOLUTION


# %% [tests] id=ch07-test-one-cycle points=3
check("07.one_cycle_schedule", one_cycle_schedule)
### BEGIN HIDDEN TESTS
check("07.one_cycle_schedule", one_cycle_schedule, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 · the plateau rule (3 points)
# Write `plateau_step(state, metric, *, factor=0.5, patience=5, min_delta=1e-4)` for Keras'
# reduce-on-plateau *without* cooldown and `min_lr`. `state = (lr, best, wait)`; return the new
# `(lr, best, wait)` after one epoch whose validation loss is `metric`:
# if `metric < best - min_delta` then `best = metric, wait = 0`; otherwise `wait += 1`, and if
# now `wait >= patience` then `lr = lr * factor, wait = 0`. The initial state is
# `(lr0, inf, 0)`. The check also runs your function inside `jax.lax.scan`, so use `jnp.where`
# instead of `if` on values.


# %% [solution] id=ex07-plateau
def plateau_step(state, metric, *, factor=0.5, patience=5, min_delta=1e-4):
    """One epoch of reduce-on-plateau: return the new (lr, best, wait)."""
    lr, best, wait = state
    ### BEGIN SOLUTION
    improved = metric < best - min_delta
    best = jnp.where(improved, metric, best)
    wait = jnp.where(improved, 0, wait + 1)
    reduce = ~improved & (wait >= patience)
    lr = jnp.where(reduce, lr * factor, lr)
    wait = jnp.where(reduce, 0, wait)
    return lr, best, wait
    ### END SOLUTION


# %% [tests] id=ch07-test-plateau points=3
check("07.plateau_step", plateau_step)
### BEGIN HIDDEN TESTS
check("07.plateau_step", plateau_step, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 · the finder's pick (2 points)
# Write `pick_learning_rate(lrs, losses, beta=0.9)`: smooth the losses with the bias-corrected
# moving average $a_i = \beta a_{i-1} + (1-\beta)\,\ell_i$ ($a_{-1} = 0$),
# $\bar\ell_i = a_i / (1 - \beta^{i+1})$; ignore NaN (the finder writes NaN after it stopped, and
# every later smoothed value is NaN too); return the learning rate at the smallest $\bar\ell_i$
# divided by 10. (Unlike `lr_finder.pick_lr`, skip no points at the start.)


# %% [solution] id=ex07-pick
def pick_learning_rate(lrs, losses, beta=0.9):
    """The rate at the minimum of the smoothed loss, divided by 10."""
    ### BEGIN SOLUTION
    losses = np.asarray(losses)  # a short loop over numbers: plain numpy on the host is fine
    avg, smoothed = 0.0, np.empty(len(losses))
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        smoothed[i] = avg / (1 - beta ** (i + 1))
    return lrs[np.nanargmin(smoothed)] / 10
    ### END SOLUTION


# %% [tests] id=ch07-test-pick points=2
check("07.pick_learning_rate", pick_learning_rate)
### BEGIN HIDDEN TESTS
check("07.pick_learning_rate", pick_learning_rate, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## Sharp bits
#
# - **Schedules count batches, not epochs.** Keras' `decay_steps`, optax's `transition_steps` and
#   `lessonlib.schedules`' `s` are optimizer steps. The Géron notes' `InverseTimeDecay(0.01,
#   decay_steps=10_000)` halves the rate after 10,000 *batches*, not epochs. Géron's `OneCycleScheduler(iterations=...)` and PyTorch's `OneCycleLR(total_steps=...)`
#   too; PyTorch's `StepLR`/`MultiStepLR` are usually stepped per epoch — read which one you have.
# - **Boundaries are off by one between libraries.** `piecewise_constant` (like optax) switches
#   *at* step $b$; Keras' `PiecewiseConstantDecay` uses the old value while `step <= b` and
#   switches one step later.
# - **Keras' `decay_rate` is not $c$.** `InverseTimeDecay` computes $\eta_0/(1 + r\,t/d)$: it is
#   power scheduling with $c = 1$ and $s = d/r$. `ExponentialDecay`'s `decay_rate` is the factor per
#   `decay_steps` (0.1 gives Géron's formula); it has no default — Keras requires it.
# - **The step counter starts at 0.** `schedule(0)` is the rate of the *first* update; after $n$
#   updates the optimizer's state holds `count = n`.
# - **Traced hyperparameters are not validated.** `one_cycle(T, max_value)` raises for
#   `max_value <= 0` when you pass a number; inside `jit` (a slider) the value has no value yet, so
#   a negative rate just trains backwards. Validate where the number comes from.
# - **`total_steps` must be the real number of updates.** Extra steps sit at the tiny final
#   value; too few and the cycle never finishes. `n_train // batch_size` per epoch when the last
#   partial batch is dropped (as `train.fit` does), `ceil` when it is kept (Keras).
# - **Performance scheduling needs a validation metric**, so it lives between epochs; its
#   defaults differ: Keras `factor=0.1, patience=10`, Géron (and his notes) `factor=0.5, patience=5`.
#   `min_delta` matters on noisy curves.
# - **The finder's curve depends on everything**: batch size, initialization, optimizer, data
#   order. Re-run it when you change them, and run it with the optimizer you will train with
#   (momentum and Adam shift the usable range). Its pick is a starting point, not an optimum.
# - **Momentum changes the effective rate.** With momentum $\beta$ the steady-state step is
#   $\eta/(1-\beta)$ — 10× for 0.9. That is why 1cycle lowers the momentum while it raises the
#   rate (`one_cycle_momentum`). `optim.sgd(lr, momentum=...)` takes a number or a schedule
#   `count -> momentum`, read at the same step counter as the learning rate (section 5's
#   "1cycle + cycled momentum" run); in optax, wrap the optimizer in `inject_hyperparams`. Lower
#   the peak rate by about $1-\beta$ when you add momentum to a rate found without it.
# - **Define the optimizer factory once.** `train.fit` compiles per function object; making a new
#   schedule closure *outside* the traced `hp` on each slider move would recompile every time.
#
# ## References
#
# - L. N. Smith (2017). Cyclical learning rates for training neural networks. *WACV*;
#   arXiv:1506.01186 — the LR range test (section 3.3).
# - L. N. Smith (2018). A disciplined approach to neural network hyper-parameters: Part 1 —
#   learning rate, batch size, momentum, and weight decay. arXiv:1803.09820 — 1cycle, cycled momentum.
# - L. N. Smith, N. Topin (2019). Super-convergence: very fast training of neural networks using
#   large learning rates. *SPIE*; arXiv:1708.07120.
# - A. Géron (2022). *Hands-On Machine Learning with Scikit-Learn, Keras, and TensorFlow*, 3rd ed.,
#   ch. 11, "Learning Rate Scheduling" (the source of the Géron notes' section 四).
# - The course's sources, the Géron notes among them, and their mistakes: [sources.md](../sources.md).
# - L. Bottou, F. E. Curtis, J. Nocedal (2018). Optimization methods for large-scale machine
#   learning. *SIAM Review* 60(2) — SGD with a fixed step converges to a neighbourhood of size
#   proportional to the step (Thm. 4.6), diminishing steps converge.
# - Keras API: `keras.optimizers.schedules.InverseTimeDecay`, `ExponentialDecay`,
#   `PiecewiseConstantDecay`; `keras.callbacks.ReduceLROnPlateau`.
# - optax: `optax.schedules` (`exponential_decay`, `piecewise_constant_schedule`,
#   `linear_onecycle_schedule`) — `tests/test_schedules.py` checks `lessonlib.schedules` against them.
# - fastai: `Learner.lr_find` (exponential sweep, smoothed loss, `lr_min/10`, steepest point).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | learning rate | 学习率 | the step size $\eta$ of gradient descent |
# | learning-rate schedule | 学习率调度 / 学习率计划 | a function step → learning rate |
# | step / iteration | 步 / 迭代 | one optimizer update, i.e. one batch |
# | epoch | 轮 (epoch) | one pass over the training set: `n_train // batch_size` steps |
# | noise ball | 噪声球 | the region around a minimum where constant-rate SGD keeps bouncing; radius ∝ $\sqrt\eta$ |
# | power scheduling | 幂调度 (not 功率调度: 功率 is physical power) | $\eta_0/(1+t/s)^c$; Keras `InverseTimeDecay` for $c=1$ |
# | exponential scheduling | 指数调度 | $\eta_0\,0.1^{t/s}$: 10× smaller every $s$ steps |
# | piecewise constant scheduling | 分段常数调度 | fixed rates between boundary steps |
# | performance scheduling / reduce on plateau | 性能调度 / 平台期降低学习率 | cut the rate when the validation metric stops improving |
# | patience | 耐心值 | epochs without improvement before acting |
# | cooldown | 冷却期 | epochs after a cut during which no waiting is counted |
# | 1cycle | 单周期调度 (1cycle) | up to a peak, back down, then far below the start |
# | warm-up | 预热 | the initial phase in which the rate rises |
# | cosine annealing (decay) | 余弦退火 | $\eta_0\,\tfrac12(1 + \cos(\pi t/T))$; SGDR without restarts |
# | annealing | 退火 | lowering the rate at the end of training |
# | cyclical momentum | 循环动量 | momentum 0.95 → 0.85 → 0.95, opposite to the 1cycle rate |
# | LR range test / LR finder | 学习率范围测试 / 学习率查找器 | one sweep with a growing rate: linear, accuracy vs. rate (Smith); exponential, loss vs. rate (fastai, Géron) |
# | smoothing (EMA) | 平滑 (指数移动平均) | $a_i = \beta a_{i-1} + (1-\beta)\ell_i$, bias-corrected by $1-\beta^{i+1}$ |
# | divergence | 发散 | the loss grows without bound (NaN/inf) because the rate is too large |
# | super-convergence | 超收敛 | training in far fewer steps with very large rates (Smith & Topin) |
# | traced value | 追踪值 | a JAX array inside `jit`: changing it reuses the compiled program |

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s (after imports)")
