"""grouped_front and `analysis: frontiers: [{by, mean_over}]`: the front of seed means, each group's own front, and
which groups own the overall front, on synthetic runs whose front is known by construction."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.analysis import grouped_front, pareto_front, run_analysis, validate_analysis_spec
from orchestrator.errors import ConfigError

OBJECTIVES = {"inference_bitops": "min", "test_accuracy": "max"}
# Mean accuracy per (bits, width); cost = width * bits^2. By construction the front of means is
# 2-bit widths 1 and 2, and 4-bit widths 1, 2 and 4: 4 bits owns 3 points of it, 2 bits 2, 8 bits none.
MEAN_ACCURACY = {(2, 1): 0.50, (2, 2): 0.60, (2, 4): 0.62, (4, 1): 0.65, (4, 2): 0.80, (4, 4): 0.90,
                 (8, 1): 0.70, (8, 2): 0.82, (8, 4): 0.89}
FRONT_OF_MEANS = {(2, 1), (2, 2), (4, 1), (4, 2), (4, 4)}
# Seed 0 of 8 bits, width 4 is lucky (0.99): on the front of runs, not on the front of means.
LUCKY = (8, 4)


def synthetic_runs() -> pd.DataFrame:
    rows = []
    for (bits, width), accuracy in MEAN_ACCURACY.items():
        spread = 0.10 if (bits, width) == LUCKY else 0.01
        for seed, sign in ((0, 1), (1, -1)):
            rows.append({"run_name": f"bits={bits} width={width} seed={seed}", "status": "FINISHED",
                         "sweep.bits": float(bits), "sweep.width": float(width), "sweep.seed": float(seed),
                         "bits": float(bits), "inference_bitops": float(width * bits**2),
                         "test_accuracy": accuracy + sign * spread})
    return pd.DataFrame(rows)


def _keys(points: pd.DataFrame) -> set[tuple[int, int]]:
    return {(int(r["sweep.bits"]), int(r["sweep.width"])) for _, r in points.iterrows()}


def test_the_front_of_seed_means_is_the_known_front_and_names_its_bit_widths():
    result = grouped_front(synthetic_runs(), OBJECTIVES, by="bits", mean_over=["seed"])
    assert result.config == ("sweep.bits", "sweep.width")
    assert len(result.points) == 9 and set(result.points["n_runs"]) == {2}
    assert _keys(result.front) == FRONT_OF_MEANS
    assert result.groups_on_front == [4, 2]
    assert result.groups.loc[8.0].to_dict() == {"n_points": 3, "group_front_size": 3, "on_front": 0}
    lucky = result.points[(result.points["sweep.bits"] == 8) & (result.points["sweep.width"] == 4)].iloc[0]
    assert lucky["test_accuracy"] == pytest.approx(0.89) and lucky["test_accuracy_std"] == pytest.approx(0.1414, 1e-3)
    assert result.headline(2).startswith("bits on the front: 4 (3 of 5), 2 (2); not on it: 8. 5 of 9 configurations "
                                         "(means over seed of 18 runs) on the front: bits=2 width=1 ")


def test_without_mean_over_a_lucky_seed_reaches_the_front_of_runs():
    result = grouped_front(synthetic_runs(), OBJECTIVES, by="bits")
    assert len(result.points) == 18 and 8 in result.groups_on_front
    assert set(result.front.index) == set(pareto_front(synthetic_runs(), OBJECTIVES).index)


def test_each_group_has_its_own_front_over_its_points():
    result = grouped_front(synthetic_runs(), OBJECTIVES, by="bits", mean_over="seed")
    for bits, part in result.points.groupby("bits"):
        own = pareto_front(part, OBJECTIVES)
        assert set(part.index[part["on_group_front"]]) == set(own.index), bits
    # Every point of the overall front is on its own group's front; 2 bits, width 4 is on neither.
    assert result.points.loc[result.points["on_front"], "on_group_front"].all()
    assert (2, 4) in _keys(result.points[result.points["on_group_front"]])


def test_the_analysis_section_logs_the_groups_on_the_front_with_metrics_files_and_a_figure():
    spec = {"frontiers": [{"name": "bitops", "objectives": OBJECTIVES, "by": "bits", "mean_over": "seed",
                           "reference": {"inference_bitops": 1000.0, "test_accuracy": 0.0}}]}
    report = run_analysis(synthetic_runs(), spec)
    assert report.summary[0].startswith("frontier.bitops: bits on the front: 4 (3 of 5), 2 (2); not on it: 8.")
    assert report.metrics["frontier.bitops.size"] == 5 and report.metrics["frontier.bitops.n_points"] == 9
    assert report.metrics["frontier.bitops.groups_on_front"] == 2
    assert {k: report.metrics[f"frontier.bitops.on_front.bits_{k}"] for k in (2, 4, 8)} == {2: 2, 4: 3, 8: 0}
    assert report.metrics["frontier.bitops.hypervolume"] > 0
    assert report.files["frontier.bitops.png"].startswith(b"\x89PNG")
    points = pd.read_csv(pd.io.common.BytesIO(report.files["frontier.bitops.points.csv"]))
    assert len(points) == 9 and points["on_front"].sum() == 5


def test_averaging_over_every_varying_column_is_skipped_with_the_reason():
    runs = synthetic_runs().drop(columns=["sweep.bits", "sweep.width"])
    report = run_analysis(runs, {"frontiers": [{"objectives": OBJECTIVES, "mean_over": "seed"}]})
    assert report.summary == [] and "mean_over leaves no column that tells configurations apart" in report.warnings[0]


@pytest.mark.parametrize(("item", "field"), [
    ({"by": 3}, "analysis.frontiers[0].by"),
    ({"mean_over": {"seed": 1}}, "analysis.frontiers[0].mean_over"),
    ({"mean_over": [""]}, "analysis.frontiers[0].mean_over"),
])
def test_a_bad_by_or_mean_over_is_a_config_error_naming_the_field(item, field):
    with pytest.raises(ConfigError, match=rf"^{field.replace('[', '.').replace(']', '.')}"):
        validate_analysis_spec({"frontiers": [{"objectives": OBJECTIVES, **item}]})
