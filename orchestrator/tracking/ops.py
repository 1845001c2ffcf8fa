"""Tracking writes as plain operations, addressed by run_key (a child run) or "parent" rather than by MLflow run id.

An op is a JSON-ready dict, so it can wait out an outage in memory and in the journal, and be applied later, even by
another process. Applying ops again is harmless: a create first looks for the run it may already have made (tag
`run_key` under the parent; tag `orchestrator.launch_id` for the parent), metrics carry their own timestamps (MLflow's
SQL store drops a metric identical in key, value, step and timestamp), params and tags are the same values again, and
ending a run twice ends it once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from orchestrator.masking import is_secret
from orchestrator.records import KILLED, PRUNED, CurvePoint, RunResult, RunSpec
from orchestrator.tracking.flatten import metric_name_for, number, params_of
from orchestrator.tracking.notes import NOTE, spec_note
from orchestrator.tracking.store import ROLE, MlflowStore, TrackingUnreachable

Op = dict[str, Any]
PARENT = "parent"
LAUNCH_ID = "orchestrator.launch_id"
# Times an op is tried while the server answers other requests before its failure counts as the op's own (a 5xx it
# causes every time), so one bad write cannot hold the rest back forever.
TRIES = 3


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- building ---------------------------------------------------------------------------------------------------------
def create_parent(launch_id: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                  started_at_ms: int) -> Op:
    return {"op": "create", "target": PARENT, "name": name, "tags": {ROLE: "parent", LAUNCH_ID: launch_id, **tags},
            "params": params_of(params), "metrics": {}, "start_ms": started_at_ms}


def create_child(sweep: str, spec: RunSpec, where: Mapping[str, Any]) -> Op:
    """The child run of `spec`; its payload (a Hydra task function) is never part of it."""
    tags = {**spec.tags, ROLE: "child", "run_key": spec.run_key, "sweep": sweep, "attempt": str(spec.attempt),
            "status": "RUNNING",
            "node": str(where.get("node", "")), "ray_node": str(where.get("ray_node", "")),
            "device": ",".join(f"gpu:{g}" for g in where.get("gpu_ids", [])) or "cpu"}
    resources = {k: v for k, v in vars(spec.resources).items() if v is not None or not k.startswith("power_limit")}
    params = {**params_of(spec.job), **params_of(resources, "resources.")}
    tags[NOTE] = spec_note(spec)
    metrics = {metric_name_for(p): number(v) for p, v in spec.varied.items() if not is_secret(p)}
    return {"op": "create", "target": spec.run_key, "name": spec.name, "tags": tags, "params": params,
            "metrics": {k: v for k, v in metrics.items() if v is not None},
            "start_ms": int(where.get("started_at_ms") or _now_ms())}


def reopen(target: str = PARENT) -> Op:
    return {"op": "reopen", "target": target}


def log_text(text: str, path: str, target: str = PARENT) -> Op:
    return {"op": "text", "target": target, "text": text, "path": path}


def log_points(target: str, points: Sequence[CurvePoint]) -> Op:
    return {"op": "points", "target": target, "points": [[p.key, p.value, p.step, p.timestamp_ms] for p in points]}


def log(target: str, params: Mapping[str, str] | None = None, metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None, timestamp_ms: int | None = None, step: int = 0) -> Op:
    return {"op": "log", "target": target, "params": dict(params or {}), "metrics": dict(metrics or {}),
            "tags": {k: str(v) for k, v in (tags or {}).items()}, "timestamp_ms": timestamp_ms or _now_ms(),
            "step": step}


def terminate(target: str, status: str, end_ms: int | None = None) -> Op:
    return {"op": "end", "target": target, "status": status, "end_ms": end_ms or _now_ms()}


def end_child(result: RunResult) -> list[Op]:
    tags = {**result.tags, "status": result.status, "attempt": str(result.attempt)}
    tags.update({k: v for k, v in (("error", result.error), ("traceback", result.traceback)) if v})
    ended_ms = result.ended_at_ms or _now_ms()
    tail = [log_points(result.run_key, result.curve_tail)] if result.curve_tail else []
    # MLflow has no PRUNED status: a pruned run ends KILLED, its tags saying status=PRUNED and cause=pruned.
    status = KILLED if result.status == PRUNED else result.status
    return [*tail, log(result.run_key, metrics=result.metrics, tags=tags, timestamp_ms=ended_ms),
            terminate(result.run_key, status, ended_ms)]


def end_parent(status: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> list[Op]:
    now = _now_ms()
    return [log(PARENT, metrics=metrics, tags=tags, timestamp_ms=now), terminate(PARENT, status, now)]


# -- coalescing -------------------------------------------------------------------------------------------------------
# Kinds that fold into one "write" of their target: a create, its logs and points, its end.
_MERGEABLE = {"create", "log", "points", "end"}


def coalesce(batch: Sequence[Op]) -> list[tuple[Op, list[Op]]]:
    """Ops waiting together, as few writes as MLflow's API allows: each child run's consecutive create, logs, curve
    points and end fold into one "write" (create_run with every tag, one log_batch, set_terminated: three calls for
    a run that started and ended while the store was busy). Each comes with the ops it stands for, to keep in the
    journal or apply one by one if it fails. Per-run order is kept, and each write sits where its first op was; the
    parent's ops only fold logs into logs, so its end stays after its children's."""
    out: list[tuple[Op, list[Op]]] = []
    open_writes: dict[str, int] = {}
    for op in batch:
        target, kind = op["target"], op["op"]
        at = open_writes.get(target)
        foldable = kind in _MERGEABLE if target != PARENT else kind == "log"
        if at is not None and foldable and out[at][0].get("end") is None and not _changes_params(out[at][0], op):
            out[at][1].append(op)
            _fold(out[at][0], op)
            continue
        open_writes.pop(target, None)
        if foldable and not (kind == "create" and target == PARENT):
            out.append((_fold(_empty_write(target), op), [op]))
            open_writes[target] = len(out) - 1
        else:
            out.append((op, [op]))
    return [(write if len(parts) > 1 else parts[0], parts) for write, parts in out]


def _changes_params(write: Op, op: Op) -> bool:
    """Whether `op` gives a param another value than the write has: MLflow refuses that, and must say so for `op`."""
    return any(write["params"].get(k, v) != v for k, v in op.get("params", {}).items())


def _empty_write(target: str) -> Op:
    return {"op": "write", "target": target, "create": None, "params": {}, "tags": {}, "points": [], "end": None}


def _fold(write: Op, op: Op) -> Op:
    kind = op["op"]
    if kind == "create":
        write["create"] = {"name": op["name"], "tags": op["tags"], "start_ms": op["start_ms"]}
        write["params"].update(op["params"])
        write["points"].extend([k, v, 0, op["start_ms"]] for k, v in op["metrics"].items())
    elif kind == "log":
        write["params"].update(op["params"])
        write["tags"].update(op["tags"])
        write["points"].extend([k, v, op.get("step", 0), op["timestamp_ms"]] for k, v in op["metrics"].items())
    elif kind == "points":
        write["points"].extend(op["points"])
    elif kind == "end":
        write["end"] = {"status": op["status"], "end_ms": op["end_ms"]}
    return write


def describe(op: Op, names: Mapping[str, str]) -> str:
    """'end of <run name>', for error messages."""
    return f"{op['op']} of {names.get(op['target'], op['target'])}"


# -- applying ---------------------------------------------------------------------------------------------------------
def apply(store: MlflowStore, ids: dict[str, str], op: Op, again: bool = False) -> None:
    """Write one op. `ids` maps targets to run ids and learns those of the runs created. With `again` (the op may
    have reached the server before), a create first looks for its run."""
    kind, target = op["op"], op["target"]
    if kind == "create":
        _create(store, ids, op, again)
        return
    if kind == "write":
        _write(store, ids, op, again)
        return
    run_id = ids.get(target) or _find(store, ids, target)
    if run_id is None:
        raise LookupError(f"no MLflow run for {target}: its creation failed")
    if kind == "points":
        store.log_points(run_id, [CurvePoint(k, v, s, t) for k, v, s, t in op["points"]])
    elif kind == "log":
        store.log(run_id, op["params"], op["metrics"], op["tags"], op["timestamp_ms"], op.get("step", 0))
    elif kind == "end":
        store.terminate(run_id, op["status"], op["end_ms"])
    elif kind == "reopen":
        store.reopen(run_id)
    elif kind == "text":
        store.log_text(run_id, op["text"], op["path"])


def _create(store: MlflowStore, ids: dict[str, str], op: Op, again: bool) -> None:
    target, tags = op["target"], dict(op["tags"])
    if target != PARENT:
        if PARENT not in ids:
            raise LookupError(f"no MLflow run for the launch of {op['name']}: its creation failed")
        tags["mlflow.parentRunId"] = ids[PARENT]
    run_id = ids.get(target) or (_find(store, ids, target, tags) if again else None)
    if run_id is None:
        run_id = store.create_run(op["name"], tags, op["start_ms"])
    ids[target] = run_id
    store.log(run_id, params=op["params"], metrics=op["metrics"], timestamp_ms=op["start_ms"])


def _write(store: MlflowStore, ids: dict[str, str], op: Op, again: bool) -> None:
    """A coalesced write (see `coalesce`): its run created with all its tags if it is new, then one log_batch of its
    params, metrics and curve points, then its end."""
    target, create, tags = op["target"], op["create"], dict(op["tags"])
    if create is not None and target not in ids:
        _create(store, ids, {**create, "op": "create", "target": target, "tags": {**create["tags"], **tags},
                             "params": {}, "metrics": {}}, again)
        tags = tags if again else {}  # a new run has them; one found again may not
    run_id = ids.get(target) or _find(store, ids, target)
    if run_id is None:
        raise LookupError(f"no MLflow run for {target}: its creation failed")
    store.write(run_id, op["params"], [CurvePoint(k, v, s, t) for k, v, s, t in op["points"]], tags)
    if op["end"] is not None:
        store.terminate(run_id, op["end"]["status"], op["end"]["end_ms"])


def _find(store: MlflowStore, ids: Mapping[str, str], target: str, tags: Mapping[str, str] | None = None) -> str | None:
    """The run a target already has on the server, known by its tags (a parent by its launch id)."""
    if target == PARENT:
        return store.find_run({LAUNCH_ID: tags[LAUNCH_ID]}) if tags else None
    if PARENT not in ids:
        return None
    return store.find_run({"run_key": target, "mlflow.parentRunId": ids[PARENT]})


def apply_in_order(store: MlflowStore, ids: dict[str, str], ops: Sequence[Op],
                   on_error: Callable[[Op, Exception], None]) -> int:
    """Apply `ops` again, in order, until the server stops answering; returns how many are done (applied, or given up
    on with `on_error`). An op the server fails while it answers pings is tried `TRIES` times, then given up on."""
    for done, op in enumerate(ops):
        for attempt in range(1, TRIES + 1):
            try:
                apply(store, ids, op, again=True)
                break
            except TrackingUnreachable as exc:
                if not store.ping():
                    return done
                if attempt == TRIES:
                    on_error(op, exc)
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
                on_error(op, exc)
                break
    return len(ops)
