"""On a node shared with executors, the tracking writer runs ahead of them: the embedded Ray of `orchestrator run`
starts its workers at the driver's niceness, executors lower their own priority to Ray's usual worker niceness, and
every thread of the writer keeps the driver's (execution/priority.py).

Run in a subprocess with its own embedded Ray (the pytest process keeps the session's Ray, started without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.execution.priority import RAY_WORKER_NICENESS

SCRIPT = r"""
import json, os, sys
import ray
from orchestrator.execution import pool
from orchestrator.execution.cluster import connect
from orchestrator.records import Resources

def threads(self):
    return [os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")]

connect({"num_gpus": 2, "num_cpus": 2})
executor = pool.spawn(Resources(gpus=1)).actor
writer = pool.WARM.writer(sys.argv[1])
ray.get(writer.open_launch.remote("priority", "launch", {}, {}, {}, 0))  # starts its thread of writes
print(json.dumps({"driver": os.getpriority(os.PRIO_PROCESS, 0),
                  "executor": ray.get(executor.__ray_call__.remote(threads)),
                  "writer": ray.get(writer.__ray_call__.remote(threads)),
                  "writer_stats": ray.get(writer.stats.remote())["niceness"]}))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread niceness is read from Linux's /proc")
def test_the_writer_runs_ahead_of_the_executors_on_the_embedded_ray(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'mlflow.db'}"], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, env={**os.environ, "RAY_ADDRESS": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(seen["executor"]) == {max(seen["driver"], RAY_WORKER_NICENESS)}, seen
    assert set(seen["writer"]) == {seen["driver"]} and seen["writer_stats"] == seen["driver"], seen
    assert seen["writer"][0] < seen["executor"][0]


RENICE = r"""
import json, os, threading
from orchestrator.execution.priority import niceness, renice
go, seen = threading.Event(), {}
def waiting():
    go.wait(10)
    seen["thread started before"] = niceness()
thread = threading.Thread(target=waiting)
thread.start()
before = niceness()
seen["renice"] = renice(min(before + 3, 19))
go.set()
thread.join()
seen["main"] = niceness()
print(json.dumps({"before": before, **seen}))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread niceness is read from Linux's /proc")
def test_renice_reaches_every_thread_and_raising_a_niceness_needs_no_permission():
    out = subprocess.run([sys.executable, "-c", RENICE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)
    expected = min(seen["before"] + 3, 19)
    assert seen == {"before": seen["before"], "renice": expected, "thread started before": expected, "main": expected}
