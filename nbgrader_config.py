"""nbgrader configuration: the chapters under notebooks/ are nbgrader's assignments.

nbgrader's layout is <source>/<assignment>/<notebook>.ipynb; here the source folder is
``notebooks/`` and each chapter folder ``notebooks/NN_topic/`` is an assignment, so
``nbgrader generate_assignment 01_weight_decay`` releases chapter 01 into ``release/``. The other
folders match ``lessonlib`` (see lessonlib/grading/course.py). nbgrader runs the ``alembic`` command
through PATH: call it with the virtual environment's bin/ first on PATH.
"""

import os

c = get_config()  # noqa: F821  (provided by nbgrader's config loader)

root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = root
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "course/submitted"
c.CourseDirectory.autograded_directory = "course/autograded"
c.CourseDirectory.feedback_directory = "course/feedback"
os.makedirs(os.path.join(root, "course"), mode=0o700, exist_ok=True)  # the gradebook's folder
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(root, "course", "gradebook.db")
# The percent-format chapter sources (*.py) hold the solutions: never release them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]
# nbgrader's own autograder (unhardened) runs whole notebooks: allow for JAX compilation.
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
