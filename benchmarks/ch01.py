"""Chapter 01 benchmark: the d2l weight-decay demo and a 64-lambda sweep, three ways, side by side.

The demo is Dive into Deep Learning v0.17's high-dimensional linear regression (section 4.5):
20 training and 100 test points in 200-D, 100 epochs of minibatch SGD with batch 5 and
lr 0.003, an L2 penalty lambda, train and test loss after every epoch. It runs as

- ``lessonlib.train.fit``: the whole run as one jitted ``lax.scan``;
- eager PyTorch the way d2l writes it: ``nn.Linear``, a ``DataLoader`` with ``shuffle=True``,
  ``torch.optim.SGD`` with ``weight_decay`` on the weight only, evaluation after every epoch;
- a Python loop around a jitted JAX step (what most JAX tutorials write).

The sweep trains 64 lambdas in one ``lessonlib.train.sweep`` call and compares it with 64
``fit`` calls one by one and with 64 eager PyTorch runs. ``bench()`` returns the figures; run it
through ``benchmarks/run.py``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from common import figure, median, timings_ms

from lessonlib import data, models, regularization, train

EPOCHS, BATCH, LR, LAM = 100, 5, 0.003, 3.0
N_SWEEP = 64
TARGET_DEMO, TARGET_SWEEP = 100.0, 500.0


def l2(params, hp):
    return regularization.l2_penalty(params, hp["lam"])


def _setup():
    ds = data.d2l_weight_decay_data(seed=0)
    model = models.linear_regression(200)
    params, _ = model.init(jax.random.key(1))
    return ds, model, params


def lessonlib_fit(ds, model, params, lam=LAM):
    return train.fit(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": LR, "lam": lam},
        epochs=EPOCHS,
        batch_size=BATCH,
        penalty=l2,
    )


def lessonlib_sweep(ds, model, params, lams):
    return train.sweep(
        model,
        params,
        ds,
        key=jax.random.key(2),
        hp={"lr": LR, "lam": lams},
        epochs=EPOCHS,
        batch_size=BATCH,
        penalty=l2,
    )


# --------------------------------------------------------------------------- eager PyTorch


def torch_run(ds, params, lam=LAM, *, device="cpu"):
    """d2l v0.17 ``train_concise`` with an evaluation of both splits after every epoch."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    x_tr = torch.tensor(np.asarray(ds.x_train), device=device)
    y_tr = torch.tensor(np.asarray(ds.y_train), device=device).reshape(-1, 1)
    x_te = torch.tensor(np.asarray(ds.x_test), device=device)
    y_te = torch.tensor(np.asarray(ds.y_test), device=device).reshape(-1, 1)
    train_iter = DataLoader(TensorDataset(x_tr, y_tr), batch_size=BATCH, shuffle=True)
    net = nn.Linear(200, 1).to(device)
    with torch.no_grad():  # the same starting point as lessonlib's run
        net.weight.copy_(torch.tensor(np.asarray(params["w"])).reshape(1, -1))
        net.bias.zero_()
    loss = nn.MSELoss(reduction="none")
    trainer = torch.optim.SGD(
        [{"params": net.weight, "weight_decay": lam}, {"params": net.bias}], lr=LR
    )
    history = np.zeros((EPOCHS, 2), np.float32)
    for epoch in range(EPOCHS):
        for X, y in train_iter:
            trainer.zero_grad()
            l = loss(net(X), y) / 2  # d2l's squared loss is (y_hat - y)^2 / 2
            l.mean().backward()
            trainer.step()
        with torch.no_grad():
            history[epoch, 0] = (loss(net(x_tr), y_tr) / 2).mean().item()
            history[epoch, 1] = (loss(net(x_te), y_te) / 2).mean().item()
    return history


# --------------------------------------------------------------------------- Python-loop JAX


def _objective(w, b, x, y, lam):
    return jnp.mean(jnp.square(x @ w + b - y) / 2) + lam / 2 * jnp.sum(jnp.square(w))


@jax.jit
def _jax_step(w, b, x, y, lam):
    gw, gb = jax.grad(_objective, argnums=(0, 1))(w, b, x, y, lam)
    return w - LR * gw, b - LR * gb


@jax.jit
def _jax_loss(w, b, x, y):
    return jnp.mean(jnp.square(x @ w + b - y) / 2)


def jax_loop_run(ds, params, lam=LAM, *, seed=0):
    """A jitted step called from Python for every minibatch; NumPy shuffling as in d2l."""
    x_tr, y_tr = np.asarray(ds.x_train), np.asarray(ds.y_train)
    w, b = params["w"], params["b"]
    lam = jnp.float32(lam)
    rng = np.random.default_rng(seed)
    history = np.zeros((EPOCHS, 2), np.float32)
    n = len(x_tr)
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            w, b = _jax_step(w, b, x_tr[idx], y_tr[idx], lam)
        history[epoch, 0] = float(_jax_loss(w, b, ds.x_train, ds.y_train))
        history[epoch, 1] = float(_jax_loss(w, b, ds.x_test, ds.y_test))
    return history


# --------------------------------------------------------------------------- the benchmark


def bench(*, repeats: int = 5) -> dict:
    ds, model, params = _setup()
    lams = jnp.linspace(0.0, 10.0, N_SWEEP, dtype=jnp.float32)
    figs, notes = [], []
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch = None
        notes.append(
            "torch is not installed: the PyTorch columns are skipped (`make bench` installs it)."
        )

    start = time.perf_counter()
    lessonlib_fit(ds, model, params)
    compile_ms = (time.perf_counter() - start) * 1000
    fit_ms = median(timings_ms(lambda: lessonlib_fit(ds, model, params), repeats=max(repeats, 20)))
    jax_loop_ms = median(timings_ms(lambda: jax_loop_run(ds, params), repeats=repeats))
    torch_ms = None
    if torch is not None:
        torch_ms = median(timings_ms(lambda: torch_run(ds, params, device=device), repeats=repeats))

    # Sanity: the three implementations agree on what the demo shows (lambda=3 generalizes).
    final_test = {
        "lessonlib": float(lessonlib_fit(ds, model, params).history["test_loss"][-1]),
        "jax_loop": float(jax_loop_run(ds, params)[-1, 1]),
    }
    if torch is not None:
        final_test["torch"] = float(torch_run(ds, params, device=device)[-1, 1])
    for name, value in final_test.items():
        if not value < 0.5:
            notes.append(f"{name}: final test loss {value:.3g} at lambda=3, expected < 0.5")

    sweep_fn = lambda: lessonlib_sweep(ds, model, params, lams)  # noqa: E731
    start = time.perf_counter()
    sweep_fn()
    sweep_compile_ms = (time.perf_counter() - start) * 1000
    sweep_ms = median(timings_ms(sweep_fn, repeats=max(repeats, 10)))
    one_by_one = [
        timings_ms(lambda v=v: lessonlib_fit(ds, model, params, lam=v), repeats=1, warmup=0)[0]
        for v in np.asarray(lams)
    ]
    one_by_one_ms = sum(one_by_one)
    torch_sweep_ms = None
    if torch is not None:
        # 64 eager runs take seconds; on an overloaded machine (one run > 0.5 s) time every
        # 8th lambda and scale up, and say so.
        every = 1 if torch_ms < 500 else 8
        measured = [
            timings_ms(
                lambda v=v: torch_run(ds, params, float(v), device=device), repeats=1, warmup=0
            )[0]
            for v in np.asarray(lams)[::every]
        ]
        torch_sweep_ms = sum(measured) * every
        if every > 1:
            notes.append(
                f"ch01: eager PyTorch took {torch_ms:.0f} ms per run (machine overloaded), so "
                f"{len(measured)} of the {N_SWEEP} sweep runs were timed and the sum scaled by {every}."
            )
    demo = "d2l weight-decay demo (20x200, 100 epochs, batch 5)"
    if torch_ms is not None:
        ratio = torch_ms / fit_ms
        figs.append(
            figure(
                "ch01.demo.speedup_vs_torch",
                f"{demo}: lessonlib vs eager PyTorch",
                ratio,
                "x",
                target=f">= {TARGET_DEMO:g}x",
                ok=ratio >= TARGET_DEMO,
                kind="ratio",
            )
        )
    figs.append(
        figure(
            "ch01.demo.speedup_vs_jax_loop",
            f"{demo}: lessonlib vs Python-loop JAX",
            jax_loop_ms / fit_ms,
            "x",
            kind="ratio",
        )
    )
    if torch_sweep_ms is not None:
        ratio = torch_sweep_ms / sweep_ms
        figs.append(
            figure(
                "ch01.sweep.speedup_vs_torch",
                f"{N_SWEEP}-lambda sweep in one call vs {N_SWEEP} eager PyTorch runs",
                ratio,
                "x",
                target=f">= {TARGET_SWEEP:g}x",
                ok=ratio >= TARGET_SWEEP,
                kind="ratio",
            )
        )
    figs.append(
        figure(
            "ch01.sweep.speedup_vs_one_by_one",
            f"{N_SWEEP}-lambda sweep (vmap) vs the same {N_SWEEP} fit calls one by one",
            one_by_one_ms / sweep_ms,
            "x",
            kind="ratio",
        )
    )
    figs += [
        figure("ch01.demo.lessonlib_ms", "demo run, lessonlib.train.fit (compiled)", fit_ms, "ms"),
        figure(
            "ch01.demo.lessonlib_compile_ms",
            "demo run, first call (compile + run)",
            compile_ms,
            "ms",
        ),
        figure(
            "ch01.demo.jax_loop_ms", "demo run, Python loop around a jitted step", jax_loop_ms, "ms"
        ),
        figure(
            "ch01.demo.torch_ms",
            "demo run, eager PyTorch (d2l style)",
            torch_ms,
            "ms",
            note="" if torch_ms is not None else "torch missing",
        ),
        figure(
            "ch01.sweep.lessonlib_ms",
            f"{N_SWEEP}-lambda sweep, lessonlib.train.sweep",
            sweep_ms,
            "ms",
        ),
        figure(
            "ch01.sweep.lessonlib_compile_ms",
            "sweep, first call (compile + run)",
            sweep_compile_ms,
            "ms",
        ),
        figure(
            "ch01.sweep.one_by_one_ms",
            f"{N_SWEEP} lessonlib.train.fit calls one by one",
            one_by_one_ms,
            "ms",
        ),
        figure(
            "ch01.sweep.torch_ms",
            f"{N_SWEEP} eager PyTorch runs",
            torch_sweep_ms,
            "ms",
            note="" if torch_sweep_ms is not None else "torch missing",
        ),
    ]
    return {"figures": figs, "notes": notes, "final_test_loss": final_test}


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(json.dumps(bench(), indent=1))
