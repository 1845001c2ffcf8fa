"""Turn the composed Hydra config into a `SweepPlan`: every run fully resolved, keyed, named, validated.

Nothing here talks to Ray or MLflow, so every config error surfaces before anything starts or is written.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, OmegaConf

from orchestrator.errors import ConfigError
from orchestrator.masking import MASK, is_secret
from orchestrator.records import RunSpec
from orchestrator.sweep import kinds
from orchestrator.sweep.adaptive.spec import ADAPTIVE_KEYS, AdaptiveSpec, parse_adaptive
from orchestrator.sweep.early_stop import EarlyStopSpec, parse_early_stop
from orchestrator.sweep.keys import run_key
from orchestrator.sweep.planner import Planner, StaticPlanner
from orchestrator.sweep.resources import parse_resources
from orchestrator.sweep.values import coerce, expand_values

# Keys every sweep section may hold (early stopping applies to any kind); each kind adds its own (`KINDS`).
# Keys of a job config that say how to read its results: its primary metric and whether lower or higher is better.
PRIMARY_KEYS = ("_metric_", "_mode_")
COMMON_KEYS = {"name", "kind", "params", "seeds", "repeats", "seed_path", "analysis", "early_stop",
               "power_limit_required"}
# Config roots a sweep may vary, and the annotation prefix that is logged but never applied to the config.
RESOURCES_ROOT = "resources."
SETTABLE_ROOTS = ("job.", RESOURCES_ROOT)
ANNOTATION_ROOT = "sweep."


@dataclass(frozen=True)
class SweepPlan:
    """Everything a launch will run, before any cluster or tracking store is touched.

    A static design lists its `runs` in full; an adaptive one has none up front: its `planner` proposes them as
    results come in, and its `expander` turns each proposal into a run."""

    name: str
    kind: str
    runs: tuple[RunSpec, ...]
    dropped: tuple[kinds.Dropped, ...]
    varied: tuple[str, ...]
    # The sweep's `analysis:` section (validated), run on the sweep's runs at the end of each launch.
    analysis: Mapping[str, Any] | None = None
    # kind adaptive: the checked section (its in_flight settled against the executor slots by `planner`).
    adaptive: AdaptiveSpec | None = None
    expander: Expander | None = None
    # The sweep's `early_stop:` section, any kind.
    early_stop: EarlyStopSpec | None = None
    # Where GPU power limits cannot be set: False runs on at the default limit (tagged), True refuses the sweep.
    power_limit_required: bool = True
    # The job's primary metric and whether lower or higher is better (its config's `_metric_` and `_mode_`): the
    # default analysis and the saved view read it. None when the job does not say.
    primary: tuple[str, str] | None = None
    # The raw sweep section (kind adaptive re-reads in_flight once the executor slots are known).
    section: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def closed_loop(self) -> bool:
        return self.adaptive is not None

    def planner(self, runs: list[RunSpec], slots: int) -> Planner:
        """The planner of this launch: the static design's `runs` still to do, or an adaptive planner whose runs in
        flight default to the executor `slots`."""
        if self.adaptive is None:
            return StaticPlanner(runs)
        from orchestrator.sweep.adaptive.planner import AdaptivePlanner

        return AdaptivePlanner(parse_adaptive(self.section or {}, slots))

    def expand(self, point: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> RunSpec:
        """A proposed point as a fully resolved run (kind adaptive)."""
        assert self.expander is not None, "only closed-loop plans expand proposals"
        return self.expander.spec(point, tags)


class Expander:
    """Turns points into runs: the root config with the point's values set (typed as the config's fields), resolved,
    keyed, named by the values that vary across the sweep.

    The run_key hashes the job config; when a sweep varies resources (gpus, cpus, ...), which change what a run
    costs, the swept resource values join it, so such runs stay apart. Sweeps that do not vary resources keep the
    keys of plain job configs."""

    def __init__(self, root: DictConfig, varied: list[str]) -> None:
        self.base = OmegaConf.to_container(root, resolve=False)
        for key in PRIMARY_KEYS:  # how to read the job's results, not what it computes: not in its config or key
            (self.base.get("job") or {}).pop(key, None)
        # Resolving interpolations through OmegaConf costs ~1 ms a run: only pay it when the config has any.
        self.interpolated = "${" in json.dumps(self.base, default=str)
        self.varied = list(varied)
        self.short = _short_names(self.varied)
        self.resource_paths = sorted(p for p in self.varied if p.startswith(RESOURCES_ROOT))

    def spec(self, point: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> RunSpec:
        config = _apply_plain(self.base, point)
        if self.interpolated:
            config = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
        job = config["job"]
        identity = job if not self.resource_paths else {
            "job": job, "resources": {p: _get(config, p) for p in self.resource_paths}}
        values = {p: point[p] if p.startswith(ANNOTATION_ROOT) else _get(config, p) for p in self.varied}
        return RunSpec(run_key(identity), job, parse_resources(config.get("resources") or {}),
                       _run_name(values, self.short), values, tags=dict(tags or {}))


def load_target(field: str, target: Any) -> Callable[..., Any]:
    """Import `pkg.module.fn` named by a `_target_`, or raise a ConfigError naming the field, where it looked and what
    to do."""
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(field, f"expected a dotted path such as my_train.train or orchestrator.jobs.lm.train, "
                                 f"got {target!r}")
    module_name, _, attr = target.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except ModuleNotFoundError as exc:
        raise ConfigError(field, _not_found(target, module_name, exc)) from exc
    except ImportError as exc:
        raise ConfigError(field, f"cannot import {target!r}: {exc}") from exc
    except AttributeError as exc:
        raise ConfigError(field, f"cannot import {target!r}: module {module_name!r} has no {attr!r}") from exc
    if not callable(fn):
        raise ConfigError(field, f"{target!r} is not callable")
    return fn


def _not_found(target: str, module_name: str, exc: ModuleNotFoundError) -> str:
    missing = exc.name or module_name
    if not module_name.startswith(missing):
        return f"cannot import {target!r}: it needs {missing!r}, which is not installed ({exc})"
    if "." in missing:
        return f"cannot import {target!r}: there is no module {missing!r}"
    return (f"cannot import {target!r}: no module {missing!r} in the directory you run from "
            f"({os.getcwd()}) or among the installed packages. Run from your project's directory (the one holding "
            f"{module_name.split('.')[0]}.py or its package), or install it (pip install -e .)")


def sweep_name(cfg: DictConfig) -> str:
    """Experiment name: `name` if set, else the sweep's name, else the job's target."""
    sweep = cfg.get("sweep")
    name = cfg.get("name") or (sweep.get("name") if sweep is not None else None) or cfg.job.get("_target_")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("sweep.name", "every sweep needs a name (it names the MLflow experiment)")
    return name.strip()


def _check_path(path: str) -> None:
    if path.startswith(ANNOTATION_ROOT):
        return
    if not path.startswith(SETTABLE_ROOTS):
        raise ConfigError(f"sweep.params.{path}", f"sweeps may vary paths under {', '.join(SETTABLE_ROOTS)}; got {path!r}")


def _seeds(sweep: Mapping[str, Any], root: DictConfig) -> list[Any] | None:
    seeds, repeats = sweep.get("seeds"), sweep.get("repeats")
    if seeds is not None and repeats is not None:
        raise ConfigError("sweep.seeds", "give either seeds or repeats, not both")
    if repeats is not None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ConfigError("sweep.repeats", f"expected a whole number >= 1, got {repeats!r}")
        base = OmegaConf.select(root, sweep.get("seed_path", "job.seed"), default=0) or 0
        return [int(base) + i for i in range(repeats)]
    return None if seeds is None else expand_values("sweep.seeds", seeds)


def _with_seeds(points: list[kinds.Point], sweep: Mapping[str, Any], root: DictConfig) -> list[kinds.Point]:
    seeds = _seeds(sweep, root)
    if seeds is None:
        return points
    seed_path = sweep.get("seed_path", "job.seed")
    return [{**p, seed_path: s} for p in points for s in seeds]


def _get(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set(config: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


def _copy_plain(value: Any) -> Any:
    """A deep copy of plain config data (dicts, lists, scalars), faster than `copy.deepcopy` on it."""
    kind = type(value)
    if kind is dict:
        return {k: _copy_plain(v) for k, v in value.items()}
    if kind is list:
        return [_copy_plain(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def _apply_plain(base: dict[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """The root config (plain, unresolved) with a point's values set, each coerced to its field's type. Only the
    sections a run takes (job, resources) and the ones the point sets are copied; the rest (cluster, tracking, the
    sweep's own section) is shared with `base`, read-only: a deep copy of the whole config was most of planning's
    cost (~0.3 ms a run)."""
    own = {"job", "resources"} | {p.split(".", 1)[0] for p in point if not p.startswith(ANNOTATION_ROOT)}
    config = {key: _copy_plain(value) if key in own else value for key, value in base.items()}
    for path, value in point.items():
        if not path.startswith(ANNOTATION_ROOT):
            _set(config, path, coerce(f"sweep.params.{path}", value, _get(base, path)))
    return config


def _apply(root: DictConfig, point: Mapping[str, Any]) -> DictConfig:
    return OmegaConf.create(_apply_plain(OmegaConf.to_container(root, resolve=False), point))


def _n_params_of(sweep: Mapping[str, Any], root: DictConfig) -> Callable[[kinds.Point], float]:
    """How an isoflop sweep learns N for a model: read a config path, or call `n_params_fn(job_cfg)`."""
    if sweep.get("n_params_fn"):
        fn = load_target("sweep.n_params_fn", sweep["n_params_fn"])
        return lambda point: float(fn(_apply(root, point).job))
    path = sweep.get("n_params_path", "job.n_params")

    def read(point: kinds.Point) -> float:
        value = point.get(path, OmegaConf.select(root, path, default=None))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError("sweep.n_params_path", f"{path} must hold a positive model size N, got {value!r}")
        return float(value)

    return read


def _isoflop(sweep: Mapping[str, Any], root: DictConfig) -> kinds.Points:
    return kinds.isoflop(sweep, root, _n_params_of(sweep, root))


@dataclass(frozen=True)
class Kind:
    """A sweep kind: the keys its section may hold beyond the common ones, and its design: every point at once for a
    static kind (`points`), or none for a closed-loop kind, whose planner proposes points as runs end."""

    keys: frozenset[str]
    points: Callable[[Mapping[str, Any], DictConfig], kinds.Points] | None


KINDS: dict[str, Kind] = {
    "grid": Kind(frozenset(), kinds.grid),
    "zip": Kind(frozenset(), kinds.zip_),
    "random": Kind(frozenset({"n", "seed"}), kinds.random),
    "isoflop": Kind(frozenset({"budgets", "models", "n_params_fn", "n_params_path", "tokens_path", "bounds"}),
                    _isoflop),
    "single": Kind(frozenset(), lambda sweep, root: kinds.Points([{}], [])),
    "adaptive": Kind(frozenset(ADAPTIVE_KEYS), None),
}
# What `kind` accepts in error messages ("single" is what a config without params becomes).
USER_KINDS = ("grid", "zip", "random", "isoflop", "adaptive")


def _short_names(paths: list[str]) -> dict[str, str]:
    leaf = {p: p.rsplit(".", 1)[-1] for p in paths}
    clash = {n for n in leaf.values() if list(leaf.values()).count(n) > 1}
    return {p: (p if leaf[p] in clash else leaf[p]) for p in paths}


def _fmt(value: Any) -> str:
    """Compact value for run names: 1e+09 -> 1e9, 0.00030000 -> 0.0003, small ints as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, int) and abs(value) < 10**5):
        return str(value)
    return f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def _run_name(varied: Mapping[str, Any], short: Mapping[str, str]) -> str:
    return " ".join(f"{short[p]}={MASK if is_secret(p) else _fmt(v)}" for p, v in varied.items()) or "run"


def _varied_paths(points: list[kinds.Point]) -> list[str]:
    paths = list(dict.fromkeys(p for point in points for p in point))
    return [p for p in paths if len({repr(point.get(p)) for point in points}) > 1]


def plan_sweep(cfg: DictConfig) -> SweepPlan:
    """Validate and expand the composed config into runs; raises ConfigError before anything runs."""
    load_target("job._target_", cfg.job.get("_target_"))
    name = sweep_name(cfg)
    sweep = OmegaConf.to_container(cfg.sweep, resolve=True) if cfg.get("sweep") is not None else {"kind": "single"}
    if not isinstance(sweep, dict):
        raise ConfigError("sweep", f"expected a mapping, got {type(sweep).__name__}")
    sweep.setdefault("kind", "grid" if sweep.get("params") else "single")
    _check_keys(sweep)
    if sweep.get("analysis") is not None:
        from orchestrator.analysis.spec import validate_analysis_spec

        validate_analysis_spec(sweep["analysis"])
    early_stop = parse_early_stop(sweep.get("early_stop"))
    required = sweep.get("power_limit_required")
    if required is not None and not isinstance(required, bool):
        raise ConfigError("sweep.power_limit_required", f"expected true or false, got {required!r}")
    root = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    kind = KINDS[sweep["kind"]]
    primary = primary_metric(cfg.job)
    if kind.points is None:
        return replace(_closed_loop_plan(name, sweep, root, early_stop), power_limit_required=required is not False,
                       primary=primary)
    produced = kind.points(sweep, root)
    points = _with_seeds(produced.points, sweep, root)
    if not points:
        raise ConfigError("sweep", "the sweep expands to no runs (every isoflop cell was outside its bounds?)")
    for path in {p for point in points for p in point}:
        _check_path(path)
    runs, dropped = _specs(Expander(root, _varied_paths(points)), points)
    return SweepPlan(name, sweep["kind"], tuple(runs), tuple(produced.dropped) + tuple(dropped),
                     tuple(_varied_paths(points)), sweep.get("analysis"), early_stop=early_stop,
                     power_limit_required=required is not False, primary=primary, section=sweep)


def primary_metric(job: Any) -> tuple[str, str] | None:
    """(metric, mode) from a job config's `_metric_` and `_mode_` (mode defaults to min), or None without a metric."""
    metric = job.get("_metric_") if job is not None else None
    if metric is None:
        return None
    if not isinstance(metric, str) or not metric:
        raise ConfigError("job._metric_", f"expected the name of a metric the job returns, e.g. val_loss; got {metric!r}")
    mode = job.get("_mode_", "min")
    if mode not in ("min", "max"):
        raise ConfigError("job._mode_", f"expected min (lower is better) or max, got {mode!r}")
    return metric, mode


def _closed_loop_plan(name: str, sweep: dict[str, Any], root: DictConfig,
                      early_stop: EarlyStopSpec | None) -> SweepPlan:
    """An adaptive sweep: checked in full (and one run of it resolved) now, its runs proposed as it goes."""
    for key in ("seeds", "repeats"):
        if sweep.get(key) is not None:
            raise ConfigError(f"sweep.{key}", "an adaptive sweep proposes each point once and may resample noisy "
                              "ones itself; to vary the seed, sweep it as a parameter (e.g. job.seed: {randint: [0, 9]})")
    spec = parse_adaptive(sweep)
    for path in spec.params:
        _check_path(path)
        if path.startswith(ANNOTATION_ROOT):
            raise ConfigError(f"sweep.params.{path}", "an adaptive sweep varies job.* and resources.* paths only")
    varied = [p for p, value in spec.params.items() if isinstance(value, Mapping) or isinstance(value, list)]
    expander = Expander(root, varied)
    _check_budget(spec, expander)
    from orchestrator.sweep.adaptive.space import Space

    expander.spec(Space(spec.params).point(Space(spec.params).sobol(1, spec.seed)[0]))  # a bad value fails now
    if spec.goal == "law" and early_stop is not None:
        raise ConfigError("sweep.early_stop", "early stopping keeps runs that can reach the front; a law design "
                          "picks every run for its final value, on the front or not, so it does not stop runs")
    analysis = sweep.get("analysis") or _goal_analysis(spec)
    return SweepPlan(name, "adaptive", (), (), tuple(varied), analysis, spec, expander, early_stop, section=sweep)


def _goal_analysis(spec: AdaptiveSpec) -> dict[str, Any]:
    """What an adaptive sweep reports at the end of each launch unless it has an `analysis:` section: the front of
    its objectives (goal frontier) or the fit of its law (goal law), logged on the launch's parent run."""
    if spec.goal == "frontier":
        return {"frontiers": [{"name": "goal", "objectives": dict(spec.objectives)}]}
    assert spec.law is not None
    leaf = lambda path: path.rsplit(".", 1)[-1]  # noqa: E731 - the job reports its sizes under their leaf names
    return {"fits": [{"name": "goal", "form": spec.law.form, "n": leaf(spec.law.n_path), "d": leaf(spec.law.d_path),
                      "loss": spec.law.loss, "bootstrap": 200}]}


def _check_budget(spec: AdaptiveSpec, expander: Expander) -> None:
    """A GPU-hour budget needs runs that hold GPUs; a dollar or energy budget needs a cost model or a meter, which
    the engine checks once settings are known."""
    if "gpu_hours" in spec.budget or "gpu_hours" in spec.objectives:
        gpus = _get(expander.base, "resources.gpus")
        if gpus == 0 and "resources.gpus" not in spec.params:
            field = "sweep.budget.gpu_hours" if "gpu_hours" in spec.budget else "sweep.objectives.gpu_hours"
            raise ConfigError(field, "the runs hold no GPU (resources.gpus=0), so they spend no GPU-hours; "
                              "count runs (budget: {runs: N}) or give the runs GPUs")


def _check_keys(sweep: Mapping[str, Any]) -> None:
    kind = sweep["kind"]
    if kind not in KINDS:
        raise ConfigError("sweep.kind", f"unknown kind {kind!r}; allowed: {', '.join(USER_KINDS)}")
    unknown = set(sweep) - COMMON_KEYS - KINDS[kind].keys
    if unknown:
        allowed = ", ".join(sorted(COMMON_KEYS | KINDS[kind].keys))
        raise ConfigError(f"sweep.{sorted(unknown)[0]}", f"unknown key for a {kind} sweep; allowed: {allowed}")


def _specs(expander: Expander, points: list[kinds.Point]) -> tuple[list[RunSpec], list[kinds.Dropped]]:
    runs: dict[str, RunSpec] = {}
    dropped = []
    for point in points:
        spec = expander.spec(point)
        if spec.run_key in runs:
            dropped.append(kinds.Dropped(point, f"same resolved config as run {runs[spec.run_key].name!r}"))
            continue
        runs[spec.run_key] = spec
    return list(runs.values()), dropped
