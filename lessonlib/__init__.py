"""lessonlib: a small JAX library behind the notebooks of the course on training deep networks.

Core modules, one concept each; every public function is pure (state in, state out) and takes
PRNG keys explicitly as keyword arguments. Chapter-specific code (panels, toy problems, constants)
lives in ``lessonlib.demos``.
"""

__version__ = "0.1.0"
