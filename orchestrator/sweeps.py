"""`load_sweep`: a sweep's runs read back from MLflow as DataFrames, with the analysis verbs on them.

    sweep = load_sweep("lm-scaling")                      # sqlite:///mlflow.db in the working directory
    sweep.runs                                            # one row per run_key: its newest FINISHED run
    sweep.tags                                            # every child run's tags (cause, error, ...), as all_runs
    sweep.fit(form="chinchilla", bootstrap=1000)          # fit_scaling_law(sweep.runs, ...)
    sweep.fit_optimal_hparams("lr", profile=["batch_size"])  # lr* = c · N^a · D^b, per-cell optima
    sweep.frontier({"cost_usd": "min", "val_loss": "min"})
    sweep.power_frontier(cost={"eta": 0.5, "max_power_w": 700})   # per config: energy-time front, best power limit

A `Sweep` is a snapshot taken when `load_sweep` is called; call it again to see newer runs. Reading writes
nothing: a local store that does not exist is an error, not a new empty store. Column rules: tracking/frames.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from orchestrator.errors import ConfigError, OrchestratorError, SweepNotFoundError, TrackingError
from orchestrator.tracking import DEFAULT_TRACKING_URI
from orchestrator.tracking.index import NOTE
from orchestrator.tracking.frames import TrackedRun, newest_finished, parents_frame, runs_frame, tracked_run

if TYPE_CHECKING:
    import pandas as pd

    from orchestrator.analysis.hparams import OptimalHparamFit
    from orchestrator.analysis.isoflop import IsoFlopFit
    from orchestrator.analysis.power import PowerFrontier
    from orchestrator.analysis.scaling import ScalingFit
    from orchestrator.tracking.store import MlflowStore

__all__ = ["DEFAULT_TRACKING_URI", "Sweep", "load_sweep"]

# Where `orchestrator run` tracks by default (conf/tracking/local.yaml): a SQLite file in the working directory.
T = TypeVar("T")


@dataclass(frozen=True, eq=False, repr=False)
class Sweep:
    """One sweep's runs, as read when `load_sweep` was called."""

    # The sweep's name: its MLflow experiment.
    name: str
    tracking_uri: str
    experiment_id: str
    # Every child run of every launch, and the launches (parent runs), as read.
    _children: tuple[TrackedRun, ...] = field(default=())
    _parents: tuple[TrackedRun, ...] = field(default=())
    # Each child run's tags by run id (cause, error, traceback, energy_source, ...), as read.
    _tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run_key that finished: its newest FINISHED run; params and final metrics as columns."""
        return self._runs.copy()

    @property
    def all_runs(self) -> pd.DataFrame:
        """Every child run of every launch, whatever its status; `parent_run_id` says which launch."""
        return self._all_runs.copy()

    @property
    def parents(self) -> pd.DataFrame:
        """The launches, oldest first: parent_run_id, run_name, status, start and end time, and their totals."""
        return self._parents_frame.copy()

    @property
    def tags(self) -> pd.DataFrame:
        """Every child run's tags, in `all_runs`' rows: run_id, then one text column per tag key (missing where a run
        lacks it): why a run failed (cause, error, traceback), attempt, energy_source, energy_unavailable_reason, ..."""
        import pandas as pd

        ids = list(self._all_runs["run_id"])
        table = pd.DataFrame([dict(self._tags.get(i, {})) for i in ids], index=range(len(ids)), dtype=object)
        return pd.concat([pd.DataFrame({"run_id": ids}, dtype=object), table[sorted(table.columns)]], axis=1)

    def fit(self, form: str = "chinchilla", **options: Any) -> ScalingFit:
        """`fit_scaling_law(self.runs, form, **options)`."""
        from orchestrator.analysis.scaling import fit_scaling_law

        return fit_scaling_law(self.runs, form, **options)

    def fit_isoflop(self, **options: Any) -> IsoFlopFit:
        """`fit_isoflop(self.runs, **options)`."""
        from orchestrator.analysis.isoflop import fit_isoflop

        return fit_isoflop(self.runs, **options)

    def fit_optimal_hparams(self, hparam: str = "lr", **options: Any) -> OptimalHparamFit:
        """`fit_optimal_hparams(self.runs, hparam, **options)`: the optimal `hparam` per (N, D) cell as a power
        law, e.g. over=["n_params", "tokens"], profile=["batch_size"]."""
        from orchestrator.analysis.hparams import fit_optimal_hparams

        return fit_optimal_hparams(self.runs, hparam, **options)

    def frontier(self, objectives: Mapping[str, str]) -> pd.DataFrame:
        """`pareto_front(self.runs, objectives)`: the non-dominated finished runs, e.g. {"cost_usd": "min"}."""
        from orchestrator.analysis.pareto import pareto_front

        return pareto_front(self.runs, objectives)

    def power_frontier(self, **options: Any) -> PowerFrontier:
        """`power_frontier(self.runs, **options)`: per configuration, the energy-time front over power limits and
        the limit of least cost, e.g. cost={"eta": 0.5, "max_power_w": 700} or a ZeusCost / UsdCost."""
        from orchestrator.analysis.power import power_frontier

        return power_frontier(self.runs, **options)

    def __repr__(self) -> str:
        return (f"Sweep({self.name!r}, {len(self._runs)} finished run keys, {len(self._children)} child runs over "
                f"{len(self._parents)} launches, tracking_uri={self.tracking_uri!r})")

    @cached_property
    def _runs(self) -> pd.DataFrame:
        return runs_frame(newest_finished(self._children))

    @cached_property
    def _all_runs(self) -> pd.DataFrame:
        return runs_frame(self._children)

    @cached_property
    def _parents_frame(self) -> pd.DataFrame:
        return parents_frame(self._parents)


def load_sweep(name: str, tracking_uri: str | None = None) -> Sweep:
    """Read sweep `name` from the MLflow store at `tracking_uri` (None: sqlite:///mlflow.db in the working directory).

    Raises SweepNotFoundError (a ConfigError) listing the sweeps there when there is none of that name,
    ConfigError("tracking_uri", ...) when the store does not exist or the URI is unusable, and TrackingError
    when the store cannot be read.
    """
    uri = tracking_uri or DEFAULT_TRACKING_URI
    require_existing_store(uri)
    store = _open_store(uri, name)
    experiment_id = _reading(uri, name, lambda: _experiment_id(store, uri, name))
    children = _reading(uri, name, store.child_runs)
    parents = _reading(uri, name, store.parent_runs)
    # The markdown notes are descriptions for the MLflow UI, not data (and not in the sweep index).
    tags = {run.info.run_id: {k: v for k, v in run.data.tags.items() if k != NOTE} for run in children}
    return Sweep(name, uri, experiment_id, tuple(map(tracked_run, children)), tuple(map(tracked_run, parents)), tags)


def reread_launches(sweep: Sweep) -> Sweep:
    """`sweep` with its launches (parent runs) read again and its runs as they were: for what was logged on a
    launch's parent after its runs were read (the end of a launch: its analysis's metrics). Raises TrackingError."""
    from dataclasses import replace

    store = _open_store(sweep.tracking_uri, sweep.name)
    parents = _reading(sweep.tracking_uri, sweep.name, store.parent_runs)
    return replace(sweep, _parents=tuple(map(tracked_run, parents)))


def require_existing_store(uri: str) -> None:
    """A local store (SQLite file, file store folder) must exist: MLflow would create an empty one on first touch."""
    path = _local_path(uri)
    if path is not None and not path.exists():
        raise ConfigError("tracking_uri", f"no MLflow store at {path.resolve()} ({uri}); nothing was created. "
                                          "Run the sweep from that folder first, or pass the store's URI")


def _local_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:"):
        rest = uri.removeprefix("sqlite:///").split("?")[0]
        return Path(rest) if uri.startswith("sqlite:///") and rest and rest != ":memory:" else None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    return Path(uri) if parsed.scheme == "" else None


def _open_store(uri: str, name: str) -> MlflowStore:
    from orchestrator.tracking.store import MlflowStore

    try:
        return MlflowStore(uri, name)
    except Exception as exc:  # noqa: BLE001 - MLflow's error for a URI it cannot use, translated here
        raise ConfigError("tracking_uri", f"cannot open MLflow store {uri}: {str(exc).strip()}") from exc


def _reading(uri: str, name: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except OrchestratorError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow's errors, translated at the boundary
        raise TrackingError(f"could not read sweep {name!r} from {uri}: {str(exc).strip()}") from exc


def _experiment_id(store: MlflowStore, uri: str, name: str) -> str:
    stage = store.experiment_stage()
    if stage == "active":
        return str(store.experiment_id())
    detail = " (it was deleted; restore it in MLflow to read it)" if stage is not None else ""
    raise SweepNotFoundError(name, uri, store.experiment_names(), detail)
