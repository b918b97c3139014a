# %% [markdown]
# # 06 · Optimizers
#
# Gradient descent takes the step $\theta \leftarrow \theta - \eta\nabla J(\theta)$ and forgets it
# (the notes on Géron's chapter 11: "它不关心之前的梯度值" — it does not care about earlier gradients). Every optimizer in
# this chapter remembers something: a velocity (momentum, Nesterov), a per-coordinate sum or
# average of squared gradients (AdaGrad, RMSProp), or both, bias-corrected (Adam, AdaMax, Nadam),
# plus a decay of the weights that is kept out of that memory (AdamW).
#
# **You will:** watch gradient descent zig-zag on an ill-conditioned bowl and compute why; derive
# momentum, Nesterov's look-ahead, AdaGrad, RMSProp and Adam's bias correction, each followed by a
# numeric check against `lessonlib.optim`; drag sliders that re-run eight optimizers on two
# surfaces without recompiling; train a network with all nine optimizers in *one* compiled call;
# and implement momentum, Adam and AdamW steps yourself (three graded exercises).
#
# Every optimizer in `lessonlib.optim` is an optax-compatible *gradient transformation* — a pair
# `init(params) -> state`, `update(grads, state, params) -> (updates, state)` — built by chaining
# small transforms; its tests compare it with optax step by step.
#
# **Sources.** The chapter follows the optimizer section of the notes on Géron's chapter 11 ("the
# Géron notes": notes in Chinese on A. Géron's *Hands-On Machine Learning*, ch. 11) and corrects
# its claim about Adam and L2. [The course's sources](../sources.md) says what each of the course's
# documents is and where each of its mistakes is corrected.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import data, models, optim, train, viz
from lessonlib.demos import ch06_optimizers as surfaces
from lessonlib.exercises import check

notebook_start = time.perf_counter()
print("JAX", jax.__version__, "running on", jax.devices())

# %% [markdown]
# ## 1 · Gradient descent zig-zags
#
# Our first surface is the ill-conditioned quadratic
# $f(x, y) = \tfrac12(\lambda_1 x^2 + \lambda_2 y^2)$ with curvatures $\lambda_1 = 4$ (a long,
# flat valley) and $\lambda_2 = 400$ (steep walls): condition number
# $\kappa = \lambda_2/\lambda_1 = 100$. Its gradient is $(\lambda_1 x, \lambda_2 y)$, so gradient
# descent acts on each coordinate separately:
#
# $$x_{k+1} = (1 - \eta\lambda_1)\,x_k, \qquad y_{k+1} = (1 - \eta\lambda_2)\,y_k
# \quad\Longrightarrow\quad x_k = (1-\eta\lambda_1)^k x_0,\; y_k = (1-\eta\lambda_2)^k y_0 .$$
#
# When $\eta\lambda_2 > 1$ the factor $1 - \eta\lambda_2$ is negative: $y$ changes sign every
# step (the zig-zag), and when $\eta\lambda_2 > 2$ it grows (divergence). Meanwhile $x$ shrinks by
# only $1 - \eta\lambda_1$ per step. One learning rate must serve both directions.
#
# `surfaces.trajectories` runs eight optimizers on a surface in one jitted `lax.scan`; the
# hyperparameters are traced values, so the calls below with different learning rates reuse one
# compilation.

# %%
lam1, lam2 = surfaces.QUAD_CURVATURES
QUAD = surfaces.SURFACES["quadratic"]
ROSEN = surfaces.SURFACES["rosenbrock"]
STEPS = 400
HP = {"lr": 0.003, "beta": 0.9, "lr_adaptive": 0.05, "b1": 0.9}  # the panels' starting values
ETA_ZIGZAG = 0.0045  # a step size where plain GD visibly zig-zags


def paths(surface, **changes):
    """All eight optimizers on one surface: {name: (path (STEPS+1, 2), losses (STEPS+1,))}."""
    out = surfaces.trajectories(surface, {**HP, **changes}, steps=STEPS)
    return jax.device_get(out)


zigzag = paths("quadratic", lr=ETA_ZIGZAG)
gd_path = zigzag["GD"][0]
k = np.arange(40)
closed_form = np.stack(
    [(1 - ETA_ZIGZAG * lam1) ** k * QUAD.start[0], (1 - ETA_ZIGZAG * lam2) ** k * QUAD.start[1]],
    axis=1,
)
print(
    f"eta = {ETA_ZIGZAG}: x is multiplied by {1 - ETA_ZIGZAG * lam1:.3f} per step, "
    f"y by {1 - ETA_ZIGZAG * lam2:.3f}"
)
print("first GD points     :", np.round(gd_path[:4], 5).tolist())
print("closed form (above) :", np.round(closed_form[:4], 5).tolist())
assert np.allclose(gd_path[:40], closed_form, rtol=1e-4, atol=1e-7)


# %%
fig, (ax_p, ax_l) = viz.figure(2)
surfaces.contour(ax_p, QUAD)  # level sets and the minimum
ax_p.plot(gd_path[:, 0], gd_path[:, 1], "-o", ms=2, lw=0.8, color="k", label="GD")
ax_p.set_title(f"gradient descent, eta = {ETA_ZIGZAG}")
ax_l.semilogy(zigzag["GD"][1], color="k")
ax_l.set(xlabel="step", ylabel="f(x, y)", title="loss")
viz.show(fig)

# %% [markdown]
# **What to notice.** The path bounces between the steep walls while creeping along the valley
# floor; the loss first drops fast (the $y$ part dies) and then decays slowly (the $x$ part).
#
# How large may $\eta$ be? Stability needs $|1 - \eta\lambda_i| < 1$ for both curvatures, i.e.
# $\eta < 2/\lambda_{\max}$. The best constant rate is reached at $\eta^\star = 2/(\lambda_1 +
# \lambda_2)$, where the slowest coordinate shrinks by $(\kappa-1)/(\kappa+1)$ per step. Check the
# edge of stability on both sides, and the rate:

# %%
edge = 2 / lam2
for eta in (0.98 * edge, 1.02 * edge):
    loss_end = paths("quadratic", lr=eta)["GD"][1][-1]
    print(f"eta = {eta:.5f} ({eta / edge:.2f} x 2/lambda_2): final loss {loss_end:.3g}")
assert np.isfinite(paths("quadratic", lr=0.98 * edge)["GD"][1][-1])
assert np.isinf(paths("quadratic", lr=1.02 * edge)["GD"][1][-1])

kappa = lam2 / lam1
eta_star = 2 / (lam1 + lam2)
rate_theory = (kappa - 1) / (kappa + 1)
loss_star = paths("quadratic", lr=eta_star)["GD"][1]
rate_measured = (loss_star[300] / loss_star[100]) ** (1 / (2 * 200))  # loss ~ rate^(2k)
print(
    f"eta* = {eta_star:.5f}: rate (kappa-1)/(kappa+1) = {rate_theory:.4f}, measured {rate_measured:.4f}"
)
assert abs(rate_measured - rate_theory) < 1e-3
print("compilations of the trajectory function so far:", surfaces.compile_count())

# %% [markdown]
# ## 2 · Momentum: a heavy ball
#
# Polyak's heavy ball (1964) keeps a velocity, an accumulated sum of past gradients. In optax's
# (and PyTorch's, and `lessonlib.optim`'s) form, with momentum $\mu \in [0, 1)$:
#
# $$m_t = \mu\, m_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta\, m_t .$$
#
# The Géron notes (like Géron's book and Keras) write the same method with the learning rate inside the velocity:
# $v_t = \mu v_{t-1} - \eta g_t$, $\theta_t = \theta_{t-1} + v_t$. With a constant $\eta$ the two
# are identical ($v_t = -\eta m_t$). Where gradients keep pointing the same way, the velocity
# grows to $g/(1-\mu)$: with $\mu = 0.9$ the ball moves up to ten times as far per step as plain
# GD; where they alternate (the steep walls), they cancel.
#
# Numeric check: the Keras form written out in NumPy against `optim.sgd(lr, momentum=beta)`:


# %%
def grad_quad(p):
    return np.array([lam1 * p[0], lam2 * p[1]])


quad = paths("quadratic")  # the default settings HP: eta = 0.003, mu = 0.9
theta, v = np.array(QUAD.start, np.float64), np.zeros(2)
keras_path = [theta]
for _ in range(50):
    v = HP["beta"] * v - HP["lr"] * grad_quad(theta)
    theta = theta + v
    keras_path.append(theta)
mom_path = quad["momentum"][0]
print("Keras form, step 50  :", np.round(keras_path[-1], 6))
print("optim.sgd, step 50   :", np.round(mom_path[50], 6))
assert np.allclose(np.array(keras_path), mom_path[:51], rtol=1e-3, atol=1e-5)

# %% [markdown]
# Why it helps on the quadratic: per coordinate, $(\theta_{t+1}, \theta_t)$ is multiplied by the
# matrix $\begin{pmatrix} 1 + \mu - \eta\lambda & -\mu \\ 1 & 0 \end{pmatrix}$, whose largest
# eigenvalue modulus is the convergence rate. With $\eta^\star = \big(2/(\sqrt{\lambda_1} +
# \sqrt{\lambda_2})\big)^2$ and $\mu^\star = \big((\sqrt\kappa - 1)/(\sqrt\kappa + 1)\big)^2$ both
# curvatures converge at rate $(\sqrt\kappa - 1)/(\sqrt\kappa + 1)$ — the square root of the
# condition number replaces the condition number (Goh 2017). Numeric check with the eigenvalues:

# %%
sqk = np.sqrt(kappa)
eta_m = (2 / (np.sqrt(lam1) + np.sqrt(lam2))) ** 2
mu_m = ((sqk - 1) / (sqk + 1)) ** 2
print(f"optimal momentum settings: eta* = {eta_m:.5f}, mu* = {mu_m:.3f}")
for lam in (lam1, lam2):
    M = np.array([[1 + mu_m - eta_m * lam, -mu_m], [1.0, 0.0]])
    print(f"lambda = {lam:5g}: spectral radius {max(abs(np.linalg.eigvals(M))):.4f}")
    assert np.isclose(max(abs(np.linalg.eigvals(M))), (sqk - 1) / (sqk + 1), atol=1e-4)
print(
    f"momentum rate (sqrt(kappa)-1)/(sqrt(kappa)+1) = {(sqk - 1) / (sqk + 1):.4f}  vs  GD {rate_theory:.4f}"
)
print(
    f"steps to shrink the error 1000x: momentum {np.log(1e-3) / np.log((sqk - 1) / (sqk + 1)):.0f}, "
    f"GD {np.log(1e-3) / np.log(rate_theory):.0f}"
)

# %% [markdown]
# ## 3 · Nesterov's look-ahead
#
# Nesterov (1983), as Sutskever et al. (2013) wrote it for deep learning, evaluates the gradient
# where the velocity is about to carry us:
#
# $$v_t = \mu v_{t-1} - \eta\nabla f(\theta_{t-1} + \mu v_{t-1}), \qquad \theta_t = \theta_{t-1} + v_t .$$
#
# Frameworks store $\phi_t = \theta_t + \mu v_t$ instead (the look-ahead point), so that the
# gradient is taken at the stored parameters. Substituting gives optax's (and PyTorch's) rule
#
# $$m_t = \mu m_{t-1} + g_t, \qquad \phi_t = \phi_{t-1} - \eta\,(g_t + \mu m_t), \qquad g_t = \nabla f(\phi_{t-1}) .$$
#
# Numeric check: Sutskever's form in NumPy, mapped to $\phi = \theta + \mu v$, against
# `optim.sgd(lr, momentum=beta, nesterov=True)`:

# %%
theta, v = np.array(QUAD.start, np.float64), np.zeros(2)
phi = [theta.copy()]
for _ in range(50):
    v = HP["beta"] * v - HP["lr"] * grad_quad(theta + HP["beta"] * v)
    theta = theta + v
    phi.append(theta + HP["beta"] * v)
print("Sutskever form, theta + mu*v at step 50:", np.round(phi[-1], 6))
print("optim.sgd(nesterov=True),     step 50:", np.round(quad["Nesterov"][0][50], 6))
assert np.allclose(np.array(phi), quad["Nesterov"][0][:51], rtol=1e-3, atol=1e-5)

# %% [markdown]
# The look-ahead changes stability. On one curvature $\lambda$, with $a = \eta\lambda$, the state
# $(\phi, m)$ is multiplied by $\begin{pmatrix} 1 - a(1+\mu) & -\eta\mu^2 \\ \lambda & \mu
# \end{pmatrix}$, with characteristic polynomial $r^2 - (1+\mu)(1-a)\,r + \mu(1-a)$. A root
# crosses $-1$ at $a = 2(1+\mu)/(1+2\mu)$ — for heavy-ball momentum the same happens at
# $a = 2(1+\mu)$. So Nesterov damps the steep direction better but tolerates a *smaller* step
# size. Check both edges with the matrices:


# %%
def spectral_radius(M):
    return max(abs(np.linalg.eigvals(M)))


def heavy_ball_matrix(a, mu):
    return np.array([[1 + mu - a, -mu], [1.0, 0.0]])  # on (theta_t, theta_{t-1}), lambda = 1


def nesterov_matrix(a, mu):
    return np.array([[1 - a * (1 + mu), -a * mu**2], [1.0, mu]])  # on (phi, m), lambda = 1


mu = HP["beta"]
for name, matrix, edge_a in [
    ("heavy ball", heavy_ball_matrix, 2 * (1 + mu)),
    ("Nesterov", nesterov_matrix, 2 * (1 + mu) / (1 + 2 * mu)),
]:
    below, above = (
        spectral_radius(matrix(0.99 * edge_a, mu)),
        spectral_radius(matrix(1.01 * edge_a, mu)),
    )
    print(
        f"{name:>10}, mu = {mu}: edge eta*lambda = {edge_a:.3f} -> on lambda_2 eta < {edge_a / lam2:.5f}; "
        f"radius just below {below:.4f}, just above {above:.4f}"
    )
    assert below < 1 < above

# %% [markdown]
# ## 4 · Slider panel: gradient descent vs momentum
#
# In the spirit of Distill's *Why Momentum Really Works*: step size $\eta \in [0, 0.006]$ and
# momentum $\mu \in [0, 0.99]$ on the quadratic. Black: plain GD (it ignores $\mu$); blue:
# momentum; cyan: Nesterov. Right: the loss of each, log scale. Release a handle to re-run; each
# move re-runs the compiled trajectories (no new compilation) and redraws only the lines.
#
# Try: $\mu = 0$ (momentum and Nesterov *are* GD); $\eta$ just above $2/\lambda_2$ (GD diverges,
# momentum does not); the Nesterov edge printed in section 3; $\mu = 0.99$ (slow, ringing
# spirals: too little friction); and the optimal $\mu^\star$ printed in section 2 with the
# largest step size (the optimal $\eta^\star$ printed there lies just beyond the slider's range).

# %%
panel_momentum = surfaces.momentum_panel(HP, steps=STEPS)  # re-runs surfaces.trajectories per move
panel_momentum

# %% [markdown]
# **What to notice.** At the starting values ($\eta = 0.003$, $\mu = 0.9$) momentum spirals in
# along the steep $y$ and reaches the minimum in a fraction of GD's steps; at $\mu = 0$ the three
# lines coincide; past $2/\lambda_2 = 0.005$ GD's loss curve stops (diverged, named in the title)
# while momentum still converges; at $\mu = 0.99$ the loss curve decays slowly with ripples — the
# rate $\sqrt\mu$ of the map below.
#
# ### The map of momentum's rate
#
# Section 2's matrix gives the rate for *every* setting. On one curvature, with $a = \eta\lambda$,
# the eigenvalues solve $r^2 - (1+\mu-a)\,r + \mu = 0$ (`surfaces.momentum_rate`):
#
# - discriminant $(1+\mu-a)^2 - 4\mu < 0$: complex roots of modulus $\sqrt\mu$ — the iterate
#   **rings** (spirals in), at a rate set by $\mu$ alone;
# - on the curves $a = (1 \pm \sqrt\mu)^2$ the roots coincide: **critical damping**; left of the
#   lower curve the roots are real and positive (over-damped, slow creep);
# - for $a > 2(1+\mu)$ a root is below $-1$: **divergence**.
#
# Left: the regions and the rate over $(a, \mu)$, with the two curves and the divergence edge.
# Right: the quadratic's rate — the worse of its two curvatures — over the panel's $(\eta, \mu)$,
# with the optimum of section 2. First, the closed form against the library's iterates:

# %%
for lr, mu_ in [(0.003, 0.9), (0.001, 0.5), (0.005, 0.3), (0.006, 0.8)]:
    loss_m = paths("quadratic", lr=lr, beta=mu_)["momentum"][1]
    measured = (loss_m[250] / loss_m[50]) ** (1 / 400)  # loss ~ rate^(2k)
    closed = max(surfaces.momentum_rate(lr * lam1, mu_), surfaces.momentum_rate(lr * lam2, mu_))
    print(
        f"eta = {lr}, mu = {mu_}: closed-form rate {closed:.4f}, measured on the iterates {measured:.4f}"
    )
    assert np.isclose(measured, closed, rtol=5e-3)

# %%
a_grid, mu_grid = np.meshgrid(np.linspace(0, 4.2, 300), np.linspace(0, 0.99, 200))
eta_grid, mu_grid2 = np.meshgrid(np.linspace(1e-5, 0.012, 300), np.linspace(0, 0.99, 200))
quad_rate = np.maximum(
    surfaces.momentum_rate(eta_grid * lam1, mu_grid2),
    surfaces.momentum_rate(eta_grid * lam2, mu_grid2),
)
fig, (ax_a, ax_q) = viz.figure(2)
ax_a.contourf(
    a_grid,
    mu_grid,
    surfaces.momentum_regions(a_grid, mu_grid),
    levels=[-0.5, 0.5, 1.5, 2.5, 3.5],
    colors=["#c6dbef", "#fdd0a2", "#c7e9c0", "0.6"],
)
ax_a.contour(
    a_grid,
    mu_grid,
    np.minimum(surfaces.momentum_rate(a_grid, mu_grid), 1),
    levels=[0.5, 0.8, 0.9, 0.95],
    colors="k",
    linewidths=0.5,
)
mus = np.linspace(0, 0.99, 200)
ax_a.plot((1 - np.sqrt(mus)) ** 2, mus, "b", lw=1.2, label="critical damping $(1-\\sqrt{\\mu})^2$")
ax_a.plot(
    (1 + np.sqrt(mus)) ** 2, mus, "b--", lw=1.2, label="critical damping $(1+\\sqrt{\\mu})^2$"
)
ax_a.plot(2 * (1 + mus), mus, "r", lw=1.2, label="divergence $2(1+\\mu)$")
ax_a.set(
    xlim=(0, 4.2),
    xlabel="$a = \\eta\\lambda$",
    ylabel="momentum $\\mu$",
    title="blue: over-damped, orange: ringing, green: real < 0, grey: diverges",
)
ax_a.title.set_fontsize(7)
ax_a.legend(fontsize=6, loc="lower right")
im = ax_q.imshow(
    np.minimum(quad_rate, 1),
    origin="lower",
    aspect="auto",
    cmap="viridis_r",
    extent=(eta_grid.min(), eta_grid.max(), 0, 0.99),
    vmin=0.8,
    vmax=1,
)
fig.colorbar(im, ax=ax_q, label="rate (1 = no progress or divergence)")
ax_q.plot(eta_m, mu_m, "r*", ms=10, label="optimum of section 2")
ax_q.axvline(0.006, color="w", ls=":", lw=1, label="the slider's end")
ax_q.set(
    xlabel="step size $\\eta$",
    ylabel="momentum $\\mu$",
    title="quadratic: worse of the two curvatures",
)
ax_q.legend(fontsize=6, loc="lower right")
viz.show(fig)
i_best = np.unravel_index(np.argmin(quad_rate), quad_rate.shape)
print(
    f"best rate on the grid {quad_rate[i_best]:.4f} at eta = {eta_grid[i_best]:.5f}, mu = {mu_grid2[i_best]:.3f}; "
    f"section 2: {(sqk - 1) / (sqk + 1):.4f} at eta* = {eta_m:.5f}, mu* = {mu_m:.3f}"
)
assert abs(quad_rate[i_best] - (sqk - 1) / (sqk + 1)) < 0.01
assert abs(eta_grid[i_best] - eta_m) < 0.0005 and abs(mu_grid2[i_best] - mu_m) < 0.03

# %% [markdown]
# **What to notice.** Left: for $\mu > 0$ the ringing region (orange) is a wide band between the
# two critical-damping curves, and its rate $\sqrt\mu$ does not depend on $a$ — inside it, a
# larger step buys nothing; the fastest rate for a given $\mu$ sits on the lower curve. The
# divergence edge $2(1+\mu)$ moves right as $\mu$ grows: momentum tolerates larger steps than GD
# ($a < 2$). Right: the quadratic needs *both* curvatures inside the converging region; the best
# rate on the grid is section 2's optimum (asserted), just beyond the slider's end at
# $\eta = 0.006$.

# %% [markdown]
# ## 5 · AdaGrad: a step size per coordinate, which only shrinks
#
# Duchi, Hazan & Singer (2011) divide each coordinate's gradient by the root of the sum of all its
# squared gradients so far:
#
# $$G_t = G_{t-1} + g_t^2, \qquad \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{G_t + \epsilon}}$$
#
# (elementwise; optax, Keras and `lessonlib` start from $G_0 = 0.1$, PyTorch from $0$). Steep
# coordinates get small steps, flat ones large steps — the "adaptive learning rate" of the Géron notes,
# which points the update more directly at the minimum. One step, checked by hand:

# %%
g1 = jnp.array([0.1, 10.0])
ada = optim.adagrad(0.5)
u1, _ = ada.update(g1, ada.init(jnp.zeros(2)))
by_hand = -0.5 * np.asarray(g1) / np.sqrt(0.1 + np.asarray(g1) ** 2 + 1e-7)
print("optim.adagrad:", np.asarray(u1), " by hand:", by_hand)
assert np.allclose(u1, by_hand, rtol=1e-6)

# %% [markdown]
# Gradients 100x apart give steps of similar size. But $G_t$ never shrinks: with a constant
# gradient $c$, $G_t \approx t c^2$ and the step is $\approx \eta/\sqrt t$, so after $T$ steps
# AdaGrad has travelled only about $\eta \sum_{t \le T} t^{-1/2} \approx 2\eta\sqrt T$ — it
# "stops early" (the Géron notes: 过早停止). RMSProp (next section) forgets old gradients and keeps moving
# at about $\eta$ per step. Check on the plane $f(x, y) = x + y$ (gradient 1 everywhere):

# %%
T, eta_c = 1000, 0.1


def plane(p):
    return p[0] + p[1]


dist = {}
for name, opt in [("AdaGrad", optim.adagrad(eta_c)), ("RMSProp", optim.rmsprop(eta_c))]:
    path, _ = surfaces.trajectory(opt, plane, jnp.zeros(2), T)
    dist[name] = -float(path[-1, 0])
adagrad_sum = eta_c * sum(1 / np.sqrt(0.1 + t + 1e-7) for t in range(1, T + 1))
print(
    f"after {T} steps: AdaGrad moved {dist['AdaGrad']:.2f} (sum formula {adagrad_sum:.2f}, "
    f"2*eta*sqrt(T) = {2 * eta_c * np.sqrt(T):.2f}); RMSProp moved {dist['RMSProp']:.1f} (eta*T = {eta_c * T:g})"
)
assert np.isclose(dist["AdaGrad"], adagrad_sum, rtol=1e-3)
assert dist["RMSProp"] > 0.9 * eta_c * T

# %% [markdown]
# ## 6 · RMSProp: a leaky sum
#
# Hinton's RMSProp (Coursera lecture 6e, 2012) replaces the sum by an exponential moving average
# with decay $\rho$ (Keras `rho`, optax/`lessonlib` `decay`, PyTorch `alpha`):
#
# $$v_t = \rho\, v_{t-1} + (1 - \rho)\, g_t^2, \qquad \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{v_t + \epsilon}} .$$
#
# Old gradients fade with weight $\rho^k$, so the denominator tracks the *recent* gradient size.
# Numeric check over three steps (optax and Keras 3 put $\epsilon$ inside the root, PyTorch
# outside — section 13 shows when that matters):

# %%
rho, eta_r = 0.9, 0.01
gs = np.array([[1.0, -2.0], [0.5, 0.1], [-3.0, 1.0]], np.float32)
opt_r = optim.rmsprop(eta_r, decay=rho)
state_r, v_hand = opt_r.init(jnp.zeros(2)), np.zeros(2)
for g in gs:
    u_lib, state_r = opt_r.update(jnp.asarray(g), state_r)
    v_hand = rho * v_hand + (1 - rho) * g.astype(np.float64) ** 2
    u_hand = -eta_r * g / np.sqrt(v_hand + 1e-8)
    print("optim.rmsprop:", np.round(np.asarray(u_lib), 6), " by hand:", np.round(u_hand, 6))
    assert np.allclose(u_lib, u_hand, rtol=1e-5)

# %% [markdown]
# ## 7 · Adam: momentum + RMSProp, bias-corrected
#
# Adam (Kingma & Ba 2015, Algorithm 1) keeps both moving averages — the *first moment* (mean) and
# the uncentered *second moment* of the gradient, hence the name (adaptive moment estimation):
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2,$$
# $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
# \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} .$$
#
# **Why the correction.** Both averages start at $0$. Unrolling, $m_t = (1-\beta_1)\sum_{i=1}^t
# \beta_1^{t-i} g_i$; if the gradients have a constant mean $\mathbb E[g]$, then
# $\mathbb E[m_t] = (1-\beta_1)\sum_{i=1}^{t}\beta_1^{t-i}\,\mathbb E[g] = (1-\beta_1^t)\,\mathbb E[g]$
# (a geometric sum). Dividing by $1-\beta_1^t$ removes the bias towards zero; the same holds for
# $v_t$ with $\beta_2$. Check with a constant gradient, where the expectation is exact:

# %%
b1, b2, eta_a = 0.9, 0.999, 0.1
g_const = jnp.array([0.5, -2.0])
adam_scale = optim.scale_by_adam(b1, b2)
state_a = adam_scale.init(jnp.zeros(2))
for t in range(1, 6):
    _, state_a = adam_scale.update(g_const, state_a)
    assert np.allclose(state_a.mu, (1 - b1**t) * g_const, rtol=1e-5)
    assert np.allclose(state_a.nu, (1 - b2**t) * g_const**2, rtol=1e-4)
print(
    f"after t = 5 steps: m = {np.asarray(state_a.mu)} = (1 - b1^5) g with 1 - b1^5 = {1 - b1**5:.5f}"
)
print(
    f"                   v = {np.asarray(state_a.nu)} = (1 - b2^5) g^2 with 1 - b2^5 = {1 - b2**5:.5f}"
)

# %% [markdown]
# **At step 1** the correction is exact: $\hat m_1 = g_1$, $\hat v_1 = g_1^2$, so
# $\theta_1 = \theta_0 - \eta\, g_1/(|g_1| + \epsilon) \approx \theta_0 - \eta\,\mathrm{sign}(g_1)$:
# every coordinate moves by about $\eta$, whatever the size of its gradient. Without the
# correction the first step would be $\eta\,(1-\beta_1)/\sqrt{1-\beta_2}$ per coordinate —
# computed below — too large for the default $\beta$'s:

# %%
g_first = jnp.array([1e-3, 0.3, -50.0])
adam_opt = optim.adam(eta_a, b1, b2)
u_first, _ = adam_opt.update(g_first, adam_opt.init(jnp.zeros(3)))
print(
    "Adam's first update:",
    np.asarray(u_first),
    " -eta*sign(g):",
    -eta_a * np.sign(np.asarray(g_first)),
)
assert np.allclose(u_first, -eta_a * jnp.sign(g_first), rtol=1e-4)
m1, v1 = (1 - b1) * g_first, (1 - b2) * g_first**2
u_uncorrected = -eta_a * m1 / (jnp.sqrt(v1) + 1e-8)
print(
    "without bias correction:",
    np.asarray(u_uncorrected),
    f"-> {(1 - b1) / np.sqrt(1 - b2):.3f} times larger",
)
assert np.allclose(u_uncorrected / u_first, (1 - b1) / np.sqrt(1 - b2), rtol=1e-3)

# %% [markdown]
# > **Frameworks disagree on $\epsilon$.** optax, PyTorch and `lessonlib` follow Algorithm 1
# > ($\epsilon$ added to $\sqrt{\hat v_t}$). TensorFlow/Keras use the paper's "efficient" form
# > (just before its Section 2.1): $\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)$ and
# > $\theta_t = \theta_{t-1} - \eta_t m_t/(\sqrt{v_t} + \hat\epsilon)$, with default
# > $\hat\epsilon = 10^{-7}$. That $\hat\epsilon$ sits next to the *uncorrected* root, so it acts
# > like $\epsilon = \hat\epsilon/\sqrt{1-\beta_2^t}$ here — larger by the factor printed below
# > at step 1. Check:

# %%
eps_hat, t_k = 1e-7, 1
g_small = np.array([1e-6, 1e-3])
m_k, v_k = (1 - b1) * g_small, (1 - b2) * g_small**2
eta_t = eta_a * np.sqrt(1 - b2**t_k) / (1 - b1**t_k)
u_keras = -eta_t * m_k / (np.sqrt(v_k) + eps_hat)
keras_like = optim.adam(eta_a, b1, b2, eps=eps_hat / np.sqrt(1 - b2**t_k))
u_mapped, _ = keras_like.update(jnp.asarray(g_small, jnp.float32), keras_like.init(jnp.zeros(2)))
print(f"at t = 1 Keras' eps_hat acts like an eps {1 / np.sqrt(1 - b2):.1f} times larger")
print("Keras form:", u_keras, " lessonlib with eps = eps_hat/sqrt(1-b2^t):", np.asarray(u_mapped))
assert np.allclose(u_keras, u_mapped, rtol=1e-4)

# %% [markdown]
# ## 8 · AdaMax and Nadam
#
# **AdaMax** (Kingma & Ba 2015, Algorithm 2) replaces the $L^2$ average of past gradients by an
# $L^p$ one and lets $p \to \infty$: $\big((1-\beta_2^p)\sum_i \beta_2^{p(t-i)}|g_i|^p\big)^{1/p}
# \to \max_i \beta_2^{t-i}|g_i|$, which can be computed recursively as
# $u_t = \max(\beta_2 u_{t-1}, |g_t|)$ (optax and `lessonlib` add $\epsilon$ to $|g_t|$). The step is
# $\theta_t = \theta_{t-1} - \eta\,\hat m_t/u_t$; $u_t$ needs no bias correction. Numeric check of
# the limit, and of the recursion against the library:

# %%
rng = np.random.default_rng(0)
g_hist = rng.normal(size=20)
t_last = len(g_hist)
scaled = b2 ** (t_last - np.arange(1, t_last + 1)) * np.abs(g_hist)  # beta_2^(t-i) |g_i|
target = scaled.max()
for p in (2, 8, 32, 128, 512):
    # ((1 - b2^p) sum scaled^p)^(1/p), computed as target * (...)^(1/p) to avoid overflow
    lp = target * ((1 - b2**p) * np.sum((scaled / target) ** p)) ** (1 / p)
    print(f"p = {p:4d}: L^p average {lp:.5f}   (max_i beta_2^(t-i)|g_i| = {target:.5f})")
assert np.isclose(lp, target, rtol=1e-2)

amax = optim.scale_by_adamax(b1, b2, eps=1e-8)
state_m = amax.init(jnp.zeros(1))
for g in g_hist:
    _, state_m = amax.update(jnp.array([g], jnp.float32), state_m)
print("library u_t:", float(state_m.nu[0]))
assert np.isclose(float(state_m.nu[0]), target, rtol=1e-4)

# %% [markdown]
# **Nadam** (Dozat 2016) puts Nesterov's look-ahead into Adam: the first moment used in the step is
# $\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1)\,g_t/(1-\beta_1^t)$ — the momentum part
# looks one step ahead, the fresh gradient enters directly. At step 1 this is
# $\big(\beta_1(1-\beta_1)/(1-\beta_1^2) + 1\big)\,g_1$, so Nadam's first step is larger than
# Adam's by that factor (Keras and PyTorch additionally warm up $\beta_1$ with a schedule;
# optax and `lessonlib` do not):

# %%
nadam_opt = optim.nadam(eta_a, b1, b2)
u_nadam, _ = nadam_opt.update(g_first, nadam_opt.init(jnp.zeros(3)))
factor = b1 * (1 - b1) / (1 - b1**2) + 1
print(f"Nadam / Adam first step: {np.asarray(u_nadam / u_first)}, formula {factor:.5f}")
assert np.allclose(u_nadam / u_first, factor, rtol=1e-4)

# %% [markdown]
# ### The step each coordinate takes
#
# "A learning rate per coordinate" can be watched directly: the size of each step along $x$ (the
# flat direction, $\lambda_1 = 4$) and along $y$ (the steep one, $\lambda_2 = 400$), over the first
# 400 steps on the quadratic, for GD and the adaptive methods at the panel's starting values
# (GD: $\eta = 0.003$; adaptive: $\eta = 0.05$, $\beta_1 = 0.9$).

# %%
ADAPTIVE = ("AdaGrad", "RMSProp", "Adam")
step_sizes = {name: np.abs(np.diff(quad[name][0], axis=0)) for name in ("GD", *ADAPTIVE)}
fig, (ax_x, ax_y) = viz.figure(2)
for name, st in step_sizes.items():
    ax_x.semilogy(np.arange(1, STEPS + 1), st[:, 0], color=surfaces.COLORS[name], label=name)
    ax_y.semilogy(np.arange(1, STEPS + 1), st[:, 1], color=surfaces.COLORS[name], label=name)
ax_x.set(xlabel="step t", ylabel="$|x_t - x_{t-1}|$", title="flat direction x", ylim=(1e-6, 1))
ax_y.set(xlabel="step t", ylabel="$|y_t - y_{t-1}|$", title="steep direction y", ylim=(1e-12, 1))
ax_x.legend(fontsize=7)
viz.show(fig)
first = {name: st[0, 0] / st[0, 1] for name, st in step_sizes.items()}
print("first step, |dx| / |dy|:", {k: round(float(v), 3) for k, v in first.items()})
ada_x = step_sizes["AdaGrad"][:, 0]
print(
    f"AdaGrad's step along x: {ada_x[9]:.4f} at t = 10, {ada_x[99]:.4f} at t = 100 (ratio {ada_x[9] / ada_x[99]:.2f})"
)
assert (
    first["GD"] < 0.2
)  # GD: steps proportional to the gradient, lambda_1 x0 / (lambda_2 y0) = 0.15
assert all(0.5 < first[n] < 2 for n in ADAPTIVE)  # adaptive: about eta along both, a diagonal step
assert ada_x[9] / ada_x[99] > 2  # AdaGrad's steps keep shrinking

# %% [markdown]
# **What to notice.** GD's first step along the flat $x$ is about 0.15 times its step along $y$
# (the ratio of the gradients); every adaptive method starts with steps of about the same size
# along both (a diagonal move). AdaGrad's $x$-steps then keep shrinking (the ratio printed above:
# its accumulator only grows, by about $g^2$ per step, and $g$ shrinks too) while RMSProp and
# Adam keep taking steps of about $\eta$ along $x$ until they near the minimum, and along the steep
# $y$ their steps shrink as the oscillation dies out.

# %% [markdown]
# ### Rotate the bowl
#
# The quadratic's axes are the coordinate axes — the best case for a per-coordinate step size.
# Rotate the bowl by an angle $\varphi$ (start point rotated with it) and GD and momentum do not
# notice: their update $-\eta g$ rotates with the problem, so the loss curve is the same for every
# $\varphi$. The adaptive methods divide each *coordinate* by its own gradient history; after a
# rotation the coordinates mix both curvatures and the loss curve changes. Measured for four
# angles, all with one compiled function (`surfaces.rotated_trajectories`; the angle is traced):

# %%
ROTATION_NAMES = surfaces.ROTATION_NAMES  # GD, momentum, AdaGrad, RMSProp, Adam
angles = np.deg2rad([0.0, 15.0, 30.0, 45.0])
rot_losses = [
    {
        name: loss
        for name, (_, loss) in jax.device_get(
            surfaces.rotated_trajectories(phi, HP, steps=STEPS)
        ).items()
    }
    for phi in angles
]
log_f = {
    name: np.log10(np.stack([out[name][:150] for out in rot_losses]) + 1e-30)
    for name in ROTATION_NAMES
}
spread = {name: float(np.max(np.abs(lf[1:] - lf[0]))) for name, lf in log_f.items()}
print(
    "largest change of log10 f over the first 150 steps, any angle vs 0°:",
    {k: round(v, 3) for k, v in spread.items()},
)
assert spread["GD"] < 0.01 and spread["momentum"] < 0.01  # rotation-invariant
assert all(spread[n] > 0.1 for n in ("AdaGrad", "RMSProp", "Adam"))  # not: > 25% somewhere

# %% [markdown]
# The slider rotates the bowl; the paths are drawn in the bowl's own axes, so the level sets stay
# put and a rotation-invariant method draws the same path at every angle:

# %%
panel_rotation = surfaces.rotation_panel(HP, steps=STEPS)
panel_rotation

# %% [markdown]
# **What to notice.** GD's and momentum's paths and loss curves do not move with the slider
# (measured above: less than 0.01 in $\log_{10} f$ at any angle); the adaptive methods' do — AdaGrad's by a
# factor of about 1.5, RMSProp's and Adam's by orders of magnitude (printed; asserted: more than
# 25% for each). Their advantage on the axis-aligned bowl comes from the bowl
# being axis-aligned: a diagonal preconditioner helps only as far as the curvature is aligned with
# the coordinates. Real networks sit in between.

# %% [markdown]
# ## 9 · Slider panel: eight optimizers on two surfaces
#
# All eight at once: the gradient-descent family (GD, momentum, Nesterov) reads step size $\eta$
# and momentum $\mu$, the adaptive family (AdaGrad, RMSProp, Adam, AdaMax, Nadam) reads its own
# learning rate and $\beta_1$ — their learning rates live on different scales (an adaptive step
# is about $\eta$ in *parameter units*, a GD step is $\eta$ times the gradient). Switch the surface
# to Rosenbrock's banana $f = (1-x)^2 + 100(y - x^2)^2$: a curved valley whose floor is easy to
# reach and slow to follow to the minimum at $(1, 1)$.
#
# Things to try: on the quadratic, notice that the adaptive methods take the first steps
# *diagonally* (each coordinate moves about $\eta$) and RMSProp then rattles around the minimum
# at a fixed step size; AdaGrad's steps shrink. On Rosenbrock, momentum speeds along the valley
# but overshoots at large $\mu$; raise the adaptive learning rate until Adam oscillates.
#
# On a non-quadratic surface $2/\lambda_{\max}$ is a *local* bound: it holds where the Hessian was
# taken. At the start point it is an overshoot bound — a larger step jumps across the valley
# instead of down into it (the loss of the first steps rises) — but no run on the slider diverges:
# the curvature is smaller elsewhere. What decides convergence is the Hessian at the minimum
# $(1, 1)$: below its $2/\lambda_{\max}$ GD settles there; above it the minimum repels small
# errors and GD keeps bouncing in the valley forever. All three statements are checked below.

# %%
x_s, y_s = ROSEN.start
hess_start = np.array(  # second derivatives of (1-x)^2 + 100 (y - x^2)^2
    [[2 - 400 * (y_s - x_s**2) + 800 * x_s**2, -400 * x_s], [-400 * x_s, 200.0]]
)
lam_max_start = max(np.linalg.eigvalsh(hess_start))
hess_min = np.array([[802.0, -400.0], [-400.0, 200.0]])  # the same at the minimum (1, 1)
edge_start, edge_min = (
    2 / max(np.linalg.eigvalsh(hess_start)),
    2 / max(np.linalg.eigvalsh(hess_min)),
)
print(
    f"2/lambda_max: {edge_start:.5f} at the start {ROSEN.start}, {edge_min:.5f} at the minimum (1, 1)"
)
slider_lrs = np.linspace(0.0005, 0.006, 12)  # the GD slider's range
first_jump = []
for lr in slider_lrs:
    gd_loss = paths("rosenbrock", lr=lr)["GD"][1]
    assert np.isfinite(gd_loss[-1]), lr  # nothing on the slider diverges
    first_jump.append(gd_loss[1:4].max() / gd_loss[0])
print(
    f"no GD run with eta in [{slider_lrs[0]}, {slider_lrs[-1]}] diverges; the loss of the first three "
    f"steps rises up to {max(first_jump):.0f}x the start's above 2/lambda_max(start), "
    f"at most {max(j for j, lr in zip(first_jump, slider_lrs, strict=True) if lr < edge_start):.1f}x below"
)
assert all(j > 1 for j, lr in zip(first_jump, slider_lrs, strict=True) if lr > 1.2 * edge_start)
long_runs = {
    lr: surfaces.trajectories("rosenbrock", {**HP, "lr": lr}, names=("GD",), steps=20_000)["GD"]
    for lr in (0.95 * edge_min, 1.05 * edge_min)
}
for lr, (path_l, loss_l) in long_runs.items():
    print(
        f"GD, eta = {lr:.5f} ({lr / edge_min:.2f} x 2/lambda_max(minimum)), 20,000 steps: "
        f"f = {float(loss_l[-1]):.2g} at {np.round(np.asarray(path_l[-1]), 4)}"
    )
(_, loss_below), (_, loss_above) = long_runs.values()
assert float(loss_below[-1]) < 1e-8 < 1e-3 < float(jnp.min(loss_above[-1000:]))
rosen = paths("rosenbrock")  # compiles the Rosenbrock trajectories once, before the panel
for name in ("GD", "momentum", "Adam"):
    print(f"{name:>8} with the default settings: f after {STEPS} steps = {rosen[name][1][-1]:.3g}")

# %%
panel_paths = surfaces.paths_panel(HP, steps=STEPS)  # eight optimizers, one compiled call per move
panel_paths

# %% [markdown]
# **What to notice.** On the quadratic the adaptive methods' first steps go diagonally (about
# $\eta$ along each axis) and RMSProp keeps rattling near the minimum at a fixed step size; on
# Rosenbrock the GD family creeps along the curved valley floor while momentum overshoots its bends
# at large $\mu$. The GD and adaptive sliders are independent: their learning rates live on
# different scales.
#
# How long a slider move takes (re-run all eight trajectories + redraw), measured over a few
# values on both surfaces, and a check that no move compiled anything new — the hyperparameters
# are traced values, so every move reuses the compiled trajectories:

# %%
compiles_before = surfaces.compile_count()
slider_ms, surface_ms = [], []
for surface in ("rosenbrock", "quadratic"):
    surface_ms.append(panel_paths.update(surface=surface))
    for lr in (0.001, 0.003, 0.006):
        slider_ms.append(panel_paths.update(lr=lr))
    slider_ms.append(panel_paths.update(beta=0.5))
    slider_ms.append(panel_paths.update(lr_adaptive=0.3))
mom_ms = [panel_momentum.update(lr=lr) for lr in (0.001, 0.003, 0.005, 0.006)]
print(
    f"eight-optimizer panel: median {np.median(slider_ms):.1f} ms per slider move "
    f"(max {max(slider_ms):.0f} ms); surface switch {np.median(surface_ms):.0f} ms"
)
rot_ms = [panel_rotation.update(angle=a) for a in (20.0, 45.0, 70.0)]
print(f"momentum panel:        median {np.median(mom_ms):.1f} ms per slider move")
print(f"rotation panel:        median {np.median(rot_ms):.1f} ms per slider move")
print("new compilations:", surfaces.compile_count() - compiles_before)
assert surfaces.compile_count() == compiles_before
panel_paths.update(lr=HP["lr"], beta=HP["beta"], lr_adaptive=HP["lr_adaptive"], b1=HP["b1"])
_ = panel_momentum.update(lr=HP["lr"], beta=HP["beta"])
_ = panel_rotation.update(angle=0.0)

# %% [markdown]
# ## 10 · AdamW: keep the decay out of Adam's rescaling
#
# Chapter 01 (section 5) showed that an L2 penalty in the loss is weight decay for SGD but not for
# Adam. In `lessonlib.optim` the two are the same three transforms in a different order:
#
# ```
# Adam + L2: chain(add_decayed_weights(lam), scale_by_adam(), scale_by_learning_rate(lr))
# AdamW:     chain(scale_by_adam(), add_decayed_weights(lam), scale_by_learning_rate(lr))
# ```
#
# $$\text{AdamW:}\quad \theta_t = \theta_{t-1} - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\,\theta_{t-1}\right)$$
#
# A sharp way to see the difference: take a weight whose *data* gradient is zero. AdamW shrinks it
# geometrically, $\theta_t = (1-\eta\lambda)^t\theta_0$. Under Adam + L2 the only gradient is
# $\lambda\theta$, which Adam normalizes to about $\mathrm{sign}(\theta)$: the weight moves by about
# $\eta$ per step *whatever $\lambda$ is*. Checked for two values of $\lambda$:

# %%
eta_w, steps_w, theta0 = 0.01, 50, jnp.array([2.0, -1.0])
ends_l2 = {}
for lam in (1e-3, 1e-1):
    adam_l2 = optim.chain(
        optim.add_decayed_weights(lam), optim.scale_by_adam(), optim.scale_by_learning_rate(eta_w)
    )
    adamw = optim.adamw(eta_w, weight_decay=lam)
    p_l2, p_w = theta0, theta0
    s_l2, s_w = adam_l2.init(theta0), adamw.init(theta0)
    for _ in range(steps_w):
        u, s_l2 = adam_l2.update(jnp.zeros(2), s_l2, p_l2)  # zero data gradient
        p_l2 = optim.apply_updates(p_l2, u)
        u, s_w = adamw.update(jnp.zeros(2), s_w, p_w)
        p_w = optim.apply_updates(p_w, u)
    ends_l2[lam] = np.asarray(p_l2)
    print(
        f"lambda = {lam:g}: Adam+L2 -> {np.round(ends_l2[lam], 4)}, AdamW -> {np.round(np.asarray(p_w), 4)}"
        f" = (1 - eta*lambda)^{steps_w} * theta0 = {np.round(np.asarray((1 - eta_w * lam) ** steps_w * theta0), 4)}"
    )
    assert np.allclose(p_w, (1 - eta_w * lam) ** steps_w * theta0, rtol=1e-5)
moved = np.abs(np.asarray(theta0)) - np.abs(ends_l2[1e-3])
print(
    f"Adam+L2 moved each weight by {np.round(moved, 3)} (eta * steps = {eta_w * steps_w:g}) for both lambdas"
)
assert np.allclose(ends_l2[1e-3], ends_l2[1e-1], rtol=1e-4)  # lambda has no effect
assert np.all((moved > 0.8 * eta_w * steps_w) & (moved <= eta_w * steps_w * 1.001))

# %% [markdown]
# **What to notice.** AdamW's shrinkage depends on $\lambda$ exactly as the formula says; Adam + L2
# moved both weights by about $\eta \times$ steps towards zero for *both* values of $\lambda$ — the
# penalty's strength has been normalized away.
#
# > **Myth:** (the Géron notes) "L1/L2 regularization is not suitable for Adam (L1,L2正则化不适用于Adam)."
# > **Fact:** an L2 term in the loss works with Adam — Adam minimizes the penalized loss — but it
# > is not *weight decay*: its effect per coordinate is rescaled by $1/\sqrt{\hat v}$. Use AdamW
# > when you mean decay. (With SGD the two are identical; with Adam they are different
# > regularizers.)

# %% [markdown]
# ## 11 · Nine optimizers, one training run
#
# Same network (64-32-10 MLP with ReLU on scikit-learn's 8x8 digits), same data order, same 15
# epochs of minibatches of 64, for all nine optimizers — each at four learning rates on a
# log grid, because a comparison at one learning rate per optimizer
# compares learning rates more than optimizers.
#
# Thirty-six runs would mean nine compilations with one `train.sweep` per optimizer. Instead,
# `optim.switch(index, transforms)` picks the optimizer by a *traced* index, so the optimizer
# itself becomes a swept hyperparameter: one compilation, one vmapped call, every run sees the
# same minibatches.

# %%
OPT_NAMES = [
    "SGD",
    "momentum",
    "Nesterov",
    "AdaGrad",
    "RMSProp",
    "Adam",
    "AdaMax",
    "Nadam",
    "AdamW",
]
LR_GRID = {  # four learning rates per optimizer, about 3x apart, bracketing the best one
    "SGD": [0.1, 0.3, 1.0, 3.0],
    "momentum": [0.03, 0.1, 0.3, 1.0],
    "Nesterov": [0.03, 0.1, 0.3, 1.0],
    "AdaGrad": [0.03, 0.1, 0.3, 1.0],
    "RMSProp": [0.003, 0.01, 0.03, 0.1],
    "Adam": [0.003, 0.01, 0.03, 0.1],
    "AdaMax": [0.01, 0.03, 0.1, 0.3],
    "Nadam": [0.003, 0.01, 0.03, 0.1],
    "AdamW": [0.003, 0.01, 0.03, 0.1],
}


def any_optimizer(hp):
    """Optimizer number hp["which"] of OPT_NAMES, with learning rate hp["lr"]."""
    lr = hp["lr"]
    return optim.switch(
        hp["which"],
        [
            optim.sgd(lr),
            optim.sgd(lr, momentum=0.9),
            optim.sgd(lr, momentum=0.9, nesterov=True),
            optim.adagrad(lr),
            optim.rmsprop(lr),
            optim.adam(lr),
            optim.adamax(lr),
            optim.nadam(lr),
            optim.adamw(lr, weight_decay=1e-2),
        ],
    )


digits = data.digits()
net = models.mlp([64, 32, 10])
net_params, _ = net.init(jax.random.key(0))
which = np.repeat(np.arange(len(OPT_NAMES)), 4).astype(np.float32)
lrs = np.array([lr for name in OPT_NAMES for lr in LR_GRID[name]], np.float32)
t0 = time.perf_counter()
compiles0 = train.compile_count()
runs = train.sweep(
    net,
    net_params,
    digits,
    key=jax.random.key(1),
    hp={"which": which, "lr": lrs},
    epochs=15,
    batch_size=64,
    optimizer=any_optimizer,
)
print(
    f"{len(lrs)} training runs in {time.perf_counter() - t0:.1f} s, "
    f"{train.compile_count() - compiles0} compilation(s)"
)

# %%
H = runs.history
final_train = H["train_loss"][:, -1].reshape(len(OPT_NAMES), 4)
final_test_acc = H["test_acc"][:, -1].reshape(len(OPT_NAMES), 4)
best = np.nanargmin(final_train, axis=1)  # best learning rate per optimizer, by final train loss
print(f"{'optimizer':>9} | best lr | train loss | test acc | train loss at each lr of the grid")
for i, name in enumerate(OPT_NAMES):
    j = best[i]
    print(
        f"{name:>9} | {LR_GRID[name][j]:7.4g} | {final_train[i, j]:10.4f} | {final_test_acc[i, j]:8.3f} | "
        + " ".join(f"{v:.3f}" for v in final_train[i])
    )

fig, (ax_tr, ax_te) = viz.figure(2)
epochs_axis = np.arange(1, H["train_loss"].shape[1] + 1)
for i, name in enumerate(OPT_NAMES):
    row = 4 * i + best[i]
    color = {**surfaces.COLORS, "SGD": "k", "AdamW": "#2ca02c"}[name]
    style = "--" if name == "AdamW" else "-"
    ax_tr.semilogy(epochs_axis, H["train_loss"][row], style, color=color, label=name)
    ax_te.plot(epochs_axis, H["test_acc"][row], style, color=color, label=name)
ax_tr.set(xlabel="epoch", ylabel="train loss", title="each optimizer at its best lr")
ax_te.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.8, 1.0))
ax_tr.legend(fontsize=7, ncols=2)
viz.show(fig)

# %%
best_acc = final_test_acc[np.arange(len(OPT_NAMES)), best]
sgd_accs = final_test_acc[OPT_NAMES.index("SGD")]
print(
    f"best test accuracy: from {best_acc.min():.3f} to {best_acc.max():.3f} across the nine optimizers;"
)
print(
    f"SGD alone: from {np.nanmin(sgd_accs):.3f} to {np.nanmax(sgd_accs):.3f} across its four learning rates"
)
best_lr = {name: LR_GRID[name][best[i]] for i, name in enumerate(OPT_NAMES)}
print(
    f"best lr: SGD {best_lr['SGD']:g}, Adam {best_lr['Adam']:g} ({best_lr['SGD'] / best_lr['Adam']:.0f}x smaller)"
)
i_adam, i_adamw = OPT_NAMES.index("Adam"), OPT_NAMES.index("AdamW")
j_adam = best[i_adam]
print(
    f"at Adam's best lr {LR_GRID['Adam'][j_adam]:g}: Adam test acc {final_test_acc[i_adam, j_adam]:.3f}, "
    f"AdamW {final_test_acc[i_adamw, j_adam]:.3f}; train loss {final_train[i_adam, j_adam]:.4f} vs "
    f"{final_train[i_adamw, j_adam]:.4f}"
)
sgd_spread = np.nanmax(sgd_accs) - np.nanmin(sgd_accs)
optimizer_spread = best_acc.max() - best_acc.min()
assert sgd_spread > 5 * optimizer_spread  # the learning rate matters more than the optimizer
assert abs(final_test_acc[i_adamw, j_adam] - final_test_acc[i_adam, j_adam]) <= 0.01

# %%
# NBVAL_CHECK_OUTPUT
print("every optimizer reaches test accuracy > 0.9 at its best lr:", bool((best_acc > 0.9).all()))
print("Adam's best lr is smaller than SGD's:", best_lr["Adam"] < best_lr["SGD"])
# OUTPUT: every optimizer reaches test accuracy > 0.9 at its best lr: True
# OUTPUT: Adam's best lr is smaller than SGD's: True

# %% [markdown]
# **What to notice** (numbers printed above). Each at its best learning rate, the nine optimizers
# reach test accuracies within a couple of points of each other on this small problem, while
# SGD's accuracy over its own four learning rates spans more than five times that range (asserted
# above): tune the learning rate before switching optimizers. The adaptive methods' best learning
# rates are much smaller than SGD's — learning rates do not transfer between optimizers. AdamW
# (dashed) is Adam plus a small decoupled decay ($\lambda = 10^{-2}$); at Adam's best learning rate
# its test accuracy after 15 epochs is within one point of Adam's (asserted above).
#
# > **Adaptive methods can generalize worse.** Wilson et al. (2017) trained image and language
# > models with carefully tuned SGD (with momentum) and with AdaGrad, RMSProp and Adam: the
# > adaptive methods often reached a *lower training loss* but a *worse test error*, and on a
# > constructed linearly separable problem they find a solution whose test error approaches 50%
# > while SGD finds the minimum-norm one and generalizes. A small dataset like this one is no
# > evidence either way; on a real task compare the best adaptive run with tuned SGD + momentum
# > *on validation data* before settling on one.

# %% [markdown]
# ## 12 · Exercises
#
# Implement one step of each update rule, with the conventions of `lessonlib.optim` (and optax).
# Inputs are `jnp` arrays (any shape) and Python numbers; return the new values as a tuple.
#
# **Exercise 1 (2 points).** `momentum_step(w, m, grad, lr, beta)` returns `(w_new, m_new)` with
# $m_{new} = \beta m + g$ and $w_{new} = w - \eta\, m_{new}$.


# %% [solution] id=ex06-momentum-step
def momentum_step(w, m, grad, lr, beta):
    """One step of SGD with (heavy-ball) momentum; returns (w_new, m_new)."""
    ### BEGIN SOLUTION
    m = beta * m + grad
    return w - lr * m, m
    ### END SOLUTION


# %% [tests] id=ch06-test-momentum-step points=2
check("06.momentum_step", momentum_step)
### BEGIN HIDDEN TESTS
check("06.momentum_step", momentum_step, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (3 points).** `adam_step(w, m, v, grad, t, lr, b1, b2, eps)` returns
# `(w_new, m_new, v_new)`: one Adam step (Algorithm 1 of Kingma & Ba) where `t` is the number of
# this step, starting at 1. Return the *uncorrected* moments (they are the state); use the
# bias-corrected ones only for the step.


# %% [solution] id=ex06-adam-step
def adam_step(w, m, v, grad, t, lr, b1, b2, eps):
    """One Adam step with bias correction; returns (w_new, m_new, v_new)."""
    ### BEGIN SOLUTION
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return w - lr * m_hat / (jnp.sqrt(v_hat) + eps), m, v
    ### END SOLUTION


# %% [tests] id=ch06-test-adam-step points=3
check("06.adam_step", adam_step)
### BEGIN HIDDEN TESTS
check("06.adam_step", adam_step, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** `adamw_step(w, m, v, grad, t, lr, b1, b2, eps, weight_decay)`: one
# AdamW step, $w_{new} = w - \eta\big(\hat m/(\sqrt{\hat v} + \epsilon) + \lambda w\big)$ with the
# decay kept out of the moments. (You may call your `adam_step`.)


# %% [solution] id=ex06-adamw-step
def adamw_step(w, m, v, grad, t, lr, b1, b2, eps, weight_decay):
    """One AdamW step (decoupled weight decay); returns (w_new, m_new, v_new)."""
    ### BEGIN SOLUTION
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return w - lr * (m_hat / (jnp.sqrt(v_hat) + eps) + weight_decay * w), m, v
    ### END SOLUTION


# %% [tests] id=ch06-test-adamw-step points=2
check("06.adamw_step", adamw_step)
### BEGIN HIDDEN TESTS
check("06.adamw_step", adamw_step, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## 13 · The Géron notes' Keras calls, in `lessonlib.optim`
#
# The Géron notes list one Keras line per optimizer. The same optimizers here, with the arguments that
# are *named or placed differently* written out (Keras' defaults in the comments):
#
# | Keras (the Géron notes) | `lessonlib.optim` / optax | what differs |
# |---|---|---|
# | `SGD(learning_rate=0.001, momentum=0.9)` | `sgd(0.001, momentum=0.9)` | Keras keeps $v = \mu v - \eta g$ (same path for constant $\eta$) |
# | `SGD(..., nesterov=True)` | `sgd(0.001, momentum=0.9, nesterov=True)` | — |
# | `Adagrad(learning_rate=0.001)` | `adagrad(0.001)` | nothing: Keras 3 also starts at $G_0 = 0.1$ and puts $\epsilon = 10^{-7}$ inside the root (PyTorch: $G_0 = 0$, $\epsilon$ outside) |
# | `RMSprop(learning_rate=0.001, rho=0.9)` | `rmsprop(0.001, decay=0.9, eps=1e-7)` | `rho` → `decay`; Keras 3's $\epsilon = 10^{-7}$ is inside the root, as here (PyTorch: outside, `eps_in_sqrt=False`) |
# | `Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999)` | `adam(0.001, b1=0.9, b2=0.999)` | Keras' $\hat\epsilon = 10^{-7}$ (section 7) |
# | `Adamax(...)` | `adamax(0.001)` | Keras adds $\epsilon$ to $u_t$ instead of $\lvert g_t\rvert$ |
# | `Nadam(...)` | `nadam(0.001)` | Keras warms up $\beta_1$: $\mu_t = \beta_1(1 - 0.5\cdot 0.96^t)$ (PyTorch: $0.96^{0.004\,t}$) |
# | `AdamW(weight_decay=1e-5, ...)` | `adamw(0.001, weight_decay=1e-5)` | defaults: Keras 0.004, optax 1e-4, PyTorch 1e-2 |
#
# Each of these builds and runs a step (the hyperparameters are checked as they are built —
# a negative learning rate or $\beta \ge 1$ raises a `ValueError` naming the argument):

# %%
keras_optimizers = {
    "SGD(momentum=0.9)": optim.sgd(0.001, momentum=0.9),
    "SGD(nesterov=True)": optim.sgd(0.001, momentum=0.9, nesterov=True),
    "Adagrad": optim.adagrad(0.001),
    "RMSprop(rho=0.9)": optim.rmsprop(0.001, decay=0.9, eps=1e-7),
    "Adam": optim.adam(0.001, b1=0.9, b2=0.999),
    "Adamax": optim.adamax(0.001, b1=0.9, b2=0.999),
    "Nadam": optim.nadam(0.001, b1=0.9, b2=0.999),
    "AdamW(weight_decay=1e-5)": optim.adamw(0.001, b1=0.9, b2=0.999, weight_decay=1e-5),
}
w_demo = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
g_demo = {"w": jnp.full((2, 2), 0.5), "b": jnp.ones(2)}
for name, opt in keras_optimizers.items():
    upd, _ = opt.update(g_demo, opt.init(w_demo), w_demo)
    print(f"{name:>25}: first update of w[0,0] = {float(upd['w'][0, 0]):+.6f}")
try:
    optim.adam(0.001, b1=1.0)
except ValueError as e:
    print("optim.adam(0.001, b1=1.0) ->", e)

# %% [markdown]
# Where $\epsilon$ sits matters when a gradient is as small as $\sqrt\epsilon$. Keras 3's rules,
# transcribed from its source (`keras/src/optimizers/adagrad.py`: `lr * g / sqrt(accumulator +
# epsilon)`; `rmsprop.py`: `lr * g / sqrt(velocity + epsilon)`), against the `lessonlib` calls of
# the table, and PyTorch's placement $\sqrt{\cdot} + \epsilon$ for contrast — one first step:

# %%
g_tiny = np.array([1e-4, 1e-3, 1.0])
keras_adagrad = -0.001 * g_tiny / np.sqrt(0.1 + g_tiny**2 + 1e-7)  # accumulator starts at 0.1
keras_rmsprop = -0.001 * g_tiny / np.sqrt(0.1 * g_tiny**2 + 1e-7)  # velocity starts at 0
outside_rmsprop = -0.001 * g_tiny / (np.sqrt(0.1 * g_tiny**2) + 1e-7)  # PyTorch's placement
ours = {}
for name, opt in [
    ("adagrad", optim.adagrad(0.001)),
    ("rmsprop", keras_optimizers["RMSprop(rho=0.9)"]),
]:
    ours[name] = np.asarray(opt.update(jnp.asarray(g_tiny, jnp.float32), opt.init(jnp.zeros(3)))[0])
print("Keras 3 Adagrad :", keras_adagrad, "\noptim.adagrad   :", ours["adagrad"])
print("Keras 3 RMSprop :", keras_rmsprop, "\noptim.rmsprop   :", ours["rmsprop"])
print("eps outside     :", outside_rmsprop)
print(
    f"at g = 1e-4 the two placements differ {outside_rmsprop[0] / keras_rmsprop[0]:.1f}x; "
    f"at g = 1 by {abs(outside_rmsprop[2] / keras_rmsprop[2] - 1):.0e}"
)
assert np.allclose(ours["adagrad"], keras_adagrad, rtol=1e-5)
assert np.allclose(ours["rmsprop"], keras_rmsprop, rtol=1e-5)
assert outside_rmsprop[0] / keras_rmsprop[0] > 5

# %% [markdown]
# Nadam's $\beta_1$ warm-up in the two frameworks that have one (Keras 3: `0.96 ** t`; PyTorch:
# `0.96 ** (t * momentum_decay)`, `momentum_decay=4e-3`), with $\beta_1 = 0.9$:

# %%
t_mu = np.array([1, 10, 100, 1000, 10_000])
mu_keras = 0.9 * (1 - 0.5 * 0.96**t_mu)
mu_torch = 0.9 * (1 - 0.5 * 0.96 ** (t_mu * 4e-3))
for t_, a, b in zip(t_mu, mu_keras, mu_torch, strict=True):
    print(f"t = {t_:>6}: Keras mu_t = {a:.4f}   PyTorch mu_t = {b:.4f}")
assert (
    mu_keras[2] > 0.99 * 0.9 > mu_torch[3]
)  # Keras is warm after 100 steps, PyTorch not after 1000

# %% [markdown]
# ## Sharp bits
#
# - **Learning rates do not transfer between optimizers.** An adaptive step is about $\eta$ in
#   parameter units; an SGD step is $\eta$ times the gradient (section 11's grid).
# - **$\epsilon$ is not one thing.** Inside the root (AdaGrad and RMSProp in optax, Keras 3 and
#   here) or outside (Adam; PyTorch's AdaGrad and RMSProp; older tf.keras releases); added to the bias-corrected root (optax, PyTorch) or to the
#   uncorrected one (Keras' $\hat\epsilon$, section 7); defaults $10^{-8}$ (optax, PyTorch Adam)
#   or $10^{-7}$ (Keras). It matters when gradients are tiny.
# - **RMSProp's decay**: Keras `rho=0.9`, optax `decay=0.9`, PyTorch `alpha=0.99`.
# - **AdaGrad's initial accumulator**: 0.1 in optax, Keras and TF1; 0 in PyTorch.
# - **Where the learning rate sits in momentum.** optax/PyTorch: $\theta -= \eta m$ with
#   $m = \mu m + g$; Keras/Sutskever: $v = \mu v - \eta g$. Identical for a constant $\eta$; with a
#   schedule (chapter 07) the first form rescales the whole velocity at once.
# - **Nesterov, two ways.** Sutskever's look-ahead gradient vs the stored-look-ahead form of
#   optax/PyTorch (section 3): the same iterates, shifted by $\mu v$ — compare parameters
#   accordingly.
# - **Nadam's $\beta_1$ schedule** $\mu_t = \beta_1(1 - 0.5\cdot 0.96^{t})$ in Keras (0.96 typed in),
#   $0.96^{t\psi}$ with `momentum_decay` $\psi = 0.004$ in PyTorch — 250 times slower — and none in
#   optax or here (section 13 prints both).
# - **AdamW's decay is multiplied by the learning rate** in optax, PyTorch, Keras and here (the
#   paper multiplies it only by the schedule); PyTorch's `Adam(weight_decay=...)` is L2 in the
#   loss, *not* AdamW. Mask biases and norms out of the decay (`adamw(..., mask=...)`).
# - **Adam's first step is $\approx\eta$ per coordinate** regardless of the gradient's size (bias
#   correction): with a large $\eta$, step 1 alone can wreck a pretrained model — warm up.
# - **AdaGrad stops.** Its effective learning rate $\eta/\sqrt{G_t}$ only decreases (section 5):
#   fine for convex problems, too early for deep networks (the Géron notes).
# - **Build optimizers from traced values inside `jit`** (`optimizer=lambda hp: optim.adam(hp["lr"])`,
#   defined *once*) so that a new learning rate reuses the compilation; a new `lambda` per call, or
#   a learning rate baked in as a constant, recompiles.
# - **A new parameter tree needs a new state**: `init(params)` again after changing the model.
#
# ## References
#
# - B. T. Polyak (1964). Some methods of speeding up the convergence of iteration methods.
#   *USSR Computational Mathematics and Mathematical Physics* 4(5).
# - Y. Nesterov (1983). A method for solving the convex programming problem with convergence rate
#   $O(1/k^2)$. *Soviet Mathematics Doklady* 27.
# - I. Sutskever, J. Martens, G. Dahl, G. Hinton (2013). On the importance of initialization and
#   momentum in deep learning. *ICML*.
# - Y. Bengio, N. Boulanger-Lewandowski, R. Pascanu (2013). Advances in optimizing recurrent
#   networks. *ICASSP* — the stored-look-ahead form of Nesterov momentum.
# - J. Duchi, E. Hazan, Y. Singer (2011). Adaptive subgradient methods for online learning and
#   stochastic optimization. *JMLR* 12.
# - G. Hinton, N. Srivastava, K. Swersky (2012). *Neural Networks for Machine Learning*, lecture 6e
#   (RMSProp).
# - D. P. Kingma, J. Ba (2015). Adam: a method for stochastic optimization. *ICLR* — Algorithm 1
#   (Adam), Algorithm 2 (AdaMax).
# - T. Dozat (2016). Incorporating Nesterov momentum into Adam. *ICLR workshop* (Nadam).
# - I. Loshchilov, F. Hutter (2019). Decoupled weight decay regularization. *ICLR* (AdamW).
# - A. C. Wilson, R. Roelofs, M. Stern, N. Srebro, B. Recht (2017). The marginal value of adaptive
#   gradient methods in machine learning. *NeurIPS* — adaptive methods can generalize worse.
# - G. Goh (2017). Why momentum really works. *Distill*.
# - A. Géron. *Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow*, 3rd ed., ch. 11
#   (the source of the Géron notes' optimizer section).
# - The course's sources, the Géron notes among them, and their mistakes: [sources.md](../sources.md).
# - optax documentation, `optax.sgd`, `optax.adam`, ... (the reference implementations the tests
#   compare against).
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | gradient descent | 梯度下降 | $\theta \leftarrow \theta - \eta\nabla J(\theta)$ |
# | learning rate, step size | 学习率，步长 | $\eta$: how far each step goes |
# | ill-conditioned | 病态（条件数大） | curvatures differ by a large factor $\kappa = \lambda_{\max}/\lambda_{\min}$ |
# | condition number | 条件数 | $\kappa$; GD's rate is $(\kappa-1)/(\kappa+1)$, momentum's $(\sqrt\kappa-1)/(\sqrt\kappa+1)$ |
# | zig-zag, oscillation | 之字形振荡 | sign flips along a steep direction when $\eta\lambda > 1$ |
# | momentum (heavy ball) | 动量（重球法） | a velocity $m = \mu m + g$ that accumulates gradients |
# | Nesterov accelerated gradient | Nesterov 加速梯度 | momentum with the gradient taken at the look-ahead point |
# | adaptive learning rate | 自适应学习率 | a step size per coordinate from the gradient history |
# | accumulator | 累加器 | AdaGrad's running sum of squared gradients $G_t$ |
# | exponential moving average | 指数移动平均 | $a \leftarrow \beta a + (1-\beta)x$ |
# | first / second moment | 一阶矩 / 二阶矩 | mean / uncentered variance of the gradient (Adam's $m$, $v$) |
# | bias correction | 偏差修正 | dividing by $1-\beta^t$ to undo the zero initialization |
# | infinity norm | 无穷范数 | $\max_i \lvert x_i\rvert$; AdaMax's second-moment replacement |
# | weight decay | 权重衰减 | shrinking weights by $\eta\lambda\theta$ each step |
# | decoupled weight decay | 解耦权重衰减 | decay applied outside Adam's rescaling (AdamW) |
# | L2 regularization | L2 正则化 | $\frac\lambda2\lVert\theta\rVert^2$ added to the loss |
# | gradient transformation | 梯度变换 | optax's `init`/`update` pair; optimizers are chains of them |
# | trajectory | 轨迹 | the sequence of parameters visited by an optimizer |
# | Rosenbrock (banana) function | Rosenbrock 函数（香蕉函数） | $(1-x)^2 + 100(y-x^2)^2$, a curved valley |
# | convergence rate | 收敛速率 | factor by which the error shrinks per step |
# | divergence | 发散 | the loss grows without bound (here: becomes inf) |

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s (after imports)")
