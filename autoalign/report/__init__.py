"""HTML report of an evaluation or a run: one self-contained page with inline SVG charts (``html``)."""

from autoalign.report.html import write_eval_report, write_run_report

__all__ = ["write_eval_report", "write_run_report"]
