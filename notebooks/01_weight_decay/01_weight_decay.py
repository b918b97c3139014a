# %% [markdown]
# # 01 · Overfitting and weight decay
#
# A model that is flexible enough to fit its training data perfectly can also fit the *noise* in
# it. This chapter measures that failure (overfitting), derives the oldest cure — a penalty on the
# size of the weights, which for gradient descent is the same as *weight decay* — and shows where
# the usual advice goes wrong: L1 versus L2, and why "L2 with Adam" is not weight decay (AdamW).
#
# **You will:** reproduce Dive into Deep Learning's high-dimensional regression (§4.5) exactly;
# derive weight decay from a norm constraint and check every step numerically; watch L1 set weights
# to exactly zero; measure how Adam rescales an L2 penalty; play with two slider panels; and solve
# four graded exercises (their cells are marked *Exercise*).
#
# **Sources.** The regression demo and the derivation follow the notes on *Dive into Deep
# Learning* §4.5–4.6 ("the d2l notes"); the myths corrected here come from them, from the JAX book
# chapter, from Xiao Han's blog post on regularization, from the 2024 study notes and from the
# notes on Géron's chapter 11. [The course's sources](../sources.md) says what each document is and
# lists every mistake it makes, with the section that corrects it.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import data, models, optim, regularization, train, viz
from lessonlib.demos import ch01_weight_decay as playground
from lessonlib.exercises import check

notebook_start = time.perf_counter()
print("JAX", jax.__version__, "running on", jax.devices())

# %% [markdown]
# ## 1 · Overfitting, generalization, bias and variance
#
# *Generalization* is how well a model does on data it was not trained on. *Overfitting* is a
# small training error with a large test error: the model has learned the training set's noise.
# *Underfitting* is the opposite failure — the training error itself stays large because the
# model is too simple (or too constrained) to follow the data.
#
# The bias–variance view (from the d2l notes) splits the test error of a model trained on a random training
# set into **bias** (the error of its average prediction: a systematic miss) and **variance** (how
# much its predictions change from one training set to the next). A linear model has few degrees
# of freedom: high bias, low variance. A neural network can represent almost anything and learns
# interactions between the features: low bias, high variance.
#
# Let us measure both on noisy "two moons": 6 independent training sets of 40 points each, a
# logistic regression (`hidden=()`) and a 2-32-32-2 network, and one common test set.

# %%
grid = playground.grid(lim=2.0, steps=64)
X_test_bv, y_test_bv = data.two_moons(2000, seed=999, noise=0.3)
bv_points = jnp.concatenate([X_test_bv, grid])  # test points and plot grid, predicted together
bv_models = {"linear": (), "MLP 2-32-32-2": (32, 32)}
bv_probs = {
    name: [] for name in bv_models
}  # P(class 1) on the test points, one row per training set
bv_grids = {name: [] for name in bv_models}
bv_train_acc = {name: [] for name in bv_models}
init_key, fit_key = jax.random.split(jax.random.key(0))  # one key per use, never one for two
for name, hidden in bv_models.items():
    model = playground.classifier(hidden)
    params0, _ = model.init(init_key)  # the same start for every training set
    for s in range(6):
        X_tr, y_tr = data.two_moons(40, seed=100 + s, noise=0.3)
        ds = data.Dataset(X_tr, y_tr, X_tr, y_tr)  # the test set is scored once, after training
        run = train.fit(
            model,
            params0,
            ds,
            key=jax.random.fold_in(fit_key, s),
            hp={"lr": 0.2, "l1": 0.0, "l2": 0.0},
            epochs=300,
            batch_size=40,
            optimizer=playground.optimizer,
            penalty=playground.penalty,
            project=playground.prox_l1,
        )
        bv_train_acc[name].append(run.history["train_acc"][-1])
        p_all = playground.predict_proba(model, run.params, bv_points)  # one shape: one compile
        bv_probs[name].append(p_all[: len(X_test_bv)])
        bv_grids[name].append(p_all[len(X_test_bv) :].reshape(64, 64))

y_np = np.asarray(y_test_bv)
bv_table = {}
for name in bv_models:
    P = np.stack(bv_probs[name])  # (training sets, test points)
    mean_p = P.mean(axis=0)
    bv_table[name] = {
        "train acc": float(np.mean(bv_train_acc[name])),
        "test acc": float(np.mean((P > 0.5) == y_np)),
        "bias^2": float(np.mean((mean_p - y_np) ** 2)),
        "variance": float(np.mean(P.var(axis=0))),
    }
    print(f"{name:>14}: " + ", ".join(f"{k} {v:.3f}" for k, v in bv_table[name].items()))
# squared error of the predicted probability = bias^2 + variance, averaged over training sets
# (an identity: it checks the bookkeeping, not a claim)
for name in bv_models:
    mse = float(np.mean((np.stack(bv_probs[name]) - y_np) ** 2))
    assert np.isclose(mse, bv_table[name]["bias^2"] + bv_table[name]["variance"], rtol=1e-5)
lin, mlp = bv_table["linear"], bv_table["MLP 2-32-32-2"]
var_ratio = mlp["variance"] / lin["variance"]
print(
    f"variance: MLP / linear = {var_ratio:.1f}x; bias^2: MLP {mlp['bias^2']:.3f} vs linear "
    f"{lin['bias^2']:.3f}; train - test accuracy: MLP {mlp['train acc'] - mlp['test acc']:.3f}, "
    f"linear {lin['train acc'] - lin['test acc']:.3f}"
)
assert var_ratio > 2  # the claim of the text below
assert mlp["variance"] < mlp["bias^2"]  # variance does NOT dominate: bias^2 holds the overlap
assert mlp["train acc"] - mlp["test acc"] > 2 * (lin["train acc"] - lin["test acc"])

# %%
fig, axes = viz.figure(2, height=3.4)
for ax, name in zip(axes, bv_models, strict=True):
    for g in bv_grids[name]:
        ax.contour(
            np.linspace(-2, 2, 64),
            np.linspace(-2, 2, 64),
            g,
            levels=[0.5],
            colors="k",
            linewidths=0.8,
            alpha=0.6,
        )
    ax.scatter(
        X_test_bv[:300, 0], X_test_bv[:300, 1], c=y_test_bv[:300], cmap="RdBu_r", s=6, alpha=0.5
    )
    ax.set_title(f"{name}: {len(bv_grids[name])} training sets")
    ax.set_xlim(-2, 2)
    ax.set_ylim(-2, 2)
    ax.set_aspect("equal")
viz.show(fig)

# %% [markdown]
# **What to notice.** The six linear boundaries (left) nearly coincide — low variance — but a
# straight line cannot follow the moons, so they all miss in the same way. The network's
# boundaries (right) bend around each training set's points and differ from set to set: its
# variance is about three times the linear model's (the ratio is printed above), and its training
# accuracy is 1 while its test accuracy is no better than the line's. The variance term does
# *not* dominate the MLP's error, though: "bias²" here is measured against noisy 0/1 labels, so it
# contains the overlap of the two noisy moons that no model can remove, and it is the larger term
# for both models. What regularization can cut is the variance, at the price of a little bias.
#
# ## 2 · Dive into Deep Learning's high-dimensional linear regression
#
# d2l v0.17 §4.5 makes overfitting unmistakable with a *linear* model that has more parameters
# than data: $d = 200$ features, only $n = 20$ training points (100 test points), and
#
# $$y = 0.05 + \sum_{i=1}^{200} 0.01\,x_i + \epsilon, \qquad x \sim \mathcal N(0, I),\ \epsilon \sim \mathcal N(0, 0.01^2).$$
#
# The model is $\hat y = x^\top w + b$ with $w \sim \mathcal N(0, 1)$, $b = 0$, trained with
# minibatch SGD (batch 5, learning rate 0.003, 100 epochs) on the squared loss
# $\ell = \frac12(\hat y - y)^2$ plus $\frac\lambda2\|w\|^2$ (the bias is not penalized).
# `train.fit` runs all 100 epochs as one compiled XLA computation.

# %%
d2l_data = data.d2l_weight_decay_data(seed=0)
d2l_model = models.linear_regression(200)
d2l_params, _ = d2l_model.init(jax.random.key(1))
print("train X", d2l_data.x_train.shape, " test X", d2l_data.x_test.shape)


def l2_on_weights(params, hp):
    """lambda/2 * ||w||^2 over the weights only (defined once: the compiled run is reused)."""
    return regularization.l2_penalty(params, hp["lam"])


def fit_d2l(lam, lr=0.003):
    return train.fit(
        d2l_model,
        d2l_params,
        d2l_data,
        key=jax.random.key(2),
        hp={"lr": lr, "lam": lam},
        epochs=100,
        batch_size=5,
        penalty=l2_on_weights,
    )


runs = {lam: fit_d2l(lam) for lam in (0.0, 3.0)}
for lam, run in runs.items():
    h = run.history
    print(
        f"lambda = {lam:g}: final train loss {h['train_loss'][-1]:.3g}, "
        f"test loss {h['test_loss'][-1]:.3g}, ||w|| = {h['w_norm'][-1]:.3g}"
    )

# %%
fig, axes = viz.figure(2)
for ax, (lam, run) in zip(axes, runs.items(), strict=True):
    viz.plot_history(ax, run.history, title=f"lambda = {lam:g}")
viz.show(fig)

# %%
# NBVAL_CHECK_OUTPUT
h0, h3 = runs[0.0].history, runs[3.0].history
print("lambda=0: train loss below 1e-3:", bool(h0["train_loss"][-1] < 1e-3))
print("lambda=0: test loss above 10:", bool(h0["test_loss"][-1] > 10))
print("lambda=3: test loss below 0.5:", bool(h3["test_loss"][-1] < 0.5))
# OUTPUT: lambda=0: train loss below 1e-3: True
# OUTPUT: lambda=0: test loss above 10: True
# OUTPUT: lambda=3: test loss below 0.5: True

# %% [markdown]
# **What to notice.** Without a penalty the training loss falls by orders of magnitude while the
# test loss hardly moves (printed above): 200 free weights can interpolate 20 points, and the
# random initial weights that the data never constrains stay in the model. With $\lambda = 3$ the
# test loss drops with the training loss and $\|w\|$ shrinks.
#
# > **Myth:** (the d2l notes) "with $\lambda = 0$ the model underfits (欠拟合): it does well on the
# > training set but the test error does not go down." **Fact:** that is the definition of
# > **overfitting** (过拟合). Underfitting means the *training* error stays high.
#
# One more honest number: the true weights are tiny ($\|w^\star\| = 0.01\sqrt{200}$), so even the
# trivial model $w = 0, b = 0$ has a small test loss. The $\lambda = 3$ run mostly *decays its
# random initialization away*; compare:

# %%
trivial = float(train.squared_loss(jnp.zeros_like(d2l_data.y_test), d2l_data.y_test))
print(
    f"||w*|| = {0.01 * np.sqrt(200):.3f}; test loss of predicting 0: {trivial:.4f}; "
    f"lambda = 3 after 100 epochs: {h3['test_loss'][-1]:.4f}; lambda = 0: {h0['test_loss'][-1]:.1f}"
)

# %% [markdown]
# ## 3 · From a norm constraint to weight decay
#
# **Hard constraint.** Limit the model's capacity by allowing only small weights:
# $$\min_{w,b}\ \ell(w, b) \quad\text{subject to}\quad \|w\|^2 \le \theta .$$
#
# **Lagrangian.** With a multiplier $\mu \ge 0$:
# $\mathcal L(w, b, \mu) = \ell(w, b) + \mu(\|w\|^2 - \theta)$. At a solution where the constraint
# is active, the KKT conditions give $\nabla_w \ell(w^\star) + 2\mu w^\star = 0$ with $\mu > 0$.
#
# **Soft penalty.** For fixed $\mu$ the term $-\mu\theta$ is a constant, so the same $w^\star$
# minimizes $\ell(w, b) + \frac\lambda2 \|w\|^2$ with $\lambda = 2\mu$: every $\theta$ has a
# matching $\lambda$ (a smaller $\theta$, a larger $\lambda$).
#
# ![Left: elliptical contours of the loss around its minimum and the disc of radius one; the
# penalized optimum is the point where the lowest contour that reaches the disc touches it. Right:
# the same contours and the L1 diamond, touched at its top corner, where w1 is
# zero.](../assets/figures/ch01_constraint_ball.svg)
#
# *Left:* the constrained optimum is where the lowest contour of $\ell$ that reaches the ball
# touches it; there $\nabla_w\ell$ points straight at the centre, $\nabla_w\ell = -2\mu w$, the
# KKT condition above. *Right:* the L1 "ball" is a diamond, and a contour usually meets it first
# at a corner, where one weight is exactly 0 — the sparsity of section 4. (The picture is computed,
# not drawn: `tools/make_assets.py` finds both optima numerically and checks these two claims.)
#
# **Gradient step.** The gradient of the penalty is $\lambda w$, so one SGD step is
# $$w \leftarrow w - \eta\big(\nabla_w \ell + \lambda w\big) = (1 - \eta\lambda)\,w - \eta\,\nabla_w \ell .$$
# Before each gradient step the weights are multiplied by $1 - \eta\lambda < 1$: they *decay*.
#
# Numeric check 1 — the constrained optimum equals the penalized one, and $\lambda = 2\mu$.
# A tiny least-squares problem $\ell(w) = \frac12\|Aw - c\|^2$: the penalized optimum has the closed
# form $w_\lambda = (A^\top A + \lambda I)^{-1}A^\top c$; the constrained optimum we find
# independently by projected gradient descent onto the ball $\|w\|^2 \le \theta$ with
# $\theta = \|w_\lambda\|^2$, then read off $\mu$ from the KKT condition.

# %%
A = jax.random.normal(jax.random.key(10), (8, 3), jnp.float32)
c = jax.random.normal(jax.random.key(11), (8,), jnp.float32)
lam0 = 2.0
w_pen = jnp.linalg.solve(A.T @ A + lam0 * jnp.eye(3), A.T @ c)
theta = float(jnp.sum(w_pen**2))


def data_loss(w):
    return 0.5 * jnp.sum((A @ w - c) ** 2)


@jax.jit
def projected_gd(w):
    def step(w, _):
        w = w - 0.01 * jax.grad(data_loss)(w)
        return w * jnp.minimum(
            1.0, jnp.sqrt(theta) / jnp.linalg.norm(w)
        ), None  # back into the ball

    return jax.lax.scan(step, w, None, length=20_000)[0]


w_con = projected_gd(jnp.zeros(3))
g = jax.grad(data_loss)(w_con)
mu = float(-(g @ w_con) / (2 * (w_con @ w_con)))  # from grad l + 2 mu w = 0
w_unc = jnp.linalg.lstsq(A, c)[0]
print(
    "unconstrained ||w||^2 =", float(jnp.sum(w_unc**2)), "> theta =", theta, "(constraint active)"
)
print("penalized  w:", np.round(np.asarray(w_pen), 5))
print("constrained w:", np.round(np.asarray(w_con), 5))
print(f"KKT multiplier mu = {mu:.5f}, 2*mu = {2 * mu:.5f}, lambda = {lam0}")
print("stationarity residual ||grad l + 2 mu w|| =", float(jnp.linalg.norm(g + 2 * mu * w_con)))
assert jnp.allclose(w_con, w_pen, atol=1e-4) and np.isclose(2 * mu, lam0, rtol=1e-3)

# %% [markdown]
# Numeric check 2 — one SGD step on the penalized loss equals the decayed step
# $(1 - \eta\lambda)w - \eta\nabla\ell$, on the d2l model with `jax.grad`:

# %%
eta, lam = 0.003, 3.0
xb, yb = d2l_data.x_train[:5], d2l_data.y_train[:5]


def d2l_loss(params):
    y_hat, _ = d2l_model.apply(params, {}, xb)
    return train.squared_loss(y_hat, yb)


grads_pen = jax.grad(lambda p: d2l_loss(p) + regularization.l2_penalty(p, lam))(d2l_params)
step_pen = jax.tree.map(lambda p, g: p - eta * g, d2l_params, grads_pen)
grads = jax.grad(d2l_loss)(d2l_params)
step_decay = {
    "w": (1 - eta * lam) * d2l_params["w"] - eta * grads["w"],
    "b": d2l_params["b"] - eta * grads["b"],
}
diff = max(float(jnp.max(jnp.abs(step_pen[k] - step_decay[k]))) for k in ("w", "b"))
print("max |penalty-in-loss step - decayed step| =", diff)
assert jax.tree.all(jax.tree.map(lambda a, b: jnp.allclose(a, b, atol=1e-6), step_pen, step_decay))

# %% [markdown]
# Numeric check 3 — the same holds for a whole run. `lessonlib.optim` builds optimizers from small
# transforms (as optax does); `add_decayed_weights(lam)` adds $\lambda w$ to the update, here only
# for the weights (`mask=regularization.weight_mask`) just like `l2_penalty`. A full d2l run with
# the penalty in the loss and one with decoupled decay end at the same weights:


# %%
def sgd_with_decay(hp):
    return optim.chain(
        optim.add_decayed_weights(hp["lam"], mask=regularization.weight_mask), optim.sgd(hp["lr"])
    )


run_decay = train.fit(
    d2l_model,
    d2l_params,
    d2l_data,
    key=jax.random.key(2),  # fit_d2l's key on purpose: the same batches, so the weights can agree
    hp={"lr": 0.003, "lam": 3.0},
    epochs=100,
    batch_size=5,
    optimizer=sgd_with_decay,
)
gap = float(jnp.max(jnp.abs(run_decay.params["w"] - runs[3.0].params["w"])))
print("max |w_penalty - w_decay| after 100 epochs:", gap)
assert gap < 1e-4

# %% [markdown]
# > **Myth:** (the JAX book chapter) "JAX provides built-in L1 and L2 regularization." **Fact:** JAX has no
# > regularizers (nor layers or losses). You add the penalty to your loss yourself — or use a
# > library: optax's `add_decayed_weights`/`adamw`, here `lessonlib.regularization` and
# > `lessonlib.optim`. The same chapter writes `beta * jnp.sum(weights2)`: the `**` was lost, so the
# > "penalty" is the plain sum of the weights, which is unbounded below (see the exercise).
#
# ### Exercise 1 · the L2 penalty (2 points)
# Write `l2_penalty(w, lam)` returning $\frac\lambda2\sum_i w_i^2$ for an array `w` of any shape.


# %% [solution] id=ex01-l2-penalty
def l2_penalty(w, lam):
    """Return lam/2 * (sum of squares of all entries of w)."""
    ### BEGIN SOLUTION
    return lam / 2 * jnp.sum(w**2)
    ### END SOLUTION


# %% [tests] id=ch01-test-l2-penalty points=2
check("01.l2_penalty", l2_penalty)
### BEGIN HIDDEN TESTS
check("01.l2_penalty", l2_penalty, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 · one weight-decay step (2 points)
# Write `weight_decay_step(w, grad, lr, lam)`: one SGD step on $\ell + \frac\lambda2\|w\|^2$, given
# the gradient `grad` of the data loss $\ell$ alone.


# %% [solution] id=ex01-weight-decay-step
def weight_decay_step(w, grad, lr, lam):
    """Return the weights after one step of SGD with weight decay."""
    ### BEGIN SOLUTION
    return (1 - lr * lam) * w - lr * grad
    ### END SOLUTION


# %% [tests] id=ch01-test-weight-decay-step points=2
check("01.weight_decay_step", weight_decay_step)
### BEGIN HIDDEN TESTS
check("01.weight_decay_step", weight_decay_step, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## 4 · L1 versus L2: sparsity
#
# The L1 penalty $\alpha\sum_i |w_i|$ (Tibshirani 1996, "lasso") has the subgradient
# $\alpha\,\mathrm{sign}(w_i)$, a pull of constant size however small $w_i$ is, while the L2 pull
# $\lambda w_i$ fades as $w_i \to 0$. So L1 can drive weights *to zero* and L2 only shrinks them.
#
# A catch when you try it: a plain (sub)gradient step on $\alpha|w|$ almost never lands exactly on
# 0 — it jumps across zero and back by $\eta\alpha$. The **proximal step** fixes this: take the
# gradient step on the data loss only, then apply
# $$\operatorname{prox}_{\eta\alpha|\cdot|}(v) = \arg\min_w \tfrac12 (w - v)^2 + \eta\alpha|w| = \operatorname{sign}(v)\max(|v| - \eta\alpha,\ 0),$$
# *soft thresholding*: every weight within $\eta\alpha$ of zero becomes exactly 0 (ISTA).
#
# Numeric check of the formula: minimize $\frac12(w - v)^2 + t|w|$ by brute force on a fine grid.

# %%
w_grid = np.linspace(-3, 3, 600_001)
for v, t in [(2.0, 0.5), (-0.3, 0.5), (0.7, 0.7), (-1.4, 0.2)]:
    brute = w_grid[np.argmin(0.5 * (w_grid - v) ** 2 + t * np.abs(w_grid))]
    closed = float(playground.soft_threshold(jnp.float32(v), t))
    print(f"v = {v:+.1f}, t = {t}: grid argmin {brute:+.5f}, soft threshold {closed:+.5f}")
    assert abs(brute - closed) < 1e-4

# %% [markdown]
# A sparse problem: 50 features, 40 training points, only the first 5 true weights are non-zero.
# Three runs from the same start: L2 in the loss, L1 in the loss (subgradient), and L1 by the
# proximal step (`project=playground.prox_l1` runs after every SGD step).

# %%
d_sp, k_sp = 50, 5
X_sp = jax.random.normal(jax.random.key(20), (240, d_sp), jnp.float32)
w_true = jnp.zeros(d_sp).at[:k_sp].set(jnp.array([2.0, -1.5, 1.0, -0.8, 0.5]))
y_sp = X_sp @ w_true + 0.1 * jax.random.normal(jax.random.key(21), (240,), jnp.float32)
sparse_data = data.Dataset(X_sp[:40], y_sp[:40], X_sp[40:], y_sp[40:])
sp_model = models.linear_regression(d_sp)
sp_params, _ = sp_model.init(jax.random.key(22))


def l1_on_weights(params, hp):
    return regularization.l1_penalty(params, hp["l1"])


sp_kw = dict(key=jax.random.key(23), epochs=200, batch_size=10)
sp_runs = {
    "L2 (lambda = 0.5)": train.fit(
        sp_model,
        sp_params,
        sparse_data,
        hp={"lr": 0.01, "l1": 0.0, "l2": 0.5},
        penalty=playground.penalty,
        project=playground.prox_l1,
        **sp_kw,
    ),
    "L1 subgradient (alpha = 0.1)": train.fit(
        sp_model, sp_params, sparse_data, hp={"lr": 0.01, "l1": 0.1}, penalty=l1_on_weights, **sp_kw
    ),
    "L1 proximal (alpha = 0.1)": train.fit(
        sp_model,
        sp_params,
        sparse_data,
        hp={"lr": 0.01, "l1": 0.1, "l2": 0.0},
        penalty=playground.penalty,
        project=playground.prox_l1,
        **sp_kw,
    ),
}
for name, run in sp_runs.items():
    w = np.asarray(run.params["w"])
    print(
        f"{name:>30}: exact zeros {int(np.sum(w == 0)):2d}/{d_sp}, |w| < 1e-3: {int(np.sum(np.abs(w) < 1e-3)):2d}, "
        f"test loss {run.history['test_loss'][-1]:.4f}"
    )

# %% [markdown]
# **What to notice.** Only the proximal run has exact zeros (count printed above). The
# subgradient run leaves the irrelevant weights hovering around zero with magnitudes about
# $\eta\alpha$; L2 leaves every weight non-zero. Now the **regularization paths**: the final
# $|w_i|$ against the penalty strength, for 32 strengths at once with `train.sweep`.

# %%
strengths = np.logspace(-3, 1, 32).astype(np.float32)
path_l1 = train.sweep(
    sp_model,
    sp_params,
    sparse_data,
    hp={"lr": 0.01, "l1": strengths, "l2": 0.0},
    penalty=playground.penalty,
    project=playground.prox_l1,
    **sp_kw,
)
path_l2 = train.sweep(
    sp_model,
    sp_params,
    sparse_data,
    hp={"lr": 0.01, "l1": 0.0, "l2": strengths},
    penalty=playground.penalty,
    project=playground.prox_l1,
    **sp_kw,
)
zeros_l1 = (np.asarray(path_l1.params["w"]) == 0).sum(axis=1)
zeros_l2 = (np.asarray(path_l2.params["w"]) == 0).sum(axis=1)
print("exact zeros along the L1 path:", zeros_l1.tolist())
print("exact zeros along the L2 path:", zeros_l2.tolist())

fig, axes = viz.figure(3, width=3.6)
for ax, path, title in (
    (axes[0], path_l2, "L2: shrinks"),
    (axes[1], path_l1, "L1 (proximal): zeros"),
):
    W = np.abs(np.asarray(path.params["w"]))
    ax.plot(strengths, W[:, k_sp:], color="0.7", lw=0.7)
    ax.plot(strengths, W[:, :k_sp], lw=1.5)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("penalty strength")
    ax.set_ylabel("|w_i|  (colored: the 5 true features)")
    ax.set_title(title)
i_show = int(np.argmin(np.abs(strengths - 0.1)))
bins = np.linspace(-2.2, 2.2, 45)
axes[2].hist(np.asarray(path_l2.params["w"][i_show]), bins=bins, alpha=0.6, label="L2")
axes[2].hist(np.asarray(path_l1.params["w"][i_show]), bins=bins, alpha=0.6, label="L1 proximal")
axes[2].set_yscale("log")
axes[2].set_title(f"weights at strength {strengths[i_show]:.3g}")
axes[2].legend()
viz.show(fig)

# %% [markdown]
# **What to notice.** Along the L1 path the irrelevant (grey) weights hit exactly zero one after
# another, most of them well before any true feature — L1 *selects* features, but not perfectly:
# the cell below finds, for every weight, the largest strength at which it is still non-zero, and
# some irrelevant weights outlive true ones (a noisy correlation with the 40 training targets can
# look as useful as a small true weight). Along the L2 path all weights shrink smoothly and none
# reaches zero. The histogram: a spike at 0 for L1.

# %%
W_l1 = np.asarray(path_l1.params["w"])  # (strengths, features)
alive = W_l1 != 0
last_alive = np.array(
    [strengths[np.nonzero(alive[:, j])[0].max()] if alive[:, j].any() else 0.0 for j in range(d_sp)]
)
true_last, noise_last = last_alive[:k_sp], last_alive[k_sp:]
outlive = [int(np.sum(noise_last > t)) for t in true_last]
print("last non-zero strength of the 5 true weights:", np.round(true_last, 3).tolist())
print(
    f"irrelevant weights: median last non-zero strength {np.median(noise_last):.3f}, "
    f"largest {noise_last.max():.3f}"
)
print("irrelevant weights that outlive each true weight:", outlive)
assert np.median(noise_last) < np.min(true_last)  # most irrelevant weights go first
assert max(outlive) > 0  # ... but not all: the text says so
#
# ### Exercise 3 · soft thresholding (2 points)
# Write `soft_threshold(w, t)`, the proximal step of $t|w|$, elementwise for any array `w`; raise
# `ValueError` when `t < 0`.


# %% [solution] id=ex01-soft-threshold
def soft_threshold(w, t):
    """Return sign(w) * max(|w| - t, 0); raise ValueError for t < 0."""
    ### BEGIN SOLUTION
    if t < 0:
        raise ValueError(f"t must be >= 0, got {t}")
    return jnp.sign(w) * jnp.maximum(jnp.abs(w) - t, 0.0)
    ### END SOLUTION


# %% [tests] id=ch01-test-soft-threshold points=2
check("01.soft_threshold", soft_threshold)
### BEGIN HIDDEN TESTS
check("01.soft_threshold", soft_threshold, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## 5 · Adam + L2 is not weight decay: AdamW
#
# > **Myth:** (the notes on Géron's chapter 11) "L1/L2 regularization is not suitable for Adam." **Fact:** an L2 term in
# > the loss works with Adam — it is still a valid penalty and Adam minimizes the penalized loss —
# > but it is *not* weight decay any more, because Adam divides the whole gradient, penalty
# > included, by $\sqrt{\hat v}$ coordinate by coordinate. AdamW (Loshchilov & Hutter 2019)
# > *decouples* the decay: $w \leftarrow w - \eta\big(\hat m/(\sqrt{\hat v} + \epsilon) + \lambda w\big)$.
#
# In `lessonlib.optim` the difference is only the order of a chain:
#
# ```
# Adam + L2: chain(add_decayed_weights(lam), scale_by_adam(), scale_by_learning_rate(lr))
# AdamW:     chain(scale_by_adam(), add_decayed_weights(lam), scale_by_learning_rate(lr))
# ```
#
# With SGD the two orders are the same (section 3). With Adam, after many steps the penalty's share
# of one update is about $\eta\lambda w_i / \sqrt{\hat v_i}$: coordinates with large gradients are
# hardly decayed. Numeric check first — the first chain *is* Adam on the penalized loss:

# %%
lr_a, lam_a = 0.01, 0.1
w_a = jnp.array([1.0, -2.0, 0.5])
g_a = jnp.array([0.3, 0.1, -2.0])
adam_l2 = optim.chain(
    optim.add_decayed_weights(lam_a), optim.scale_by_adam(), optim.scale_by_learning_rate(lr_a)
)
u_chain, _ = adam_l2.update(g_a, adam_l2.init(w_a), w_a)
u_loss, _ = optim.adam(lr_a).update(g_a + lam_a * w_a, optim.adam(lr_a).init(w_a))
print("chain(add_decayed_weights, adam):", np.asarray(u_chain))
print("adam on grad of loss + L2      :", np.asarray(u_loss))
assert jnp.allclose(u_chain, u_loss)
u_w, _ = optim.adamw(lr_a, weight_decay=lam_a).update(
    jnp.zeros(3), optim.adamw(lr_a, weight_decay=lam_a).init(w_a), w_a
)
print(
    "AdamW with zero gradient: update =",
    np.asarray(u_w),
    "= -lr*lam*w =",
    np.asarray(-lr_a * lam_a * w_a),
)
assert jnp.allclose(u_w, -lr_a * lam_a * w_a)

# %% [markdown]
# Now the effect in training: linear regression with three features of very different scales
# (standard deviations 10, 1 and 0.1), so the three gradients differ by orders of magnitude. We
# train with Adam + L2 and with AdamW (same $\eta$, same $\lambda$) and read the gradient scale
# $\sqrt{\hat v_i}$ from Adam's state at the end. The per-step decay factor of coordinate $i$ is
# $\eta\lambda$ for AdamW and $\approx \eta\lambda/\sqrt{\hat v_i}$ for Adam + L2.

# %%
scales = jnp.array([10.0, 1.0, 0.1])
X_ad = jax.random.normal(jax.random.key(30), (512, 3), jnp.float32) * scales
y_ad = X_ad @ jnp.ones(3) + 0.5 * jax.random.normal(jax.random.key(31), (512,), jnp.float32)
batches = jax.random.randint(jax.random.key(32), (3000, 32), 0, 512)


def run_optimizer(opt, lam_in_loss):
    def loss(w, idx):
        return 0.5 * jnp.mean((X_ad[idx] @ w - y_ad[idx]) ** 2) + lam_in_loss / 2 * jnp.sum(w**2)

    def step(carry, idx):
        w, state = carry
        updates, state = opt.update(jax.grad(loss)(w, idx), state, w)
        return (optim.apply_updates(w, updates), state), None

    w0 = jnp.ones(3)
    return jax.jit(lambda w: jax.lax.scan(step, (w, opt.init(w)), batches)[0])(w0)


lam_ad, lr_ad = 0.5, 0.01
w_adam_l2, s_adam_l2 = run_optimizer(optim.adam(lr_ad), lam_ad)
w_adamw, s_adamw = run_optimizer(optim.adamw(lr_ad, weight_decay=lam_ad), 0.0)
ridge = jnp.linalg.solve(X_ad.T @ X_ad / 512 + lam_ad * jnp.eye(3), X_ad.T @ y_ad / 512)


def grad_scale(state):
    adam_state = state[0]  # the ScaleByAdamState inside the chain
    return np.sqrt(np.asarray(adam_state.nu) / (1 - 0.999 ** int(adam_state.count)))


print(
    f"{'feature std':>12} {'sqrt(v_hat)':>12} {'decay/step Adam+L2':>19} {'decay/step AdamW':>17} "
    f"{'w Adam+L2':>10} {'w AdamW':>8} {'w ridge':>8}"
)
v_l2 = grad_scale(s_adam_l2)
for i in range(3):
    print(
        f"{float(scales[i]):12.1f} {v_l2[i]:12.4g} {lr_ad * lam_ad / (v_l2[i] + 1e-8):19.3g} "
        f"{lr_ad * lam_ad:17.3g} {float(w_adam_l2[i]):10.4f} {float(w_adamw[i]):8.4f} {float(ridge[i]):8.4f}"
    )

# %% [markdown]
# **What to notice** (numbers above). Under Adam + L2 the decay per step differs by orders of
# magnitude between the coordinates: the weight of the large-scale feature is barely decayed, the
# one with tiny gradients is decayed hardest. AdamW decays every coordinate by the same
# $\eta\lambda$ per step. Adam + L2 ends near the ridge solution of the penalized loss (it does
# minimize it), AdamW ends elsewhere: the two are different regularizers, and only AdamW's
# strength is independent of the gradient scale. Loshchilov & Hutter (2019, their figure 2) found
# two consequences on image classification: with decoupled decay the best $\lambda$ depends much
# less on the learning rate (the two can be tuned one after the other instead of jointly), and
# AdamW generalizes better than Adam + L2. (Their $\lambda$ is multiplied only by the schedule's
# multiplier; in optax, PyTorch, Keras and `lessonlib.optim` it is multiplied by the learning rate
# too — see the sharp bits.)
#
# ## 6 · Slider panels
#
# ### λ, live
# Move $\lambda$ (log scale; release the handle to retrain). Each move retrains the d2l model
# from scratch — 100 epochs in one compiled call, no recompilation because $\lambda$ is a traced
# value — and redraws the curves and $\|w\|$. Grey: the $\lambda = 0$ run for comparison.

# %%
panel_lambda = playground.lambda_panel(fit_d2l, baseline=h0, lam=3.0)  # fit_d2l(lam) per move
panel_lambda

# %% [markdown]
# **What to notice.** As $\lambda$ grows from $10^{-3}$, $\|w\|$ shrinks and the test loss falls
# by orders of magnitude, while the training loss *rises* (from about $10^{-6}$): the random
# initial weights that the data never constrain are decayed away, and the model stops
# interpolating the 20 training points. On this problem the test loss keeps falling up to the
# largest $\lambda$: the true weights are so small that $w = 0$ is nearly the best model (the
# "honest number" above). The cell below moves the slider over the range and checks all three.

# %%
compiles_before = train.compile_count()
for v in (0.001, 0.01, 0.1, 0.3, 1.0, 10.0, 100.0, 3.0):
    panel_lambda.update(lam=v)
lambda_ms = panel_lambda.times_ms[1:]
print(
    f"lambda panel: median {np.median(lambda_ms):.1f} ms per update (max {max(lambda_ms):.1f} ms), "
    f"new compilations: {train.compile_count() - compiles_before}"
)
lam_end = {v: fit_d2l(v).history for v in (0.001, 3.0, 100.0)}
print(
    "final train / test loss at lambda = 0.001, 3, 100:",
    [
        (round(float(h["train_loss"][-1]), 4), round(float(h["test_loss"][-1]), 4))
        for h in lam_end.values()
    ],
)
assert (
    lam_end[100.0]["test_loss"][-1]
    < lam_end[3.0]["test_loss"][-1]
    < lam_end[0.001]["test_loss"][-1]
)
assert (
    lam_end[100.0]["train_loss"][-1]
    > lam_end[3.0]["train_loss"][-1]
    > lam_end[0.001]["train_loss"][-1]
)
assert lam_end[100.0]["test_loss"][-1] < 1.2 * trivial  # about the w = 0 model

# %% [markdown]
# ### A 2-D playground
# In the spirit of TensorFlow Playground: pick a data set, its noise, the share of points used
# for training (the rest are the test points, drawn smaller with white edges), the hidden layers,
# the penalty (L1 by the proximal step, or L2) and its strength $\lambda$. The network (SGD with
# momentum, 100 full-batch steps) retrains on every change; the left plot is its predicted
# probability of class 1, the right plot its train/test loss. Float settings and the train share
# never recompile, and neither does the hidden layout: every layout trains as one network of the
# largest shape (three layers of 32 units) whose unused units and layers are masked to zero.
#
# Try: spiral, noise 0.2, hidden 32-32, no penalty — then raise $\lambda$ with L2 and watch the
# boundary smooth out; with L1, the title counts the weights that are exactly zero.
#
# **What to notice** (the second cell after the panel checks these on moons with a 30% train
# share).
# With no penalty the network reaches a near-zero training loss while the test loss turns back up
# — the overfitting of section 1. A moderate L2 $\lambda$ keeps the two curves together; a large
# one flattens the boundary until both accuracies fall. L1 at the same strength sets many weights
# exactly to zero (counted in the title) while L2 sets none.

# %%
panel_playground = playground.playground_panel(epochs=100)  # 100 full-batch steps per change
panel_playground

# %%
compiles_before = playground.compile_count()
n_before = len(panel_playground.times_ms)
for settings in (
    {"lam": 1e-4},
    {"lam": 1e-2},
    {"lam": 0.1},
    {"reg": "L1", "lam": 1e-2},
    {"reg": "none"},
    {"noise": 0.1},
    {"train_share": 0.6},
    {"train_share": 0.2},
    {"dataset": "circles"},
    {"dataset": "spiral", "reg": "L2", "lam": 1e-3},
    {"hidden": "8"},
    {"hidden": "16-16-16"},
    {"hidden": "32-32"},
):
    panel_playground.update(**settings)
pg_ms = panel_playground.times_ms[n_before:]
print(
    f"playground: median {np.median(pg_ms):.1f} ms per update (max {max(pg_ms):.1f} ms), "
    f"new compilations for float settings, train shares, data sets and layouts: "
    f"{playground.compile_count() - compiles_before}"
)
assert playground.compile_count() == compiles_before

# %%
pg = {
    (reg, lam): playground.train_classifier(
        "moons", noise=0.25, train_share=0.3, hidden=(32, 32), reg=reg, lam=lam
    )
    for reg, lam in (("none", 0.0), ("L2", 0.01), ("L2", 0.3), ("L1", 0.01))
}
for (reg, lam), res in pg.items():
    h = res.run.history
    print(
        f"{reg:>4} lambda {lam:<5g}: train loss {h['train_loss'][-1]:.3f}, test loss "
        f"{h['test_loss'][-1]:.3f} (lowest {h['test_loss'].min():.3f}), accuracy train "
        f"{h['train_acc'][-1]:.2f} / test {h['test_acc'][-1]:.2f}, "
        f"zero weights {playground.count_zeros(res.run.params)[0]}"
    )
none, mid, big = (pg[k].run.history for k in (("none", 0.0), ("L2", 0.01), ("L2", 0.3)))
assert none["train_loss"][-1] < 0.05 and none["test_loss"][-1] > 1.2 * none["test_loss"].min()
assert mid["test_loss"][-1] < none["test_loss"][-1]
assert big["train_acc"][-1] < 0.8 and big["test_acc"][-1] < 0.8
assert playground.count_zeros(pg["L1", 0.01].run.params)[0] > 100
assert playground.count_zeros(pg["L2", 0.01].run.params)[0] == 0

# %% [markdown]
# ## 7 · Choosing λ on a validation split
#
# $\lambda$ is a hyperparameter: it cannot be learned from the training loss (which always prefers
# $\lambda = 0$), and choosing it with the test set makes the test score optimistic — the test set
# would then be part of training. Hold out a **validation** split instead, pick $\lambda$ there,
# and touch the test set once at the end.
#
# The setup (`playground.SELECTION`): noisy moons, the 2-32-32-2 network, 60 training points, 60
# validation points, 400 test points. `train_val` has the validation points in its test slot, so
# after a sweep `history["test_loss"]` is the **validation** loss.

# %% [readonly] id=ch01-selection-setup
train_val, train_test = playground.selection_splits()
lams = np.asarray(playground.SELECTION["lams"], np.float32)
sel_lr = playground.SELECTION["lr"]
sel_model = playground.classifier(playground.SELECTION["hidden"])
sel_init_key, sel_fit_key = jax.random.split(jax.random.key(0))  # weights, training: two keys
sel_params, _ = sel_model.init(sel_init_key)
sel_kwargs = dict(
    key=sel_fit_key,
    epochs=playground.SELECTION["epochs"],
    batch_size=60,
    optimizer=playground.optimizer,
    penalty=playground.penalty,
    project=playground.prox_l1,
)
print("lr:", sel_lr, " lams:", np.round(lams, 5).tolist())
print(
    "train",
    train_val.x_train.shape,
    "validation",
    train_val.x_test.shape,
    "test",
    train_test.x_test.shape,
)

# %% [markdown]
# ### Exercise 4 · pick λ (2 points)
# Run `train.sweep(sel_model, sel_params, train_val, hp={"lr": sel_lr, "l1": 0.0, "l2": lams}, **sel_kwargs)`,
# take the final validation loss of every run and set `lam_best` to the $\lambda$ (one of `lams`,
# a float) with the smallest one.

# %% [solution] id=ex01-lam-best
### BEGIN SOLUTION
val_runs = train.sweep(
    sel_model, sel_params, train_val, hp={"lr": sel_lr, "l1": 0.0, "l2": lams}, **sel_kwargs
)
lam_best = float(lams[np.argmin(val_runs.history["test_loss"][:, -1])])
### END SOLUTION

# %% [tests] id=ch01-test-lam-best points=2
check("01.lam_best")
### BEGIN HIDDEN TESTS
check("01.lam_best", hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# The three curves, computed with the library (so they appear even before you solve the
# exercise): training loss falls as $\lambda \to 0$, validation and test loss are U-shaped.

# %%
sel = playground.selection_losses()  # the grader's numbers: one sweep, scored on both splits
i_val = int(np.argmin(sel["val"]))
fig, axes = viz.figure(1, width=5)
axes[0].plot(lams, sel["train"], "o-", color=viz.COLORS["train"], label="train")
axes[0].plot(lams, sel["val"], "s-", color="#ff7f0e", label="validation")
axes[0].plot(lams, sel["test"], "^-", color=viz.COLORS["test"], label="test")
axes[0].axvline(lams[i_val], color="k", ls=":", lw=1)
axes[0].set(xscale="log", yscale="log", xlabel="lambda", ylabel="final loss")
axes[0].legend()
viz.show(fig)
print(
    f"validation picks lambda = {lams[i_val]:.3g}: test loss {sel['test'][i_val]:.3f} "
    f"(lambda -> 0: {sel['test'][0]:.3f}, largest lambda: {sel['test'][-1]:.3f})"
)
assert sel["test"][i_val] < min(sel["test"][0], sel["test"][-1])  # the U the text describes

# %% [markdown]
# ## Sharp bits
#
# - **Penalize weights, not biases.** A bias does not make the function wigglier; `l2_penalty`
#   and `weight_mask` skip leaves not named `"w"` (and d2l's concise version puts `weight_decay`
#   only on `net[0].weight`).
# - **Conventions differ by a factor of 2.** Here (and in d2l, PyTorch's `weight_decay`, optax's
#   `add_decayed_weights`) the penalty is $\frac\lambda2\|w\|^2$ with gradient $\lambda w$. Keras'
#   `regularizers.l2(0.01)` (Xiao Han's blog post, the Géron notes) adds $0.01\sum w^2$ — twice
#   the gradient — and the 2024 study notes write $L + \lambda\sum_i w_i^2$. Compare λ values across libraries with care.
# - **Keras regularizers + Adam is "Adam + L2".** `kernel_regularizer` puts the term into the
#   loss, so with Adam it is rescaled per coordinate; use `AdamW` (`weight_decay=`) for decoupled
#   decay. PyTorch's `Adam(weight_decay=...)` is also L2-in-the-loss; `AdamW` is the decoupled one.
# - **AdamW's decay is multiplied by the learning rate** in optax, PyTorch, Keras and
#   `lessonlib.optim` (the paper multiplies only by the schedule): a learning-rate schedule also
#   schedules the decay.
# - **Subgradient L1 does not give exact zeros**; use the proximal step (soft thresholding) if you
#   want a sparse model, and count zeros with `== 0`, not by eye.
# - **$\eta\lambda$ must stay below 1** (below 2 to avoid divergence) or the "decay" flips signs.
#   A learning rate that is too large is reported, not crashed on: `train.fit` warns and
#   `Run.diverged_at()` names the epoch.
# - **The d2l notes' data formula says $\epsilon \sim \mathcal N(0, 0.1^2)$**; d2l v0.17's code (and
#   `lessonlib.data.synthetic_linear`) uses standard deviation 0.01.
# - **Define penalty/optimizer functions once.** `train.fit` compiles per function object; a new
#   `lambda` inside a slider callback would recompile on every move (`train.compile_count()`).
#
# ## References
#
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola. *Dive into Deep Learning*, v0.17, §4.5 "Weight
#   Decay" (and §4.4 on model selection, under- and overfitting).
# - A. Krogh, J. A. Hertz (1992). A simple weight decay can improve generalization. *NeurIPS 4*.
# - R. Tibshirani (1996). Regression shrinkage and selection via the lasso. *J. R. Stat. Soc. B* 58(1).
# - I. Loshchilov, F. Hutter (2019). Decoupled weight decay regularization. *ICLR*.
# - A. Beck, M. Teboulle (2009). A fast iterative shrinkage-thresholding algorithm for linear
#   inverse problems. *SIAM J. Imaging Sciences* 2(1) — proximal gradient / ISTA.
# - D. Smilkov, S. Carter (2016). TensorFlow Playground.
# - The course's sources (the d2l notes, the JAX book chapter, Xiao Han's blog post, the 2024 study
#   notes, the Géron notes) and their mistakes: [sources.md](../sources.md).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | overfitting | 过拟合 | small training error, large test error: the model fits noise |
# | underfitting | 欠拟合 | the training error itself stays large: the model is too simple or too constrained |
# | generalization | 泛化 | performance on data not seen during training |
# | bias | 偏差 | error of the average prediction over training sets |
# | variance | 方差 | how much predictions change from one training set to another |
# | regularization | 正则化 | any change that lowers test error without lowering training error, e.g. a penalty |
# | weight decay | 权重衰减 / 权重衰退 | multiplying the weights by $1 - \eta\lambda$ each step; the same as an L2 penalty for SGD |
# | L2 penalty | L2 正则化 | $\frac\lambda2\lVert w\rVert^2$ added to the loss |
# | L1 penalty (lasso) | L1 正则化（套索） | $\alpha\sum_i \lvert w_i\rvert$ added to the loss; gives sparse weights |
# | Lagrange multiplier | 拉格朗日乘子 | $\mu$ turning the constraint $\lVert w\rVert^2\le\theta$ into a penalty, $\lambda = 2\mu$ |
# | soft thresholding | 软阈值 | $\mathrm{sign}(w)\max(\lvert w\rvert - t, 0)$, the proximal step of L1 |
# | sparsity | 稀疏性 | many weights exactly zero |
# | regularization path | 正则化路径 | the fitted weights as a function of the penalty strength |
# | validation set | 验证集 | held-out data for choosing hyperparameters such as $\lambda$ |
# | hyperparameter | 超参数 | a setting chosen outside training, e.g. $\lambda$, $\eta$ |
# | decoupled weight decay (AdamW) | 解耦权重衰减 | decay applied outside Adam's per-coordinate rescaling |

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s (after imports)")
