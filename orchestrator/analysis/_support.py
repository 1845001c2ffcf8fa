"""Whether the data can support a fitted scaling law, and if not, why: a fit that cannot is reported as skipped
with these reasons, never as numbers (the sweep-end analysis, the HTML report and `orchestrator fit` all ask here).

A fit is not supported when
- it has fewer than MIN_POINTS_PER_PARAM usable runs per fitted parameter (6 runs for L(N, D)'s 5 parameters: any
  exponent fits them about as well as any other);
- an exponent sits at its search bound (the optimum is the box's edge, not the data's);
- an exponent's bootstrap interval covers WIDE_INTERVAL or more of the allowed range (the data do not pin it down).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.analysis._forms import get_form
from orchestrator.analysis.scaling import AT_BOUND

if TYPE_CHECKING:
    from orchestrator.analysis._fit_result import ScalingFit

# Usable runs per fitted parameter a fit needs (10 for chinchilla's 5, 6 for a power law's 3).
MIN_POINTS_PER_PARAM = 2
# Share of the exponent search range an interval may cover before the exponent counts as undetermined.
WIDE_INTERVAL = 0.5


def unsupported_reasons(fit: ScalingFit) -> tuple[str, ...]:
    """Why the data cannot support `fit`, one sentence each; empty when they can."""
    fitted = len(fit.params) - (0 if fit.irreducible else 1)
    reasons = []
    if fit.n_points < MIN_POINTS_PER_PARAM * fitted:
        reasons.append(f"{fit.n_points} runs for {fitted} parameters; it needs at least {MIN_POINTS_PER_PARAM} runs "
                       f"per parameter ({MIN_POINTS_PER_PARAM * fitted})")
    lo, hi = fit.exponent_bounds
    for name in get_form(fit.form).exponents:
        value = fit.params[name]
        if min(abs(value - lo), abs(value - hi)) < AT_BOUND:
            reasons.append(f"{name} = {value:.3g} sits at its search bound ({lo:g} or {hi:g})")
        low, high = fit.ci.get(name, (0.0, 0.0))
        if high - low >= WIDE_INTERVAL * (hi - lo):
            reasons.append(f"{name}'s 95% interval [{low:.3g}, {high:.3g}] covers {(high - low) / (hi - lo):.0%} of "
                           f"its allowed range [{lo:g}, {hi:g}]")
    return tuple(reasons)
