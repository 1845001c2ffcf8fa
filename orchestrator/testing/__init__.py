"""Stand-ins for what a machine may lack, for tests and benchmarks: NVML (`orchestrator.testing.fake_nvml`) and a large
cluster (`orchestrator.testing.simulated`: stand-in executors on a virtual clock, for the scheduler alone).

NVML has two ways in, both at the `pynvml` seam (`orchestrator.energy._nvml.pynvml`):

* In one process: `FakeNVML([FakeBoard(...)])`, set with `monkeypatch.setattr(_nvml, "pynvml", fake)`; readings are
  attributes or callables of a test's clock.
* Across processes (Ray executors, a CLI run in a subprocess): `SharedFakeNVML.create(path, [FakeBoard(...)])` writes
  the boards to a JSON file; every process started with `ORCHESTRATOR_FAKE_NVML=<path>` in its environment reads and
  changes the same boards (power limits set by one executor are seen by the next, energy counters run on wall time).

Nothing here is imported by the package outside tests and benchmarks, except `_nvml` when that variable is set.
"""
