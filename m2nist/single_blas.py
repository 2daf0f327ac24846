"""Imported first by ``m2nist-gen``: numpy's OpenBLAS gets one thread.

The generator does no linear algebra, yet numpy's OpenBLAS starts a thread per core
when numpy is imported, and those threads spin while they wait: on a 2-core machine
they took 7 % of the CPU of a course-size run (measured with ``perf``), competing with
the threads that compose and write. Setting ``OPENBLAS_NUM_THREADS`` must happen before
numpy's first import, hence a module of its own that the command imports before any
other of the package; an explicit setting in the environment is left alone. Importing
:mod:`m2nist` as a library does not import this: a program's BLAS is its own business.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
