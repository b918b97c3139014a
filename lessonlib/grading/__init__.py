"""The built-in grader: instant checks' big brother, hardened against the learner's code.

- :mod:`~lessonlib.grading.course`: the nbgrader-compatible course layout (chapters = assignments).
- :mod:`~lessonlib.grading.grader`: tamper check, cells to run, trusted verdicts for one notebook.
- :mod:`~lessonlib.grading.sandbox`: the isolated, resource-limited process that runs learner code.
- :mod:`~lessonlib.grading.worker`: the code that runs inside the sandbox (plain-data protocol).
- :mod:`~lessonlib.grading.gradebook`: nbgrader's gradebook (SQLite/PostgreSQL), attempt log, CSV.
- :mod:`~lessonlib.grading.batch`: class autograding in parallel, feedback pages.
- :mod:`~lessonlib.grading.authoring`: the rules every source notebook's test cells follow.
- :mod:`~lessonlib.grading.cli`: the ``lessonlib`` command.
"""
