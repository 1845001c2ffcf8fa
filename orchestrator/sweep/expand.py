"""Turn the composed Hydra config into a `SweepPlan`: every run fully resolved, keyed, named, validated.

Nothing here talks to Ray or MLflow, so every config error surfaces before anything starts or is written.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, OmegaConf

from orchestrator.errors import ConfigError
from orchestrator.masking import MASK, is_secret
from orchestrator.records import RunSpec
from orchestrator.sweep import kinds
from orchestrator.sweep.keys import run_key
from orchestrator.sweep.resources import parse_resources
from orchestrator.sweep.values import coerce, expand_values

# Keys a sweep section may hold, for every kind and per kind.
COMMON_KEYS = {"name", "kind", "params", "seeds", "repeats", "seed_path", "analysis"}
KIND_KEYS = {"grid": set(), "zip": set(), "single": set(), "random": {"n", "seed"},
             "isoflop": {"budgets", "models", "n_params_fn", "n_params_path", "tokens_path", "bounds"}}
# Config roots a sweep may vary, and the annotation prefix that is logged but never applied to the config.
SETTABLE_ROOTS = ("job.", "resources.")
ANNOTATION_ROOT = "sweep."


@dataclass(frozen=True)
class SweepPlan:
    """Everything a launch will run, before any cluster or tracking store is touched."""

    name: str
    kind: str
    runs: tuple[RunSpec, ...]
    dropped: tuple[kinds.Dropped, ...]
    varied: tuple[str, ...]
    # The sweep's `analysis:` section (validated), run on the sweep's runs at the end of each launch.
    analysis: Mapping[str, Any] | None = None


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


def _apply_plain(base: dict[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """The root config (plain, unresolved) with a point's values set, each coerced to its field's type."""
    config = copy.deepcopy(base)
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


def _points(sweep: Mapping[str, Any], root: DictConfig) -> kinds.Points:
    kind = sweep.get("kind", "grid")
    if kind not in kinds.KINDS:
        raise ConfigError("sweep.kind", f"unknown kind {kind!r}; allowed: {', '.join(kinds.KINDS)}")
    if kind == "isoflop":
        return kinds.isoflop(sweep, root, _n_params_of(sweep, root))
    return kinds.KINDS[kind](sweep, root)


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
    root = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    produced = kinds.Points([{}], []) if sweep["kind"] == "single" else _points(sweep, root)
    points = _with_seeds(produced.points, sweep, root)
    if not points:
        raise ConfigError("sweep", "the sweep expands to no runs (every isoflop cell was outside its bounds?)")
    for path in {p for point in points for p in point}:
        _check_path(path)
    runs, dropped = _specs(root, points)
    return SweepPlan(name, sweep["kind"], tuple(runs), tuple(produced.dropped) + tuple(dropped),
                     tuple(_varied_paths(points)), sweep.get("analysis"))


def _check_keys(sweep: Mapping[str, Any]) -> None:
    kind = sweep["kind"]
    if kind not in KIND_KEYS:
        raise ConfigError("sweep.kind", f"unknown kind {kind!r}; allowed: {', '.join(kinds.KINDS)}")
    unknown = set(sweep) - COMMON_KEYS - KIND_KEYS[kind]
    if unknown:
        allowed = ", ".join(sorted(COMMON_KEYS | KIND_KEYS[kind]))
        raise ConfigError(f"sweep.{sorted(unknown)[0]}", f"unknown key for a {kind} sweep; allowed: {allowed}")


def _specs(root: DictConfig, points: list[kinds.Point]) -> tuple[list[RunSpec], list[kinds.Dropped]]:
    varied = _varied_paths(points)
    short = _short_names(varied)
    base = OmegaConf.to_container(root, resolve=False)
    # Resolving interpolations through OmegaConf costs ~1 ms a run: only pay it when the config has any.
    interpolated = "${" in json.dumps(base, default=str)
    runs: dict[str, RunSpec] = {}
    dropped = []
    for point in points:
        config = _apply_plain(base, point)
        if interpolated:
            config = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
        job = config["job"]
        key = run_key(job)
        values = {p: point[p] if p.startswith(ANNOTATION_ROOT) else _get(config, p) for p in varied}
        if key in runs:
            dropped.append(kinds.Dropped(point, f"same resolved config as run {runs[key].name!r}"))
            continue
        runs[key] = RunSpec(key, job, parse_resources(config.get("resources") or {}), _run_name(values, short), values)
    return list(runs.values()), dropped
