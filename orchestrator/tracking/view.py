"""The sweep's saved view in MLflow's UI: its runs page with the columns and charts a sweep is read by.

MLflow's UI (3.16 on) keeps a shareable view of an experiment's runs page as the experiment tag
`mlflow.sharedViewState.<id>`, a JSON envelope `{name, createdAt, updatedAt, state}` whose `state` is the page's
search facets and UI state as a JSON string, or that string zlib-compressed and base64-encoded after `deflate;`. The
page opens it from `#/experiments/<id>/runs?viewStateShareKey=<id>`. The format is the UI's own, undocumented: it was
read from the JS bundle of MLflow `UI_VERSION` (its saved-view envelope, the state keys it accepts from a view and the
chart card types), so a view is written only for that UI; any other gets the plain link.

The view of a sweep: its child runs only (a filter on the role tag: MLflow's UI does not take a view's expanded
parents, so children nested under a launch would stay folded), best primary metric first; columns of the swept
params, the primary metric and the cost metrics; charts of parallel coordinates (swept params to the primary
metric), cost against the primary metric, and the loss curves, in a section of their own above MLflow's own charts.
Its id is derived from the sweep, so writing it again replaces it.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from orchestrator.tracking.store import ROLE

log = logging.getLogger(__name__)

# The MLflow release whose UI bundle (mlflow/server/js/build) the view format below was read from.
UI_VERSION = "3.17.2"
TAG_PREFIX = "mlflow.sharedViewState."
# MLflow's limit on an experiment tag's value (MAX_EXPERIMENT_TAG_VAL_LENGTH); the UI refuses larger views too.
TAG_VALUE_MAX = 20000
DEFLATE = "deflate;"
SECTION = "orchestrator-sweep"
# The runs table's run-name column, widened from the UI's 190 px to show names like "n_params=1e9 tokens=1e11".
RUN_NAME = "attributes.`Run Name`"
RUN_NAME_WIDTH_PX = 280


@dataclass(frozen=True)
class SweepView:
    """What a sweep's view shows. Params are MLflow param keys (`param_key`), metrics MLflow metric keys."""

    experiment_id: str
    sweep: str
    swept_params: Sequence[str]
    # The primary metric and "min" or "max".
    primary: tuple[str, str]
    # Cost metrics the runs have, e.g. ("cost_usd", "gpu_hours"); the first is charted against the primary metric.
    cost_metrics: Sequence[str] = ()
    # Metrics logged as curves (one line chart each), e.g. ("val_loss", "train_loss").
    curves: Sequence[str] = ()


@dataclass(frozen=True)
class ViewLink:
    """Where a sweep's runs are in MLflow's UI: `link` a URL fragment (`url` with the server's address when the
    tracking URI is one); `saved` whether it opens the sweep's saved view, else `why` not."""

    link: str
    url: str
    saved: bool
    why: str | None = None


def param_key(path: str) -> str:
    """The MLflow param key of a swept config path: a job's config is logged without its `job.` prefix
    (tracking/ops.py), resources keep theirs."""
    return path[len("job."):] if path.startswith("job.") else path


def view_id(sweep: str) -> str:
    """The view's id, the same for every launch of the sweep (URL- and tag-key-safe)."""
    return "orchestrator-" + re.sub(r"[^A-Za-z0-9_-]+", "-", sweep).strip("-")[:100]


def view_link(experiment_id: str, view_id: str | None = None) -> str:
    """The runs page of the experiment, in the view `view_id` if given, on MLflow's model-training (not GenAI) UI."""
    share = f"viewStateShareKey={view_id}&" if view_id else ""
    return f"#/experiments/{experiment_id}/runs?{share}workflowType=machine_learning"


def view_tag(view: SweepView, created_at_ms: int | None = None, updated_at_ms: int | None = None) -> tuple[str, str]:
    """(tag key, tag value) of the sweep's view; the state is compressed only when the plain tag would be over
    MLflow's limit. Raises ValueError if even the compressed one is."""
    now = int(time.time() * 1000)
    created, updated = created_at_ms or now, updated_at_ms or now
    state = json.dumps(view_state(view), separators=(",", ":"))
    value = _envelope(view.sweep, state, created, updated)
    if len(value) > TAG_VALUE_MAX:
        value = _envelope(view.sweep, DEFLATE + base64.b64encode(zlib.compress(state.encode(), 9)).decode(),
                          created, updated)
    if len(value) > TAG_VALUE_MAX:
        raise ValueError(f"the view of sweep {view.sweep!r} takes {len(value)} characters compressed, over MLflow's "
                         f"{TAG_VALUE_MAX} for a tag")
    return TAG_PREFIX + view_id(view.sweep), value


def _envelope(sweep: str, state: str, created_ms: int, updated_ms: int) -> str:
    return json.dumps({"name": f"Sweep {sweep}", "createdAt": created_ms, "updatedAt": updated_ms, "state": state},
                      separators=(",", ":"))


def read_state(value: str) -> dict[str, Any]:
    """The UI state in a view tag's value (as the UI reads it)."""
    state = json.loads(value)["state"]
    if state.startswith(DEFLATE):
        state = zlib.decompress(base64.b64decode(state[len(DEFLATE):])).decode()
    return json.loads(state)


def view_state(view: SweepView) -> dict[str, Any]:
    """The runs page's search facets and UI state, as MLflow's UI saves them (keys the UI ignores left out)."""
    metric, mode = view.primary
    # Shown in this order: the primary metric, the costs, the swept params.
    columns = ([_column("metrics", m) for m in dict.fromkeys([metric, *view.cost_metrics])] +
               [_column("params", p) for p in view.swept_params])
    return {
        "searchFilter": f"tags.`{ROLE}` = 'child'", "orderByKey": _column("metrics", metric),
        "orderByAsc": mode == "min", "startTime": "ALL", "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs", "datasetsFilter": [],
        "selectedColumns": columns, "columnOrder": [RUN_NAME, *columns], "columnWidths": {RUN_NAME: RUN_NAME_WIDTH_PX},
        # Every run of the sweep in the charts (the UI's default is its first 10).
        "runsHiddenMode": "SHOW_ALL",
        "compareRunCharts": charts(view), "compareRunSections": [_section(view)],
        # Keep this section first: MLflow's UI adds sections for the metrics it charts itself after it.
        "isAccordionReordered": True,
        "viewMaximized": False, "runListHidden": False, "groupBy": None, "groupsExpanded": {},
        "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "chartsSearchFilter": "",
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def _column(kind: str, key: str) -> str:
    """A runs-table column (and sort key) as the UI names it: params.`lr`, metrics.`val_loss`."""
    return f"{kind}.`{key}`"


def _section(view: SweepView) -> dict[str, Any]:
    return {"uuid": SECTION, "name": f"Sweep {view.sweep}", "display": True, "isReordered": False,
            "deleted": False, "isGenerated": False, "columns": 2, "cardHeight": 360}


def charts(view: SweepView) -> list[dict[str, Any]]:
    """Chart cards: parallel coordinates of the swept params to the primary metric (when anything is swept), the
    first cost metric against the primary metric, one line chart per curve."""
    metric = view.primary[0]
    cards = []
    if view.swept_params:
        cards.append(_card("parallel", "PARALLEL", selectedParams=list(view.swept_params),
                           selectedMetrics=[metric], showAllRuns=False))
    if view.cost_metrics:
        cards.append(_card("scatter", "SCATTER", runsCountToCompare=100,
                           xaxis={"key": view.cost_metrics[0], "type": "METRIC"},
                           yaxis={"key": metric, "type": "METRIC"}))
    for key in view.curves:
        cards.append(_card(f"line-{key}", "LINE", metricKey=key, selectedMetricKeys=[key], lineSmoothness=0,
                           xAxisScaleType="linear", scaleType="linear", xAxisKey="step", selectedXAxisMetricKey="",
                           yAxisKey="metric", yAxisExpressions=[], ignoreOutliers=False, useGlobalXaxisKey=True,
                           useGlobalLineSmoothing=True, range={}))
    return cards


def _card(name: str, kind: str, **fields: Any) -> dict[str, Any]:
    """A chart card: the fields every card has (the UI's RunsChartsCardConfig), then its type's."""
    return {"uuid": f"{SECTION}-{name}", "type": kind, "runsCountToCompare": 10, "metricSectionId": SECTION,
            "deleted": False, "isGenerated": False, **fields}


# -- writing ----------------------------------------------------------------------------------------------------------
class ExperimentTags(Protocol):
    """What writing a view needs of the sweep's store (`tracking.store.MlflowStore`): its URI and its experiment's
    tags."""

    uri: str

    def experiment_tags(self) -> Mapping[str, str]: ...

    def set_experiment_tag(self, key: str, value: str) -> None: ...


def write_view(store: ExperimentTags, view: SweepView) -> ViewLink:
    """Write (or replace) the sweep's view on its experiment through `store` (the sweep's `MlflowStore`, whose
    experiment is `view.experiment_id`) and return its link; where the UI is not the one the format was read from, or
    the write fails, write nothing and return the plain link, saying why (also logged). Never raises: a view is not
    worth failing a launch for."""
    uri = str(store.uri)
    base = uri.rstrip("/") + "/" if uri.startswith(("http://", "https://")) else ""
    plain = view_link(view.experiment_id)
    version = ui_version(uri)
    if version != UI_VERSION:
        why = (f"MLflow UI {version or 'of unknown version'} may not read a saved view written for {UI_VERSION}; "
               "the link opens the plain runs page")
        log.info("no saved view for sweep %s: %s", view.sweep, why)
        return ViewLink(plain, base + plain, False, why)
    try:
        key = TAG_PREFIX + view_id(view.sweep)
        created = _created_at(store.experiment_tags().get(key))
        store.set_experiment_tag(*view_tag(view, created_at_ms=created))
    except Exception as exc:  # noqa: BLE001 - a view is a convenience; say why and give the plain link
        why = f"could not write the sweep's saved view: {exc}"
        log.warning("%s", why)
        return ViewLink(plain, base + plain, False, why)
    link = view_link(view.experiment_id, view_id(view.sweep))
    log.debug("saved view of sweep %s: %s", view.sweep, base + link)
    return ViewLink(link, base + link, True)


def _created_at(value: str | None) -> int | None:
    """When the view was first written (kept when it is replaced)."""
    try:
        return int(json.loads(value)["createdAt"]) if value else None
    except (ValueError, KeyError, TypeError):
        return None


def ui_version(tracking_uri: str) -> str | None:
    """The MLflow version whose UI shows this store: the server's for an http(s) URI (None if it does not say),
    else the installed mlflow's (the `mlflow ui` a user opens over a database or folder), from its package metadata
    (mlflow is imported by the store alone)."""
    if tracking_uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/version", timeout=5) as response:
                return response.read().decode().strip() or None
        except OSError:
            return None
    if tracking_uri.startswith("databricks"):
        return None
    from importlib.metadata import version

    return version("mlflow")
