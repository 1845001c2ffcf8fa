"""A sweep as one self-contained HTML page: summary and totals, the cost-metric frontier, scaling-law fits with
intervals and extrapolation, IsoFLOP curves, parallel coordinates, parameter importance, energy and cost, failures.

    from orchestrator.report import build_html_report, report_bytes
    html = build_html_report(load_sweep("lm-scaling"), metric="val_loss", mode="min")
    data = report_bytes(uri, "lm-scaling", "val_loss", "min", launch_run_id=parent_id)   # to log as report.html

`orchestrator report <sweep> -o report.html` writes the same page. The page needs no network (inline CSS, figures as
inline PNG); its numbers are also in `<script type="application/json" id="report-data">`. Building reads only.
"""

from orchestrator.report.build import HtmlReport, build_html_report, build_report, report_bytes

__all__ = ["HtmlReport", "build_html_report", "build_report", "report_bytes"]
