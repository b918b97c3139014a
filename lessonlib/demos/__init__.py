"""Chapter demos: each chapter's panels, toy problems and constants, built on the core modules.

One module per chapter, ``chNN_topic.py``. Core modules (``data``, ``models``, ``layers``,
``regularization``, ``optim``, ``schedules``, ``train``, ...) never import from here; notebooks and
the exercise specs may. With ``viz``, this package is the only code that imports matplotlib or
ipywidgets.
"""
