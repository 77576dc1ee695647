"""jaxo2o: offline-to-online RL whose whole run is one compiled, seed-vmapped XLA program."""

import os

__version__ = "0.1.0"

# XLA's CPU runtime (jaxlib 0.10.2) deadlocks on some of the MJX maze programs when its
# concurrency-optimized scheduler is on: every worker thread idles while the caller waits for
# the result forever (one step of 256 or more Gymnasium AntMaze states in one vmapped call, every
# time tried on a 2-core CPU; 200 finish in 30 s). With the scheduler off the same calls finish
# (`results/gr-maze/README.md`, "Fault 2"). Applied here, at import, because
# XLA reads XLA_FLAGS once, when the backend starts: import jaxo2o before the first JAX
# computation. A value the user gave for the flag is kept.
_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _SCHEDULER_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_SCHEDULER_FLAG}=false".strip()
