"""The plumbing below m2nist, tinyfcn and fullfcn: one error path, one device rule, safe outputs.

Nothing here knows about digits, FCNs or VOC, and nothing here imports torch at import time,
so every package (and ``m2nist-gen``, which must start fast) may import it without cycles:

* :mod:`fcnbase.cli` -- the one command-line error path: usage errors exit 2, runtime
  errors 1, interrupts 130, always as one line ``prog: error: ...`` on stderr;
* :mod:`fcnbase.device` -- which torch device a run uses, and how many CPU threads;
* :mod:`fcnbase.outputs` -- outputs that never destroy what a run did not create: exclusive
  unique temporary files renamed when complete, a lock per output directory, and the
  checks (exists, is an input, writable) made before any work starts.
"""

#: The distribution's version (pyproject.toml reads it from here), recorded in every run's
#: metadata.
__version__ = "0.1.0"

from fcnbase.cli import (
    CliError,
    Parser,
    UsageError,
    deferred_interrupts,
    float_arg,
    int_arg,
    run_cli,
)
from fcnbase.device import available_cores, pick_device, torch_threads
from fcnbase.outputs import (
    PARTIAL,
    OutputBusyError,
    OutputExistsError,
    atomic_write,
    check_outputs,
    check_writable,
    create_temp,
    is_partial,
    lock_dir,
    remove_leftovers,
)

__all__ = [
    "PARTIAL",
    "CliError",
    "OutputBusyError",
    "OutputExistsError",
    "Parser",
    "UsageError",
    "atomic_write",
    "available_cores",
    "check_outputs",
    "check_writable",
    "create_temp",
    "deferred_interrupts",
    "float_arg",
    "int_arg",
    "is_partial",
    "lock_dir",
    "pick_device",
    "remove_leftovers",
    "run_cli",
    "torch_threads",
]
