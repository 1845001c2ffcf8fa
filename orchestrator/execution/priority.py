"""CPU priority of a launch's processes: the tracking writer ahead of the executors on a node they share.

Ray starts its workers at niceness 15 (its `worker_niceness`) so that busy workers do not starve the driver. The
tracking writer is a Ray worker too: on a node that also runs executors (one machine, as with `orchestrator run`) it
got the same share of the CPU as each of them. Measured here (2 cores, 8 executors, zero-length runs ending five
times faster than SQLite takes them), the writer got 0.38 of a core while runs were ending and wrote almost nothing
until they stopped. So:

- the embedded Ray starts its workers at the driver's niceness (`worker_niceness`, `cluster.py`),
- executors then lower their own priority to Ray's usual 15 (raising one's niceness needs no permission),
- the writer takes the driver's niceness. Joining a cluster that `ray start` runs, its workers start at 15, and a
  process may lower its niceness only with the permission to (root, CAP_SYS_NICE); without it the writer stays at
  the executors' priority, as before.
"""

from __future__ import annotations

import os

# Ray's default niceness for its worker processes (`RAY_worker_niceness`).
RAY_WORKER_NICENESS = 15


def niceness() -> int:
    """This thread's niceness (on Linux each thread has its own; threads inherit it from the one that starts them);
    0 where the platform has none (Windows)."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def renice(value: int) -> int:
    """Give every thread of this process the niceness `value`, where allowed (lowering it takes a permission most
    users lack; threads it is refused for keep theirs). Returns this thread's niceness after."""
    if not hasattr(os, "setpriority"):
        return niceness()
    threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, value)
        except OSError:  # not permitted, or the thread ended meanwhile
            pass
    return niceness()


def as_executor() -> int:
    """An executor's priority: at least Ray's usual worker niceness, below the driver's and the writer's."""
    return renice(max(niceness(), RAY_WORKER_NICENESS))
