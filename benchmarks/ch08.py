"""Chapter 08 benchmark: 64 configurations of the chapter's search, as one population vs one by one.

The configurations are 64 random draws of the chapter's search space (learning rate log-uniform in
[0.001, 1], hidden width 8..64, L2 penalty log-uniform in [1e-6, 0.1]) for its MLP 64-64-10 on
digits (1,077 training and 360 validation images, SGD, batch 64), each evaluated on both splits
after every epoch. They run as

- one population: ``search.population`` (the 64 initial weights, drawn 16 rows a call), then
  ``search.train_to`` (every float hyperparameter traced): the members are grouped by width into
  buckets of up to 16, 32, 48 and 64 hidden units and each bucket is a vmapped run of
  ``MODEL.narrow(b)`` on the first ``b`` units' parameters (``lessonlib._buckets``; the same
  runs, the width still a mask inside a bucket), all buckets ONE compiled program that each core
  runs on half the rows of every bucket;
- 64 ``train.fit`` calls one after another with the same masked model (compiled once), each
  after its ``init`` call, as the chapter's loop writes it (row ``i`` starts from
  ``MODEL.init(fold_in(init_key, i))``, the population's row ``i``);
- 64 ``train.fit`` calls with a model built for each width (``models.mlp([64, w, 10])``): what a
  loop without the mask costs, a compilation for every new width included;
- 64 eager PyTorch runs, written the way Dive into Deep Learning writes its MLP (``nn.Sequential``,
  a shuffled ``DataLoader``, ``torch.optim.SGD``, the L2 penalty added to the loss, an evaluation
  of both splits after every epoch), starting from the same weights.

Every side trains the same number of epochs (``EPOCHS``, fewer than the chapter's 27 so that the
eager side stays short); every epoch is the same work, so the ratios carry over, except for the
initial weights, which every side draws once (the population ~5 ms, the 64 ``init`` calls one by
one ~20 ms, PyTorch its ``nn.Linear`` layers). The population and the fits are timed side by side
(``bench``), so that a slow spell of a shared machine slows both sides of their ratio.

Where the population's time goes (2 shared cores, 2026-12, CPU time of one population, which the
other programs on the machine change less than its wall time): the 64 widths fall into buckets of
16, 32, 48 and 64 units holding 20, 19, 11 and 14 members, so the hidden layer computes 57 % of the
units a full-width population computes (one wide ``x @ [W1_1 ... W1_K]`` product per bucket, since
the members share their batches). About 70 % of the ~140 ms CPU time (~75 ms wall) is the 80 SGD
steps, about 30 % the evaluation of both splits after every epoch (dropping it took the CPU time
from 157 to 109 ms, 39 ms of it the 1,077 training images); both are mostly the first layer's
products (the whole population averages ~45 GFLOP/s per core), so what is left is mostly
arithmetic. Two overheads are gone: every bucket shuffled every epoch itself (20 sorts of 1,077
indices per worker, ~3 % of the CPU time; the buckets now read one ``train.epoch_indices``), and
the two worker threads were started and joined on every call (~2 ms). Tried without a gain worth
its code (interleaved medians): hidden units in the "units x batch" layout, so that no product
needs a transpose (population -3 % CPU, but each ``fit`` +20 %: the model is shared); one forward
pass over both splits joined (-2 %, within the noise); log-softmax written with ``logsumexp``, a
one-hot select or in class-major layout (no change); buckets of 8, 12, 20 or 24 units (equal or
slower: fewer units, more per-step work); unrolled step loops (no change); each worker taking whole
buckets, the rows cut at equal units (-4 % CPU, the same wall time, two programs to compile). The
10-class second layer and its gradient (batched ``(K, b, 64) @ (K, 64, 10)``-like dots) and the
log-softmax reductions cost a member about as much as its first layer in the 32-unit bucket
(evaluating 1,437 images: 0.67 vs 0.79 ms for 10 members), the same per member in a fit. Batching
saves overhead, not arithmetic, and the buckets save arithmetic: the fits baseline computes all 64
units of every member, as a loop over ``fit`` with the masked model does.

Measured again (2026-12-01, training only, medians of 8 interleaved calls): a population's time
is linear in its members with no fixed part per bucket (64 members of width 16: 45 ms; 32: 24 ms;
128: 89 ms), about 0.36 ms per member plus 0.020 ms per member and hidden unit. The per-member
part is mostly the second layer's three batched ``(K, 64, b) x (K, b, 10)`` products (~2 µs a
member each, at any K from 5 to 20; a loop of K single products, one block-diagonal product
or a broadcast-and-sum are 1.5-4x slower); the per-unit part runs at ~66 GFLOP/s per core. Also
tried without a gain: XLA's ``xla_cpu_multi_thread_eigen=false``, its YNNPACK/XNNPACK fusion
options and ``xla_cpu_prefer_vector_width=512`` (equal, within the noise); 4 chunks on 4 threads
(+11 % wall); evaluating a split in blocks of rows (alone: -10 % with 2 blocks, 1.3-2x
slower with 4). The host's share (grouping, corners, write-back) is ~2 ms, the 64 initial weights
~5 ms (four 16-row blocks of random draws).
"""

from __future__ import annotations

import time

import jax
import numpy as np
from common import figure, median, timings_ms

from lessonlib import models, search, train
from lessonlib.demos import ch08_search as demo

K = 64
EPOCHS = 5
TARGET_FIT, TARGET_TORCH = 5.0, 20.0


def _setup():
    val_data, _ = demo.search_data()
    setup = demo.search_setup(val_data)
    hp = search.sample(demo.SPACE, key=jax.random.key(0), n=K)
    return setup, hp


def _timed(fn) -> tuple[float, float]:
    """Wall time and process CPU time (all threads) of one call of ``fn``, in ms."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def population(setup, hp):
    """The whole job: 64 initializations (``search.population``), then the training."""
    pop = search.train_to(setup, search.population(setup, hp, key=jax.random.key(1)), EPOCHS)
    return pop.history


_INIT = jax.jit(demo.MODEL.init)


def _keys():
    return jax.random.split(jax.random.key(1))  # init_key, train_key: as search.population


def _init_row(init_key, i: int):
    """Row ``i``'s initial weights, drawn as the population draws them."""
    return _INIT(jax.random.fold_in(init_key, i))[0]


def _inits():
    """The population's initial weights, row by row (for the PyTorch runs, which copy them)."""
    init_key, _ = _keys()
    return [_init_row(init_key, i) for i in range(K)]


def fit_calls(setup, hp):
    """The chapter's loop: row ``i`` initialized as the population's row ``i``, then one fit."""
    init_key, train_key = _keys()
    out = []
    for i in range(len(hp["lr"])):
        run = train.fit(
            demo.MODEL,
            _init_row(init_key, i),
            setup.data,
            key=train_key,
            hp={k: v[i] for k, v in hp.items()},
            epochs=EPOCHS,
            batch_size=demo.BATCH,
            penalty=demo.l2,
        )
        out.append(run.history["test_acc"])
    return out


def _narrow(params, w):
    d = params["dense"]
    return {
        "dense": [
            {"w": d[0]["w"][:, :w], "b": d[0]["b"][:w]},
            {"w": d[1]["w"][:w], "b": d[1]["b"]},
        ]
    }


def fit_per_width(setup, hp):
    """A new model per width, as a loop without the mask would build it (each width compiles);
    row ``i`` starts from the first ``w`` units of the population's row ``i``."""
    init_key, train_key = _keys()
    out, built = [], {}
    for i in range(K):
        w = int(hp["width"][i])
        model = built.setdefault(w, models.mlp([demo.SIZES[0], w, demo.SIZES[2]]))
        run = train.fit(
            model,
            _narrow(_init_row(init_key, i), w),
            setup.data,
            key=train_key,
            hp={"lr": hp["lr"][i], "lam": hp["lam"][i]},
            epochs=EPOCHS,
            batch_size=demo.BATCH,
            penalty=demo.l2,
        )
        out.append(run.history["test_acc"])
    return out


def torch_run(ds, params, lr, lam, *, epochs=EPOCHS, device="cpu", seed=0):
    """d2l's concise MLP with the L2 penalty in the loss, evaluated on both splits every epoch."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    x_tr = torch.tensor(np.asarray(ds.x_train), device=device)
    y_tr = torch.tensor(np.asarray(ds.y_train), dtype=torch.long, device=device)
    x_va = torch.tensor(np.asarray(ds.x_test), device=device)
    y_va = torch.tensor(np.asarray(ds.y_test), dtype=torch.long, device=device)
    train_iter = DataLoader(
        TensorDataset(x_tr, y_tr), batch_size=demo.BATCH, shuffle=True, drop_last=True
    )
    d = params["dense"]
    net = nn.Sequential(
        nn.Linear(*np.shape(d[0]["w"])), nn.ReLU(), nn.Linear(*np.shape(d[1]["w"]))
    ).to(device)
    with torch.no_grad():  # the same starting point as lessonlib's runs
        for layer, dense in zip(net[::2], d, strict=True):
            layer.weight.copy_(torch.tensor(np.asarray(dense["w"]).T))
            layer.bias.copy_(torch.tensor(np.asarray(dense["b"])))
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=float(lr))
    history = np.zeros((epochs, 4), np.float32)
    for epoch in range(epochs):
        net.train()
        for X, y in train_iter:
            trainer.zero_grad()
            penalty = float(lam) / 2 * sum((layer.weight**2).sum() for layer in net[::2])
            (loss(net(X), y) + penalty).backward()
            trainer.step()
        net.eval()
        with torch.no_grad():
            for j, (x, y) in enumerate(((x_tr, y_tr), (x_va, y_va))):
                out = net(x)
                history[epoch, 2 * j] = loss(out, y).item()
                history[epoch, 2 * j + 1] = (out.argmax(1) == y).float().mean().item()
    return history


def torch_runs(setup, hp, inits, device):
    return [
        torch_run(
            setup.data,
            _narrow(inits[i], int(hp["width"][i])),
            hp["lr"][i],
            hp["lam"][i],
            device=device,
        )
        for i in range(K)
    ]


def bench(*, repeats: int = 3) -> dict:
    setup, hp = _setup()
    inits = _inits()
    figs, notes = [], []
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch = None
        notes.append("torch is not installed: the PyTorch column is skipped (`make bench`).")

    start = time.perf_counter()
    jax.block_until_ready(population(setup, hp))
    compile_ms = (time.perf_counter() - start) * 1000
    fit_calls(setup, {k: v[:1] for k, v in hp.items()})  # compile once
    population(setup, hp)
    # Side by side: each repeat times the 64 fits once and the population three times, and the
    # ratio is the median of the repeats' ratios, so that a slower spell of a shared machine
    # slows both sides of a ratio rather than one. CPU time (every thread of this process) is the
    # work each side does; the wall ratio is it times the cores the population keeps busy.
    pairs = []
    for _ in range(max(repeats, 5)):
        fit_wall, fit_cpu = _timed(lambda: fit_calls(setup, hp))
        pop = sorted(_timed(lambda: population(setup, hp)) for _ in range(3))[1]
        pairs.append((fit_wall, fit_cpu, *pop))
    fit_ms, fit_cpu_ms, pop_ms, pop_cpu_ms = (median([p[j] for p in pairs]) for j in range(4))
    speedup = median([p[0] / p[2] for p in pairs])
    cpu_ratio = median([p[1] / p[3] for p in pairs])
    per_width_ms = median(timings_ms(lambda: fit_per_width(setup, hp), repeats=1, warmup=0))
    widths = len(np.unique(hp["width"]))
    groups = search.buckets(hp["width"])
    buckets = ", ".join(f"{len(rows)} x {b}" for b, rows in groups)
    share = sum(b * len(rows) for b, rows in groups) / (demo.SIZES[1] * K)
    torch_ms = torch_threads = None
    if torch is not None:
        torch_run(setup.data, inits[0], 0.1, 0.0, epochs=1, device=device)  # warm up the kernels
        # PyTorch at its default thread count and at one thread: tiny layers often run faster on
        # one (no OpenMP hand-offs), and on a busy machine much faster. The better one counts.
        default_threads, per_threads = torch.get_num_threads(), {}
        for threads in sorted({default_threads, 1}):
            torch.set_num_threads(threads)
            per_threads[threads] = median(
                timings_ms(lambda: torch_runs(setup, hp, inits, device), repeats=1, warmup=0)
            )
        torch.set_num_threads(default_threads)
        torch_threads = min(per_threads, key=per_threads.get)
        torch_ms = per_threads[torch_threads]
        notes.append(
            "eager PyTorch, 64 runs: "
            + ", ".join(f"{ms / 1000:.1f} s with {t} thread(s)" for t, ms in per_threads.items())
            + " (the ratio uses the faster)"
        )

    what = f"{K} configurations of the chapter's MLP (digits, {EPOCHS} epochs)"
    figs.append(
        figure(
            "ch08.population.speedup_vs_fit",
            f"{what}: one population vs {K} fit calls of the masked model (compiled once), "
            "each side from hyperparameters to histories (initial weights included)",
            speedup,
            "x",
            target=f">= {TARGET_FIT:g}x",
            ok=speedup >= TARGET_FIT,
            kind="ratio",
            note=f"the population computes {share:.0%} of the hidden units (width buckets "
            f"{buckets}), the fits all of them; on a CPU the population adds the cores",
        )
    )
    figs.append(
        figure(
            "ch08.population.cpu_ratio_vs_fit",
            f"{what}: CPU time of {K} fit calls / CPU time of one population (all threads)",
            cpu_ratio,
            "x",
            kind="ratio",
            note="the work saved by batching; the wall ratio adds the second core on top",
        )
    )
    figs.append(
        figure(
            "ch08.population.speedup_vs_fit_per_width",
            f"{what}: one population (compile included) vs {K} fit calls with a model per width",
            per_width_ms / (pop_ms + compile_ms),
            "x",
            kind="ratio",
            note=f"{widths} distinct widths, each a new compilation on the fit side",
        )
    )
    if torch_ms is not None:
        figs.append(
            figure(
                "ch08.population.speedup_vs_torch",
                f"{what}: one population vs {K} eager PyTorch runs (d2l style)",
                torch_ms / pop_ms,
                "x",
                target=f">= {TARGET_TORCH:g}x",
                ok=torch_ms / pop_ms >= TARGET_TORCH,
                kind="ratio",
                note=f"PyTorch at {torch_threads} thread(s), its faster setting here",
            )
        )
    figs += [
        figure("ch08.population.ms", f"population of {K} (compiled)", pop_ms, "ms"),
        figure(
            "ch08.population.compile_ms", "population, first call (compile + run)", compile_ms, "ms"
        ),
        figure("ch08.fit_calls.ms", f"{K} fit calls, masked model", fit_ms, "ms"),
        figure("ch08.fit_per_width.ms", f"{K} fit calls, a model per width", per_width_ms, "ms"),
        figure(
            "ch08.torch.ms",
            f"{K} eager PyTorch runs one by one",
            torch_ms,
            "ms",
            note="" if torch_ms is not None else "torch missing",
        ),
    ]
    notes.append(
        f"On a CPU train.sweep runs the population as {train.sweep_workers(K)} chunks side by side "
        f"(one per core); on a GPU it is one execution. Device: {jax.devices()[0].platform}."
    )
    return {"figures": figs, "notes": notes}


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=1))
