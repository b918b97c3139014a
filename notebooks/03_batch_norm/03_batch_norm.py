# %% [markdown]
# # 03 · Batch normalization
#
# A deep network trains badly when the inputs of its layers drift in scale while it learns. Batch
# normalization (BN, Ioffe & Szegedy 2015) standardizes every feature of a layer with the mean and
# variance of the current minibatch, then lets the network rescale it with two trained vectors.
# In this chapter you will:
#
# - compute what BN does in training and in evaluation mode, and see which of its numbers are
#   trained (gamma, beta) and which are running averages (mean, var);
# - untangle the three "momentum" conventions you meet in PyTorch, Keras/Flax and the JAX book
#   chapter;
# - fix the JAX book chapter's batch norm (spot the bug), and write and gradient-check its
#   backward pass;
# - compare BN before vs after the activation, feel how batch size and learning rate interact with
#   BN on two slider panels, and weigh its costs.
#
# **Sources.** The JAX book chapter (a Chinese translation of chapter 6 of a book on deep learning
# with JAX) supplies the batch norm to fix; the notes on Géron's chapter 11 the placement advice; the
# 2024 study notes the list of costs. [The course's sources](../sources.md) says what each document
# is and where each of its mistakes is corrected.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Markdown, display

from lessonlib import data, layers, models, train
from lessonlib.demos import ch03_batch_norm as bn_demo
from lessonlib.exercises import check

ds = data.digits()  # 1,437 train / 360 test 8x8 digits, 64 features in [0, 1]
print("train", ds.x_train.shape, "test", ds.x_test.shape)

# %% [markdown]
# ## What BN computes
#
# For a minibatch $x_1, \dots, x_B$ of one layer's features (each row is an example), training mode
# computes per feature
#
# $$\mu_B = \frac{1}{B}\sum_i x_i, \qquad \sigma_B^2 = \frac{1}{B}\sum_i (x_i - \mu_B)^2, \qquad
# y_i = \gamma \, \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta .$$
#
# $\sigma_B^2$ is the *biased* variance (divide by $B$, not $B-1$). Right after the normalization
# every feature has mean 0 and variance $\sigma_B^2/(\sigma_B^2+\epsilon)$ — 1 unless the feature
# barely varies; $\gamma$ and $\beta$ then give the
# network back any scale and shift it wants, so BN never removes expressive power.
# Check it on a batch whose features have very different scales:

# %%
key = jax.random.key(0)
x = 3.0 + jax.random.normal(key, (64, 4)) * jnp.array([[0.1, 1.0, 10.0, 100.0]])
params, state = layers.batch_norm_init(4)
y, new_state = layers.batch_norm(params, state, x, train=True)
print("input  mean per feature:", np.round(np.asarray(x.mean(0)), 3))
print("input  var  per feature:", np.round(np.asarray(x.var(0)), 3))
print("output mean per feature:", np.round(np.asarray(y.mean(0)), 6))
print("output var  per feature:", np.round(np.asarray(y.var(0)), 5))
mu, var = x.mean(0), x.var(0)
by_hand = (x - mu[None]) / jnp.sqrt(var[None] + 1e-5)
assert jnp.allclose(y, by_hand, atol=1e-5)
# exactly: output variance = var / (var + eps), which is visibly below 1 only for tiny variances
print("var / (var + eps):      ", np.round(np.asarray(var / (var + 1e-5)), 5))
assert jnp.allclose(y.mean(0), 0.0, atol=1e-5)
assert jnp.allclose(y.var(0), var / (var + 1e-5), rtol=1e-4)

# %% [markdown]
# ### Trained parameters vs buffers
#
# BN keeps two kinds of numbers per feature. **gamma and beta are parameters**: the loss depends on
# them and gradient descent trains them. **The running mean and variance are buffers**: they are
# not trained, they are exponential moving averages of the batch statistics, updated on the side
# during training and used *instead of* the batch statistics at inference. In lessonlib they live
# in two different pytrees — `params` (what the optimizer sees) and `state` — and
# `batch_norm` returns the new state rather than changing anything in place.
#
# The gradient shows the split: the loss has a gradient for gamma and beta, while the new running
# statistics carry no gradient at all.

# %%
params = {"gamma": jnp.array([1.0, 2.0, 0.5, 1.0]), "beta": jnp.array([0.0, 1.0, -1.0, 0.0])}


def loss_of(params, state, x):
    y, new_state = layers.batch_norm(params, state, x, train=True)
    return jnp.sum(y**2), new_state


grads, new_state = jax.grad(loss_of, has_aux=True)(params, state, x)
print("d loss / d gamma:", np.round(np.asarray(grads["gamma"]), 3))
print("d loss / d beta: ", np.round(np.asarray(grads["beta"]), 3))
d_state = jax.grad(lambda x: jnp.sum(loss_of(params, state, x)[1]["mean"]))(x)
print("gradient that flows through the running mean:", float(jnp.abs(d_state).max()))
# sum(y^2) = sum((gamma*z + beta)^2) with z = (x - mu)/sqrt(var + eps), sum(z) = 0 and
# sum(z^2) = B*var/(var + eps): d/dgamma = 2*gamma*B*var/(var + eps), d/dbeta = 2*beta*B
B = x.shape[0]
mu, var = x.mean(0), x.var(0)
assert jnp.allclose(grads["gamma"], 2 * params["gamma"] * B * var / (var + 1e-5), rtol=1e-3)
assert jnp.allclose(grads["beta"], 2 * params["beta"] * B, rtol=1e-3, atol=1e-2)

# %% [markdown]
# ### The running averages and evaluation mode
#
# lessonlib follows the Keras/Flax convention: `momentum` is the **keep rate**,
#
# $$\hat\mu \leftarrow m\,\hat\mu + (1 - m)\,\mu_B, \qquad \hat\sigma^2 \leftarrow m\,\hat\sigma^2 + (1-m)\,\sigma_B^2 .$$
#
# Fed the same batch $k$ times from $\hat\mu_0$, the running mean is
# $\hat\mu_k = m^k \hat\mu_0 + (1 - m^k)\,\mu_B$. Evaluation mode (`train=False`) normalizes with
# $\hat\mu, \hat\sigma^2$, so one example gets the same output alone or inside any batch.

# %%
params, state = layers.batch_norm_init(4)
k, m = 20, 0.9
s = state
for _ in range(k):
    _, s = layers.batch_norm(params, s, x, train=True, momentum=m)
closed = m**k * state["mean"] + (1 - m**k) * x.mean(0)
print("running mean after 20 steps:", np.round(np.asarray(s["mean"]), 4))
print("closed form m^k*mu0 + (1-m^k)*mu_B:", np.round(np.asarray(closed), 4))
assert jnp.allclose(s["mean"], closed, rtol=1e-5)

y_all, _ = layers.batch_norm(params, s, x, train=False)
y_one, _ = layers.batch_norm(params, s, x[:1], train=False)
print("eval mode, example 0 inside the batch vs alone:", np.allclose(y_all[:1], y_one))
y_tr_all, _ = layers.batch_norm(params, s, x, train=True)
y_tr_half, _ = layers.batch_norm(params, s, x[:32], train=True)
print("train mode, example 0 in a batch of 64 vs of 32: ", np.allclose(y_tr_all[:1], y_tr_half[:1]))

# %% [markdown]
# ## Three momentum conventions, one table
#
# The word *momentum* means opposite things in different libraries:
#
# - **PyTorch** `nn.BatchNorm1d(momentum=0.1)`: momentum is the **update rate**,
#   $\hat\mu \leftarrow (1 - 0.1)\,\hat\mu + 0.1\,\mu_B$;
# - **Keras** `BatchNormalization(momentum=0.99)` and **Flax** `nn.BatchNorm(momentum=0.99)`:
#   momentum is the **keep rate**, $\hat\mu \leftarrow 0.99\,\hat\mu + 0.01\,\mu_B$;
# - **the JAX book chapter** writes `running_mean = momentum * running_mean + (1 - momentum) * mean` — the keep
#   rate — but never says what `momentum` is; with 0.9 it equals PyTorch's 0.1;
# - **lessonlib** `batch_norm(momentum=0.9)`: keep rate.
#
# The table feeds the same batch means to every rule, starting from 0. The library rows are the
# update rules exactly as each library's documentation writes them — PyTorch:
# `running_mean = (1 - momentum) * running_mean + momentum * batch_mean`; Keras:
# `moving_mean = moving_mean * momentum + mean(batch) * (1 - momentum)`, which Flax's
# `nn.BatchNorm` also computes — typed out below, independently of lessonlib. The last row calls
# `layers.batch_norm` itself on batches that have exactly those means. (Flax is not part of the
# course's install, so the course's own tests run `flax.linen.BatchNorm` and compare its running
# mean and variance with `layers.batch_norm`.)

# %%
batch_means = [4.0, 2.0, 5.0, 3.0, 4.0]
rules = [
    ("PyTorch `momentum=0.1`", "update rate", 0.1, "update"),
    ("Keras `momentum=0.99`", "keep rate", 0.99, "keep"),
    ("Flax `momentum=0.99`", "keep rate", 0.99, "keep"),
    ("JAX book chapter's formula, momentum = 0.9", "keep rate", 0.9, "keep"),
]


def documented_rule(means, momentum, convention):
    """The libraries' documented updates, from 0: PyTorch's (update rate) or Keras/Flax's (keep rate)."""
    value, out = 0.0, []
    for batch_mean in means:
        if convention == "update":  # PyTorch: (1 - momentum) * running + momentum * batch
            value = (1 - momentum) * value + momentum * batch_mean
        else:  # Keras / Flax: running * momentum + batch * (1 - momentum)
            value = value * momentum + batch_mean * (1 - momentum)
        out.append(value)
    return np.asarray(out)


rows = {name: documented_rule(batch_means, mom, conv) for name, _, mom, conv in rules}
p1, s1 = layers.batch_norm_init(1)
ours = []
for mu_b in batch_means:
    batch = jnp.array([[mu_b - 1.0], [mu_b + 1.0]])  # mean mu_b
    _, s1 = layers.batch_norm(p1, s1, batch, train=True, momentum=0.9)
    ours.append(float(s1["mean"][0]))
rows["lessonlib `batch_norm(momentum=0.9)`"] = np.asarray(ours)
meaning = {name: what for name, what, _, _ in rules} | {
    "lessonlib `batch_norm(momentum=0.9)`": "keep rate"
}

header = (
    "| library | momentum means | "
    + " | ".join(f"step {i + 1} (batch mean {b:g})" for i, b in enumerate(batch_means))
    + " |"
)
lines = [header, "|" + "---|" * (len(batch_means) + 2)]
for name, vals in rows.items():
    lines.append(f"| {name} | {meaning[name]} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
display(Markdown("\n".join(lines)))
assert np.allclose(
    rows["PyTorch `momentum=0.1`"], rows["lessonlib `batch_norm(momentum=0.9)`"], rtol=1e-6
)
assert np.allclose(
    rows["JAX book chapter's formula, momentum = 0.9"],
    rows["lessonlib `batch_norm(momentum=0.9)`"],
    rtol=1e-6,
)
print("PyTorch 0.1 == the book's formula with 0.9 == lessonlib 0.9: True")
assert np.allclose(  # and lessonlib's code agrees with its own documented keep-rate rule
    bn_demo.running_average(batch_means, momentum=0.9, convention="keep"),
    rows["lessonlib `batch_norm(momentum=0.9)`"],
    rtol=1e-6,
)
print(
    f"Keras/Flax 0.99 after 5 steps: {rows['Keras `momentum=0.99`'][-1]:.4f} (still far from the batch means)"
)

# %% [markdown]
# What to notice: PyTorch's 0.1, the book's formula with 0.9 and lessonlib's 0.9 are the *same*
# rule; Keras/Flax's default 0.99 moves ten times more slowly, so early in training its running
# statistics still sit near their initial values (the exercise `steps_to_90` below counts how many
# steps it needs). Copying `momentum=0.1` from a PyTorch recipe into Keras or Flax gives a running
# average that forgets almost everything at every step. One more difference: PyTorch stores the
# *unbiased* batch variance ($B-1$) in its running variance, while Keras, Flax and lessonlib store
# the biased one.
#
# ## Spot the bug: the JAX book chapter's batch norm
#
# The JAX book chapter gives this function, transcribed as written:


# %%
def book_apply_batch_norm(x, running_mean, running_var, is_training):
    mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
    if is_training:
        # update the running statistics during training
        running_mean = momentum * running_mean + (1 - momentum) * mean  # noqa: F821
        running_var = momentum * running_var + (1 - momentum) * var  # noqa: F821
    normalized_x = (x - mean) / jnp.sqrt(var + epsilon)  # noqa: F821
    return gamma * normalized_x + beta  # noqa: F821


try:
    book_apply_batch_norm(x, jnp.zeros(4), jnp.ones(4), True)
except NameError as e:
    print("NameError:", e)
print("does jax.nn.batch_norm exist?", hasattr(jax.nn, "batch_norm"))

# %% [markdown]
# > **Myth:** "use `jax.nn.batch_norm`" (the JAX book chapter). **Fact:** JAX has no batch-norm layer
# > (the check above prints False); Flax (`flax.linen.BatchNorm`), Haiku and Equinox have one, and
# > lessonlib's `layers.batch_norm` is 30 readable lines.
#
# What else is wrong? Before reading on, list what you find. Then run the next cell, which supplies
# the missing names so the function runs at all.

# %%
momentum, epsilon = 0.9, 1e-5
gamma, beta = jnp.ones(4), jnp.zeros(4)
rm, rv = jnp.full(4, 3.0), jnp.ones(4)
one = book_apply_batch_norm(x[:1], rm, rv, False)  # inference on one example
other = book_apply_batch_norm(x[1:2] * 10, rm, rv, False)
print("inference on one example:   ", np.asarray(one[0]))
print("a completely different input:", np.asarray(other[0]))
in_batch = book_apply_batch_norm(x[:8], rm, rv, False)
print("example 0 predicted inside a batch of 8:", np.round(np.asarray(in_batch[0]), 3))
del momentum, epsilon, gamma, beta

# %% [markdown]
# The bugs (all listed, with the rest of the chapter's mistakes, in [the course's
# sources](../sources.md)):
#
# 1. `momentum`, `epsilon`, `gamma`, `beta` are free names: the function raises `NameError` unless
#    globals with those names happen to exist — and gamma/beta must be *trained parameters*, so they
#    belong in the arguments (or a params pytree).
# 2. It always normalizes with the **batch** statistics, even when `is_training` is False: the
#    running averages are never used at inference. A prediction depends on the other examples in the
#    batch, and a single example always comes out as `beta` (all zeros above) whatever its input.
# 3. The updated `running_mean`/`running_var` are local variables that are never returned, so the
#    running averages never change.
# 4. `jax.nn.batch_norm` (suggested in the same text) does not exist.
#
# ## Exercises
#
# ### Exercise 1 — batch norm in train and eval mode
#
# Write `batch_norm(params, state, x, train, momentum=0.9, eps=1e-5) -> (y, new_state)` with
# `params = {"gamma", "beta"}`, `state = {"mean", "var"}`: train mode normalizes with the batch
# statistics (biased variance) and returns the updated running averages (keep-rate momentum); eval
# mode uses `state` and returns it unchanged. A batch of one example in train mode raises
# `ValueError` (its variance is 0). Reduce over axis 0 (x has shape `(batch, features)`).


# %% [solution] id=ex03-batch-norm
def batch_norm(params, state, x, train, momentum=0.9, eps=1e-5):
    """Batch norm over axis 0; returns (y, new_state)."""
    ### BEGIN SOLUTION
    if train:
        if x.shape[0] < 2:
            raise ValueError(f"train mode needs a batch of at least 2 examples, got {x.shape[0]}")
        mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
        new_state = {
            "mean": momentum * state["mean"] + (1 - momentum) * mean,
            "var": momentum * state["var"] + (1 - momentum) * var,
        }
    else:
        mean, var, new_state = state["mean"], state["var"], state
    y = params["gamma"][None] * (x - mean[None]) / jnp.sqrt(var[None] + eps) + params["beta"][None]
    return y, new_state
    ### END SOLUTION


# %% [tests] id=ch03-test-batch-norm points=3
check("03.batch_norm", batch_norm)
### BEGIN HIDDEN TESTS
check("03.batch_norm", batch_norm, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — fix the book's batch norm
#
# Keep the book's signature, but make every name an argument and return the running statistics:
# `apply_batch_norm(x, running_mean, running_var, is_training, gamma, beta, momentum=0.9,
# epsilon=1e-5) -> (y, running_mean, running_var)`. At inference it must use the running statistics.


# %% [solution] id=ex03-apply-batch-norm
def apply_batch_norm(
    x, running_mean, running_var, is_training, gamma, beta, momentum=0.9, epsilon=1e-5
):
    """The JAX book chapter's batch norm, fixed."""
    ### BEGIN SOLUTION
    if is_training:
        mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        mean, var = running_mean, running_var
    normalized_x = (x - mean[None]) / jnp.sqrt(var[None] + epsilon)
    return gamma[None] * normalized_x + beta[None], running_mean, running_var
    ### END SOLUTION


# %% [tests] id=ch03-test-apply-batch-norm points=2
check("03.apply_batch_norm", apply_batch_norm)
### BEGIN HIDDEN TESTS
check("03.apply_batch_norm", apply_batch_norm, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — predict the running mean
#
# The batch mean of a feature stays at `mu` while the running mean starts at `m0`. Write
# `running_mean_after(k, m0, mu, momentum)`, the running mean after `k` updates with keep-rate
# `momentum` — in closed form, without a loop. Raise `ValueError` for `k < 0` or a momentum outside
# [0, 1].


# %% [solution] id=ex03-running-mean-after
def running_mean_after(k, m0, mu, momentum):
    ### BEGIN SOLUTION
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    return momentum**k * m0 + (1 - momentum**k) * mu
    ### END SOLUTION


# %% [tests] id=ch03-test-running-mean-after points=2
check("03.running_mean_after", running_mean_after)
### BEGIN HIDDEN TESTS
check("03.running_mean_after", running_mean_after, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 — how slow is 0.99?
#
# With Keras/Flax's default `momentum=0.99`, a running mean starting at 0 follows batch means that
# are always 1. Set `steps_to_90` to the number of steps after which it first reaches 0.9.

# %% [solution] id=ex03-steps-to-90
### BEGIN SOLUTION
steps_to_90 = int(np.ceil(np.log(0.1) / np.log(0.99)))
### END SOLUTION

# %% [tests] id=ch03-test-steps-to-90 points=1
check("03.steps_to_90")
### BEGIN HIDDEN TESTS
check("03.steps_to_90", hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5 — the backward pass, checked by finite differences
#
# `jax.grad` differentiates batch norm for you, but the gradient shows what BN does to learning:
# the batch mean and variance depend on *every* example, so the gradient for one example depends
# on the others. With $\hat x_i = (x_i - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}$ and an upstream
# gradient $g_i = \partial L / \partial y_i$ (per feature):
#
# $$\frac{\partial L}{\partial \beta} = \sum_i g_i, \qquad
# \frac{\partial L}{\partial \gamma} = \sum_i g_i \hat x_i, \qquad
# \frac{\partial L}{\partial x_i} = \frac{\gamma}{B\sqrt{\sigma_B^2 + \epsilon}}
# \Big(B g_i - \sum_j g_j - \hat x_i \sum_j g_j \hat x_j\Big).$$
#
# The two sums are the paths through $\mu_B$ and through $\sigma_B^2$ (Ioffe & Szegedy 2015,
# section 3). Write `batch_norm_backward(dy, x, gamma, eps=1e-5) -> (dx, dgamma, dbeta)` for
# train mode, `x` and `dy` of shape `(batch, features)`; raise `ValueError` for a batch of one.
# The cell after the check runs a *gradient check*: central finite differences of the library's
# forward pass against this formula, the test every hand-written backward pass should pass.


# %% [solution] id=ex03-batch-norm-backward
def batch_norm_backward(dy, x, gamma, eps=1e-5):
    """Gradients of train-mode batch norm: (dx, dgamma, dbeta)."""
    ### BEGIN SOLUTION
    if x.shape[0] < 2:
        raise ValueError(f"train mode needs a batch of at least 2 examples, got {x.shape[0]}")
    b = x.shape[0]
    inv = 1.0 / jnp.sqrt(jnp.var(x, axis=0) + eps)
    xhat = (x - jnp.mean(x, axis=0)) * inv
    dbeta, dgamma = jnp.sum(dy, axis=0), jnp.sum(dy * xhat, axis=0)
    dx = gamma * inv / b * (b * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
    ### END SOLUTION


# %% [tests] id=ch03-test-batch-norm-backward points=2
check("03.batch_norm_backward", batch_norm_backward)
### BEGIN HIDDEN TESTS
check("03.batch_norm_backward", batch_norm_backward, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# The gradient check, on the library's batch norm: perturb one input at a time by $\pm h$ and
# compare $(L(x + h e_i) - L(x - h e_i))/2h$ with the formula above (written out here in NumPy,
# float64) and with `jax.grad`. The relative error should be tiny, far below the error of
# forgetting the paths through the statistics (the last line: $\gamma g_i/\sqrt{\sigma_B^2+\epsilon}$
# alone).

# %%
jax.config.update("jax_enable_x64", True)  # finite differences need float64
try:
    rng = np.random.default_rng(0)
    x64, g64 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    gamma64 = rng.uniform(0.5, 2.0, 3)
    bn_params = {"gamma": jnp.asarray(gamma64), "beta": jnp.zeros(3, jnp.float64)}
    bn_state = {"mean": jnp.zeros(3, jnp.float64), "var": jnp.ones(3, jnp.float64)}

    def loss_of_x(x):
        return jnp.sum(jnp.asarray(g64) * layers.batch_norm(bn_params, bn_state, x, train=True)[0])

    h_fd = 1e-6
    fd = np.zeros_like(x64)
    for i in np.ndindex(x64.shape):
        e = np.zeros_like(x64)
        e[i] = h_fd
        fd[i] = (
            float(loss_of_x(jnp.asarray(x64 + e))) - float(loss_of_x(jnp.asarray(x64 - e)))
        ) / (2 * h_fd)
    inv64 = 1 / np.sqrt(x64.var(0) + 1e-5)
    xhat64 = (x64 - x64.mean(0)) * inv64
    formula = gamma64 * inv64 / 6 * (6 * g64 - g64.sum(0) - xhat64 * (g64 * xhat64).sum(0))
    autodiff = np.asarray(jax.grad(loss_of_x)(jnp.asarray(x64)))
    naive = gamma64 * inv64 * g64

    def rel(a, b):
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    print(f"formula vs finite differences: relative error {rel(formula, fd):.1e}")
    print(f"jax.grad vs finite differences: relative error {rel(autodiff, fd):.1e}")
    print(f"constant statistics (no paths through mean and var): {rel(naive, fd):.1e}")
    assert rel(formula, fd) < 1e-6 and rel(autodiff, fd) < 1e-6 and rel(naive, fd) > 0.1
finally:
    jax.config.update("jax_enable_x64", False)

# %% [markdown]
# ## Before or after the activation?
#
# Ioffe & Szegedy put BN between the linear map and the nonlinearity; the notes on Géron's
# chapter 11 recommend the same, **Linear → BN → activation**, and drop the linear layer's bias because
# BN subtracts the mean anyway and its beta plays the bias's role. The other order,
# Linear → activation → BN, is also common. `models.mlp(..., batch_norm="before" | "after")` builds
# both; the next cell trains them and a network without BN on the same data, from the same key, at
# a moderate and a large learning rate (3 epochs, batch 64, plain SGD).

# %%
SIZES, EPOCHS, BATCH = bn_demo.LR_SIZES, bn_demo.LR_EPOCHS, bn_demo.LR_BATCH  # 64-64-10, 3, 64
lr_nets = bn_demo.lr_models(SIZES)  # name -> (model, params, state); reused by the lr panel
after = models.mlp(SIZES, batch_norm="after")
variants = {
    "no BN": lr_nets["no BN"],
    "BN before activation": lr_nets["BN"],
    "BN after activation": (after, *after.init(jax.random.key(0))),  # lr_models' key: same start
}
print("bias in the hidden layer:", {n: "b" in p["dense"][0] for n, (_, p, _) in variants.items()})
order_acc = {}
for lr in (0.3, 3.0):
    for name, (net, p, st) in variants.items():
        run = train.fit(
            net,
            p,
            ds,
            state=st,
            key=jax.random.key(1),  # one key for all three on purpose: the same shuffles
            hp={"lr": lr},
            epochs=EPOCHS,
            batch_size=BATCH,
        )
        order_acc[name, lr] = float(run.history["test_acc"][-1])
lines = ["| network | test acc, lr 0.3 | test acc, lr 3 |", "|---|---|---|"]
lines += [f"| {n} | {order_acc[n, 0.3]:.3f} | {order_acc[n, 3.0]:.3f} |" for n in variants]
display(Markdown("\n".join(lines)))
bn_orders = ("BN before activation", "BN after activation")
print(
    "at lr 3 the network without BN collapses (< 0.5) while both BN orders train (> 0.9):",
    order_acc["no BN", 3.0] < 0.5 and min(order_acc[n, 3.0] for n in bn_orders) > 0.9,
)
print(
    "at lr 0.3 all three within 0.05 of each other:",
    max(order_acc[n, 0.3] for n in variants) - min(order_acc[n, 0.3] for n in variants) < 0.05,
)

# %% [markdown]
# What to notice: at the moderate rate all three reach similar accuracy; at the large rate the
# network without BN collapses while both BN orders keep training. On this small problem the order
# matters far less than having BN at all — which is the honest summary of the literature too: "before"
# is the paper's choice and saves a bias, "after" normalizes exactly what the next layer sees.
#
# ## Batch size: noisy statistics and the train/eval gap
#
# BN's statistics come from the minibatch, so a small batch gives noisy estimates of the mean and
# variance. The network trains on those noisy normalizations and is then evaluated with the smooth
# running averages: the two modes disagree.
#
# To train one network per batch size in a single compiled call, every step below draws 256
# examples for the gradient but normalizes them in groups of *B* ("ghost batches", Hoffer et al.
# 2017): the normalization sees exactly the statistics of a batch of *B*, while the gradient noise
# stays the same for every run, so the panel isolates what BN's statistics do. `train.sweep` vmaps
# the run over *B* = 2, 4, ..., 256.

# %%
SIZES_B = list(bn_demo.BATCH_SIZES)  # 2, 4, ..., 256
t0 = time.perf_counter()
sweep_run = bn_demo.batch_size_sweep(ds, SIZES_B, **bn_demo.SWEEP)  # 64-64-10, 20 epochs, lr 0.3
samples = bn_demo.batch_mean_samples(ds, sweep_run, SIZES_B)
print(f"8 training runs in one call: {time.perf_counter() - t0:.1f} s (including compilation)")
train_mode = bn_demo.epoch_train_mode_loss(sweep_run.history)[:, -1]
h = sweep_run.history
lines = [
    "| batch size | spread of batch means | train loss, train mode | train loss, eval mode | test acc (eval) |",
    "|---|---|---|---|---|",
]
for k, b in enumerate(SIZES_B):
    lines.append(
        f"| {b} | {samples['batch_means'][k].std():.3f} | {train_mode[k]:.3f} | {h['train_loss'][k, -1]:.3f} | {h['test_acc'][k, -1]:.3f} |"
    )
display(Markdown("\n".join(lines)))
sd = np.array([m.std() for m in samples["batch_means"]])
print("spread of the batch mean, measured:", np.round(sd, 3))
print("sd(h) * sqrt((N-B)/((N-1)B)):      ", np.round(samples["theory"], 3))
print(f"spread at B=2 / spread at B=256: {sd[0] / sd[-1]:.1f}")
assert np.allclose(sd, samples["theory"], rtol=0.15)  # 400 batches: ~4% sampling error

# %% [markdown]
# The spread of a batch mean follows $\sigma/\sqrt{B}$ (times $\sqrt{(N-B)/(N-1)}$ because a batch
# draws without replacement from the $N$ training examples), checked above.
#
# **The paper's correction for the variance.** A batch of $m$ examples has a *biased* variance
# $\sigma_B^2$ whose expectation is $\frac{m-1}{m}\operatorname{Var}[x]$, so averaging the batch
# variances underestimates the variance — by half for $m = 2$. Ioffe & Szegedy's Algorithm 2 uses
# the unbiased estimate $\operatorname{Var}[x] = \frac{m}{m-1}E_B[\sigma_B^2]$ at inference
# (PyTorch stores the unbiased variance in its running buffer for the same reason; Keras, Flax and
# lessonlib store the biased one). How much of the batch-size-2 gap between the train-mode and the
# eval-mode loss does that factor explain? Rescale each network's running variance by $m/(m-1)$
# and evaluate again:

# %%
ghost_net = bn_demo.ghost_bn_mlp((64, *bn_demo.SWEEP["hidden"], 10))


def eval_train_loss(params, state, var_scale):
    """Eval-mode training loss with the running variances multiplied by var_scale."""
    scaled = {"bn": [{"mean": s["mean"], "var": s["var"] * var_scale} for s in state["bn"]]}
    logits, _ = ghost_net.apply(params, scaled, ds.x_train, train=False)
    return train.cross_entropy(logits, ds.y_train)


unbiased = jnp.asarray([b / (b - 1) for b in SIZES_B], jnp.float32)
eval_unbiased = np.asarray(
    jax.jit(jax.vmap(eval_train_loss))(sweep_run.params, sweep_run.state, unbiased)
)
eval_biased = h["train_loss"][:, -1]
explained = (eval_unbiased - eval_biased) / (train_mode - eval_biased)
for k in (0, 1, 2):
    print(
        f"B = {SIZES_B[k]}: train mode {train_mode[k]:.3f}, eval mode {eval_biased[k]:.3f}, "
        f"eval with the m/(m-1) variance {eval_unbiased[k]:.3f}: "
        f"{100 * explained[k]:.0f}% of the gap explained"
    )
assert 0 < explained[0] < 0.25

# %% [markdown]
# What to notice: the correction moves the eval-mode loss towards the train-mode loss, but it
# explains only a small part of the gap (the percentages above, under a quarter at $B = 2$). Most of
# the gap is the noise itself: with two examples every normalized value is almost exactly $\pm 1$, so
# training saw a heavily distorted signal that evaluation, with smooth running statistics, no
# longer shows. A missing $m/(m-1)$ is a real bias, not the main cost of tiny batches.
#
# Move the slider. Left: where the batch mean of one hidden unit (before BN) lands over 400 random
# batches of size *B*. The running average that evaluation uses estimates the mean over all data
# (black line); a batch of 2 or 4 scatters far around it, and training normalizes with exactly
# those scattered values. Right: the training loss measured the way training sees it (train mode,
# batch statistics, dashed) against the same loss in eval mode (running statistics). With tiny
# batches the two disagree, and the test curve follows eval mode.

# %%
panel_batch_size = bn_demo.batch_size_panel(ds, sweep_run, SIZES_B, samples)
panel_batch_size

# %% [markdown]
# ## BN tolerates larger learning rates
#
# Normalization keeps each layer's inputs at unit scale whatever the weights do, so a step that
# would blow up an unnormalized network is absorbed (Santurkar et al. 2018 show BN makes the loss
# surface smoother). First a coarse grid — the learning rate is a traced argument of `train.fit`, so
# these runs reuse one compiled program per network:

# %%
grid = [0.1, 0.3, 1.0, 3.0, 10.0]
compiles = train.compile_count()
acc = {name: [] for name in lr_nets}
for lr in grid:
    for name, run in bn_demo.lr_runs(ds, lr_nets, lr, epochs=EPOCHS, batch_size=BATCH).items():
        acc[name].append(float(run.history["test_acc"][-1]))
lines = [
    "| network | " + " | ".join(f"lr {lr:g}" for lr in grid) + " |",
    "|---|" + "---|" * len(grid),
]
lines += [f"| {n} | " + " | ".join(f"{a:.3f}" for a in accs) + " |" for n, accs in acc.items()]
display(Markdown("\n".join(lines)))
for name, accs in acc.items():
    ok = [lr for lr, a in zip(grid, accs, strict=True) if a >= 0.9]
    print(f"{name}: largest lr in the grid with test acc >= 0.9: {max(ok) if ok else None}")
print("new compilations for the whole grid:", train.compile_count() - compiles)

# %% [markdown]
# The panel retrains both networks live at the slider's learning rate (no recompilation: `lr` is
# traced). Push it past the point where the network without BN stops learning.

# %%
panel_lr = bn_demo.lr_panel(ds, lr_nets, epochs=EPOCHS, batch_size=BATCH, lr=1.0)
panel_lr

# %% [markdown]
# ## Costs and limits
#
# The 2024 study notes list BN's costs; here they are measured on this network (XLA's cost analysis of one
# training step, which counts operations instead of timing a shared CPU).
#
# - **Extra compute**: every BN layer adds a reduction over the batch and an elementwise
#   normalization in the forward and the backward pass: few extra FLOPs but extra passes over the
#   activations, which is what costs time on real hardware.
# - **Extra memory**: mainly the activations the backward pass needs. Every BN layer keeps its
#   normalized output (and its input statistics) for the gradient, one more number per example and
#   feature, for every training step; the running mean and variance add only two numbers per
#   feature, once. Both are counted below: the residuals JAX keeps between the forward and the
#   backward pass (`jax.vjp`), with and without BN.
# - **Small-batch trouble**: the table above (batch size 2) shows the train/eval gap.


# %%
def step_cost(name):
    """XLA's own count of the floating-point operations and bytes moved by one gradient step."""
    model, p, st = lr_nets[name]
    xb, yb = ds.x_train[:BATCH], ds.y_train[:BATCH]

    def loss(p):
        return train.cross_entropy(model.apply(p, st, xb, train=True)[0], yb)

    return jax.jit(jax.grad(loss)).lower(p).cost_analysis()


cost = {name: step_cost(name) for name in lr_nets}
for name, c in cost.items():
    print(
        f"{name}: {c['flops'] / 1e6:.2f} MFLOP and {c['bytes accessed'] / 1e6:.2f} MB moved per step (batch {BATCH})"
    )
flop_ratio = cost["BN"]["flops"] / cost["no BN"]["flops"]
byte_ratio = cost["BN"]["bytes accessed"] / cost["no BN"]["bytes accessed"]
print(f"BN / no BN: {flop_ratio:.2f}x the arithmetic, {byte_ratio:.2f}x the memory traffic")
count = {name: sum(v.size for v in jax.tree.leaves(lr_nets[name][1])) for name in lr_nets}
buffers = sum(v.size for v in jax.tree.leaves(lr_nets["BN"][2]))
print(
    f"trained numbers, no BN: {count['no BN']}, with BN: {count['BN']} (gamma, beta replace the hidden bias)"
)
print(f"buffers (running mean and var) with BN: {buffers}")


def saved_for_backward(name):
    """Numbers JAX keeps from the forward pass for the backward pass of one training step."""
    model, p, st = lr_nets[name]
    xb, yb = ds.x_train[:BATCH], ds.y_train[:BATCH]
    _, backward = jax.vjp(
        lambda p: train.cross_entropy(model.apply(p, st, xb, train=True)[0], yb), p
    )
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(backward))


saved = {name: saved_for_backward(name) for name in lr_nets}
print(
    f"saved for the backward pass (batch {BATCH}): no BN {saved['no BN']}, with BN {saved['BN']} "
    f"numbers: BN adds {saved['BN'] - saved['no BN']}, vs {buffers} in its running buffers"
)
assert saved["BN"] - saved["no BN"] > 10 * buffers
print(
    f"batch size 2: train-mode loss {train_mode[0]:.3f} vs eval-mode loss {h['train_loss'][0, -1]:.3f}"
)

# %% [markdown]
# ### Why layer normalization exists
#
# BN needs a batch: its output for one example depends on the others, it fails for a batch of one in
# training, it needs running averages for inference, and it is awkward for recurrent networks (the
# Géron notes mention this). **Layer normalization** (Ba et al. 2016) normalizes each example over its own
# *features* instead: $y = \gamma\,(x - \mu_x)/\sqrt{\sigma_x^2 + \epsilon} + \beta$ with $\mu_x,
# \sigma_x^2$ the mean and variance of that example's features. Same computation in training and
# inference, no running statistics, any batch size — which is why transformers use it.


# %%
def layer_norm(x, eps=1e-5):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps)


alone, in_batch = layer_norm(x[:1]), layer_norm(x)[:1]
print("layer norm of example 0 alone == inside the batch:", bool(jnp.allclose(alone, in_batch)))
print(
    "per-example mean and var after layer norm:",
    np.round(float(alone.mean()), 6),
    np.round(float(alone.var()), 4),
)
try:
    layers.batch_norm(*layers.batch_norm_init(4), x[:1], train=True)
except ValueError as e:
    print("batch norm on one example in train mode:", e)

# %% [markdown]
# ## Sharp bits
#
# - **Train vs eval mode.** Forgetting `train=False` at inference makes predictions depend on the
#   batch (and a batch of one returns beta); forgetting to *carry* the returned state means the
#   running averages never move and evaluation uses mean 0, variance 1.
# - **Momentum means opposite things.** PyTorch's `momentum=0.1` is Keras/Flax/lessonlib's 0.9.
#   With 0.99 the running averages need about `steps_to_90` steps to catch up: evaluate a freshly
#   started network in eval mode and it looks far worse than in train mode.
# - **Biased vs unbiased variance.** Normalization uses the biased batch variance everywhere;
#   PyTorch's running variance stores the unbiased one.
# - **No bias before BN.** Linear → BN makes the linear layer's bias redundant (BN subtracts the
#   mean); keep beta instead.
# - **Small batches** give noisy statistics and a train/eval gap; for them prefer layer or group
#   normalization, or ghost/accumulated statistics.
# - **Batch statistics leak between examples** in training: shuffling matters, and a batch of only
#   one class normalizes differently from a mixed one.
# - **The JAX book chapter**: `jax.nn.batch_norm` does not exist; its function never uses the
#   running statistics and reads undefined globals.
#
# ## References
#
# - S. Ioffe, C. Szegedy. *Batch Normalization: Accelerating Deep Network Training by Reducing
#   Internal Covariate Shift.* ICML 2015.
# - S. Santurkar, D. Tsipras, A. Ilyas, A. Madry. *How Does Batch Normalization Help Optimization?*
#   NeurIPS 2018.
# - E. Hoffer, I. Hubara, D. Soudry. *Train longer, generalize better: closing the generalization gap
#   in large batch training of neural networks* (ghost batch normalization). NeurIPS 2017.
# - J. L. Ba, J. R. Kiros, G. E. Hinton. *Layer Normalization.* 2016.
# - A. Géron. *Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow*, ch. 11 (followed by the Géron notes).
# - The course's sources (the JAX book chapter, the 2024 study notes, the Géron notes) and their
#   mistakes: [sources.md](../sources.md).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | batch normalization | 批量归一化 | standardize each feature with batch statistics, then scale and shift |
# | minibatch | 小批量 | the examples of one training step |
# | batch statistics | 批统计量 | mean and variance of the current minibatch |
# | running mean / variance | 滑动均值 / 方差 | exponential moving averages used at inference (buffers, not trained) |
# | scale (gamma) / shift (beta) | 缩放 / 平移参数 | trained per-feature parameters applied after normalizing |
# | momentum (keep rate) | 动量（保留率） | weight of the old running average in the update |
# | update rate | 更新率 | PyTorch's momentum: weight of the new batch statistic |
# | train mode / eval mode | 训练模式 / 评估模式 | batch statistics vs running statistics |
# | biased variance | 有偏方差 | divide by B rather than B − 1 |
# | ghost batch | 幽灵批 | a group of examples inside a batch normalized on its own |
# | layer normalization | 层归一化 | normalize each example over its features |
# | gradient check | 梯度检验 | comparing a computed gradient with finite differences |
# | unbiased variance | 无偏方差 | divide by B − 1; Algorithm 2's inference variance is m/(m−1)·E[σ²_B] |
# | internal covariate shift | 内部协变量偏移 | the paper's motivation: layer inputs drift during training |
