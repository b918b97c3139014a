"""Chapter 02 benchmark: the notebook's dropout-rate sweep, vmapped vs one run at a time.

The sweep is the one behind the chapter's p slider: MNIST-1D, MLP 40-128-128-10 with dropout after
both hidden layers, SGD lr 0.1, batch 50, ten rates p = 0, 0.1, ..., 0.9, train and test loss and
accuracy (dropout off) after every epoch. It runs as

- ``lessonlib.train.sweep``: the ten runs in one vmapped, jitted call;
- ten eager PyTorch runs one after another, written the way Dive into Deep Learning writes its
  dropout MLP (``nn.Sequential`` with ``nn.Dropout``, a shuffled ``DataLoader``, ``torch.optim.SGD``,
  ``net.train()``/``net.eval()`` and an evaluation of both splits after every epoch);
- ten ``lessonlib.train.fit`` calls one after another.

A 100-epoch sweep takes minutes on 2 CPU cores, so both sides are timed with the same reduced
number of epochs (``EPOCHS``); every side does the same work per epoch, so the ratios carry over.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from common import figure, median, timings_ms

from lessonlib import data, models, train

SIZES, LR, BATCH = [40, 128, 128, 10], 0.1, 50
RATES = [round(0.1 * i, 1) for i in range(10)]
EPOCHS = 5  # reduced from the notebook's 100 for timing; the same for every side
TARGET_SWEEP = 8.0


def _setup():
    ds = data.mnist1d()
    model = models.mlp(SIZES, dropout=True)
    params, _ = model.init(jax.random.key(0))
    return ds, model, params


def lessonlib_sweep(ds, model, params, epochs=EPOCHS):
    run = train.sweep(
        model,
        params,
        ds,
        key=jax.random.key(1),
        hp={"lr": LR, "dropout": jnp.asarray(RATES, jnp.float32)},
        epochs=epochs,
        batch_size=BATCH,
    )
    return run.history


def lessonlib_fit(ds, model, params, p, epochs=EPOCHS):
    run = train.fit(
        model,
        params,
        ds,
        key=jax.random.key(1),
        hp={"lr": LR, "dropout": p},
        epochs=epochs,
        batch_size=BATCH,
    )
    return run.history


def torch_run(ds, params, p, *, epochs=EPOCHS, device="cpu", seed=0):
    """d2l's concise dropout MLP (section "Dropout"), evaluated on both splits every epoch."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    x_tr = torch.tensor(np.asarray(ds.x_train), device=device)
    y_tr = torch.tensor(np.asarray(ds.y_train), dtype=torch.long, device=device)
    x_te = torch.tensor(np.asarray(ds.x_test), device=device)
    y_te = torch.tensor(np.asarray(ds.y_test), dtype=torch.long, device=device)
    train_iter = DataLoader(TensorDataset(x_tr, y_tr), batch_size=BATCH, shuffle=True)
    net = nn.Sequential(
        nn.Linear(SIZES[0], SIZES[1]),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(SIZES[1], SIZES[2]),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(SIZES[2], SIZES[3]),
    ).to(device)
    with torch.no_grad():  # the same starting point as lessonlib's runs
        for layer, dense in zip(net[::3], params["dense"], strict=True):
            layer.weight.copy_(torch.tensor(np.asarray(dense["w"]).T))
            layer.bias.zero_()
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=LR)
    history = np.zeros((epochs, 4), np.float32)
    for epoch in range(epochs):
        net.train()
        for X, y in train_iter:
            trainer.zero_grad()
            loss(net(X), y).backward()
            trainer.step()
        net.eval()
        with torch.no_grad():
            for j, (x, y) in enumerate(((x_tr, y_tr), (x_te, y_te))):
                out = net(x)
                history[epoch, 2 * j] = loss(out, y).item()
                history[epoch, 2 * j + 1] = (out.argmax(1) == y).float().mean().item()
    return history


def bench(*, repeats: int = 3) -> dict:
    ds, model, params = _setup()
    figs, notes = [], []
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch = None
        notes.append("torch is not installed: the PyTorch column is skipped (`make bench`).")

    start = time.perf_counter()
    jax.block_until_ready(lessonlib_sweep(ds, model, params))
    compile_ms = (time.perf_counter() - start) * 1000
    sweep_ms = median(
        timings_ms(lambda: lessonlib_sweep(ds, model, params), repeats=repeats, warmup=0)
    )
    lessonlib_fit(ds, model, params, 0.5)  # compile once; p is traced, so no recompiles below
    one_by_one_ms = median(
        timings_ms(
            lambda: [lessonlib_fit(ds, model, params, p) for p in RATES], repeats=1, warmup=0
        )
    )
    torch_ms = None
    if torch is not None:
        torch_run(ds, params, 0.5, epochs=1, device=device)  # warm up torch's kernels
        torch_ms = median(
            timings_ms(
                lambda: [torch_run(ds, params, p, device=device) for p in RATES],
                repeats=1,
                warmup=0,
            )
        )

    what = f"{len(RATES)}-rate dropout sweep (MNIST-1D, MLP {'-'.join(map(str, SIZES))}, {EPOCHS} epochs)"
    if torch_ms is not None:
        ratio = torch_ms / sweep_ms
        figs.append(
            figure(
                "ch02.sweep.speedup_vs_torch",
                f"{what}: one vmapped call vs {len(RATES)} eager PyTorch runs",
                ratio,
                "x",
                target=f">= {TARGET_SWEEP:g}x",
                ok=ratio >= TARGET_SWEEP,
                kind="ratio",
                note=f"both sides timed with {EPOCHS} epochs (the notebook trains 100)",
            )
        )
    figs.append(
        figure(
            "ch02.sweep.speedup_vs_one_by_one",
            f"{what}: vmapped vs {len(RATES)} lessonlib fit calls one by one",
            one_by_one_ms / sweep_ms,
            "x",
            kind="ratio",
        )
    )
    figs += [
        figure("ch02.sweep.lessonlib_ms", "vmapped sweep (compiled)", sweep_ms, "ms"),
        figure(
            "ch02.sweep.compile_ms", "vmapped sweep, first call (compile + run)", compile_ms, "ms"
        ),
        figure("ch02.sweep.one_by_one_ms", "ten fit calls one by one", one_by_one_ms, "ms"),
        figure(
            "ch02.sweep.torch_ms",
            "ten eager PyTorch runs one by one (d2l style)",
            torch_ms,
            "ms",
            note="" if torch_ms is not None else "torch missing",
        ),
    ]
    notes.append(
        f"On a CPU one XLA execution keeps about one core busy, so train.sweep runs the ten values "
        f"as {train.sweep_workers(len(RATES))} chunks side by side (one per core); on a GPU it is "
        f"one execution. Device: {jax.devices()[0].platform}."
    )
    return {"figures": figs, "notes": notes}


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=1))
