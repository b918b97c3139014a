# %% [markdown]
# # 00 · Welcome
#
# This course teaches how to train deep networks that *generalize*: regularization, dropout,
# batch normalization, initialization, optimizers, schedules and hyperparameter search. Each
# chapter is a notebook like this one, backed by `lessonlib`, a small JAX library you can read
# module by module. This chapter shows the tools: sliders, instant checks, the grader, CPU vs GPU,
# and how to start a notebook over.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from lessonlib import data, viz
from lessonlib.exercises import check

notebook_start = time.perf_counter()
print("JAX", jax.__version__)
print("devices:", jax.devices())

# %% [markdown]
# ## CPU or GPU
#
# The line above lists the devices JAX runs on: `CpuDevice` on a laptop, `CudaDevice` with an
# NVIDIA GPU. Every notebook runs on a 2-core CPU in under a minute; the same code runs
# unchanged on a GPU after installing the CUDA build of JAX into the course's environment:
#
# ```bash
# .venv/bin/pip install -e ".[cuda]"     # jax[cuda12]; then restart the kernel
# ```
#
# Whole training runs are compiled into one XLA computation, so the first run of a new setup
# pays a compile (about a second) and every later run with other *values* reuses it.

# %% [markdown]
# ## Sliders
#
# Panels pair a few controls with a figure. Sliders that retrain something fire when you
# *release* the handle (`continuous_update=False`); click a slider and use the arrow keys for
# single steps. The panel below draws $y = \sin(f x)\,e^{-d x}$; the title shows the current values
# and the line under the plot how long the update took in the kernel.

# %%
demo_fig, (demo_ax,) = viz.figure(1, width=5)
x_demo = np.linspace(0, 10, 400)
(demo_line,) = demo_ax.plot([], [], color=viz.COLORS["train"], animated=True)
demo_ax.set(xlim=(0, 10), ylim=(-1.1, 1.1), xlabel="x", ylabel="y")
demo_title = demo_ax.set_title("", animated=True)


def draw_demo(freq, damping):
    demo_line.set_data(x_demo, np.sin(freq * x_demo) * np.exp(-damping * x_demo))
    demo_title.set_text(f"frequency = {freq:.2f}, damping = {damping:.3g}")


panel_demo = viz.Panel(
    demo_fig,
    draw_demo,
    freq=viz.slider("frequency", value=2.0, min=0.5, max=6.0, step=0.25),
    damping=viz.log_slider("damping", value=0.1, min_exp=-3, max_exp=0),
)
panel_demo

# %% [markdown]
# Panels also have a programmatic side, which the course's tests and benchmarks use:
# `panel.update(name=value)` sets controls and redraws, and `panel.times_ms` holds the kernel-side
# time of every update.

# %%
for f in (1.0, 3.0, 5.0, 2.0):
    panel_demo.update(freq=f)
print(
    f"demo panel: median update {np.median(panel_demo.times_ms):.1f} ms over {len(panel_demo.times_ms)} updates"
)

# %% [markdown]
# ## Instant checks
#
# Exercises are cells marked *solution*: you replace `raise NotImplementedError()` with your code.
# The locked cell below each one calls `check("NN.name", your_function)`, which runs your function
# on a few inputs and compares it with a reference. It prints ✔ when all cases pass; otherwise it
# stops with a message naming the first failing case, often the likely mistake, and a hint.
# Hidden cases, which only the grader runs, test the same function on more inputs.
#
# Try it: write the squared loss of Dive into Deep Learning,
# $\ell(\hat y, y) = \frac{1}{n}\sum_i \frac12(\hat y_i - y_i)^2$. Run the check before and after
# solving to see both outcomes. An unsolved exercise shows its error but does not stop
# *Run All*: every demo below still runs.


# %% [solution] id=ex00-squared-loss
def squared_loss(y_hat, y):
    """Mean of (y_hat - y)**2 / 2 over the examples."""
    ### BEGIN SOLUTION
    return jnp.mean((y_hat - y) ** 2 / 2)
    ### END SOLUTION


# %% [tests] id=ch00-test-squared-loss points=1
check("00.squared_loss", squared_loss)
### BEGIN HIDDEN TESTS
check("00.squared_loss", squared_loss, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# Demos never use your answers: they call the library's own implementation. For example, the
# training engine's loss on d2l's regression data (chapter 01):

# %%
from lessonlib import train  # noqa: E402

X_demo, y_demo = data.synthetic_linear(20, 200, seed=0)
print("squared loss of predicting 0:", float(train.squared_loss(jnp.zeros_like(y_demo), y_demo)))
print("check by hand:", float(np.mean(np.asarray(y_demo, np.float64) ** 2 / 2)))
assert np.isclose(
    float(train.squared_loss(jnp.zeros_like(y_demo), y_demo)),
    np.mean(np.asarray(y_demo, np.float64) ** 2 / 2),
    rtol=1e-5,
)

# %% [markdown]
# ## Grading: `lessonlib grade`
#
# Save the notebook, then in a terminal in the course folder:
#
# ```bash
# .venv/bin/lessonlib grade 00          # or: lessonlib grade 01, or a path to a notebook
# .venv/bin/lessonlib grade 01 --json   # the same as JSON
# ```
#
# It grades *your workspace copy* and prints a table with one row per exercise — exercise,
# points, status (`pass`, `fail`, `error`, `timeout` or `tampered`), your best score so far and
# the hint for anything that did not pass. It runs your answer cells in a separate, resource-limited process on the visible and
# hidden cases, so the score does not depend on what else your notebook did; locked test cells
# that were edited or deleted are reported as tampered. The verdict for each case is the same as
# the instant check's.
#
# ## Your progress
#
# Every `lessonlib grade` is logged in your workspace (`workspace/.grades.sqlite`), and
# `lessonlib progress` (or `--json`) prints, for every chapter of the course: your best score
# (each exercise's best attempt, summed), how many times you graded it, the exercises you have not
# passed yet and the date of your last attempt. Here is the same table; press *Refresh* after
# grading a chapter. Chapters you have not graded yet show "–", with all their exercises open.

# %%
from lessonlib.demos import ch00_welcome  # noqa: E402

progress_table = ch00_welcome.progress_panel()
progress_table

# %% [markdown]
# ## Starting a notebook over
#
# `make lab` (or `make workspace`) creates your copies under `workspace/NN_topic/` from the
# course's notebooks and **never overwrites an existing file** — your work is safe when the
# course is updated. To reset one chapter, delete (or rename) your copy and recreate it:
#
# ```bash
# mv workspace/01_weight_decay/01_weight_decay.ipynb ~/01_my_old_attempt.ipynb
# make workspace                        # creates only the missing copy
# ```
#
# To reset just the *kernel* state (not your edits): *Kernel → Restart Kernel and Run All Cells*.
#
# ## The rhythm of a chapter
#
# 1. **Motivation** — a short paragraph: what goes wrong without the idea.
# 2. **Small code cell → plot → "What to notice"** — every number the text mentions is computed
#    and printed by the notebook, never typed in.
# 3. **Derivation** in LaTeX, each step followed by a numeric check (`assert` that both sides agree).
# 4. **Slider panels** to explore, retraining live.
# 5. **Exercises** with instant checks.
# 6. **Myth vs. fact** boxes correcting real mistakes from well-known tutorials, **Sharp bits**,
#    **References**, and a bilingual **Glossary / 术语表**.
#
# ## Where the lessons come from
#
# The chapters grew out of five documents in Chinese: a translated chapter of a book on deep
# learning with JAX, Xiao Han's blog post on regularization, study notes from 2024, notes on
# *Dive into Deep Learning* §4.5–4.6 and notes on Géron's chapter 11 of *Hands-On Machine
# Learning*. Each chapter says which of them it follows and corrects their mistakes in the
# **Myth vs. fact** boxes. [The course's sources](../sources.md) — `sources.md`, next to the
# chapter folders in your workspace — says what each document is, which chapters use it, and
# where each of its mistakes is corrected.
#
# ## Glossary / 术语表
#
# | English | 中文 | meaning |
# |---|---|---|
# | notebook | 笔记本 | a document of code, text and results, run cell by cell |
# | kernel | 内核 | the Python process that runs a notebook's cells |
# | slider / panel | 滑块 / 面板 | controls that redraw a figure when moved |
# | instant check | 即时检查 | `check(...)`: runs your function on test cases right away |
# | hidden tests | 隐藏测试 | cases only the grader runs |
# | grader | 评分器 | `lessonlib grade`: scores your saved notebook in a sandbox |
# | progress | 学习进度 | `lessonlib progress`: best score, attempts and open exercises per chapter |
# | workspace | 工作区 | your own copies of the notebooks, never overwritten |
# | compile (jit) | 编译（即时编译） | turning a JAX function into one XLA computation, once per shape |
# | device (CPU/GPU) | 设备 | the hardware JAX runs on |
# | squared loss | 平方损失 | $\frac12(\hat y - y)^2$, averaged over examples |

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s (after imports)")
