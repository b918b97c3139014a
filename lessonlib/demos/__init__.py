"""Chapter demos: each chapter's panels, toy problems and constants, built on the core modules.

One module per chapter, ``chNN_topic.py``, named after the chapter's folder under ``notebooks/``:

- ``ch01_weight_decay``: the 2-D playground, choosing lambda on a validation split, the panels;
- ``ch02_dropout``: Monte Carlo dropout, the dropout-rate panels;
- ``ch03_batch_norm``: momentum conventions, ghost batch norm, the batch-size and lr panels;
- ``ch06_optimizers``: 2-D test surfaces, optimizer trajectories, the trajectory panels;
- ``ch07_schedules``: the schedule family and its panel.

Core modules (``data``, ``models``, ``layers``, ``regularization``, ``optim``, ``schedules``,
``train``, ...) never import from here; notebooks and the exercise specs may. With ``viz``, this
package is the only code that imports matplotlib or ipywidgets. The grader's sandbox carries it
(a learner's notebook imports it), unlike the exercise specs.

Importing this package turns on the course's compile cache (``cache.enable_compile_cache``): a
chapter run again, in a new kernel or by ``make test``'s second pass, loads its compiled programs
instead of compiling them again. ``LESSONLIB_COMPILE_CACHE=0`` turns it off.
"""

from lessonlib.cache import enable_compile_cache

enable_compile_cache()
