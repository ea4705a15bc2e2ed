"""Reports and studies: the run report, the sweep report, the regression comparison study, and
the ArviZ export of any fitted model.
"""

from l0bayes.reporting.comparison import (
    DATASETS,
    MAX_EXACT,
    METHODS,
    SUMMARY_METRICS,
    Diabetes,
    MethodFit,
    NotApplicable,
    Options,
    Simulated,
    Split,
    abess_fit,
    pip_errors,
    run,
    run_split,
    summary_table,
    support_metrics,
)
from l0bayes.reporting.inference_data import (
    HoldoutElpd,
    holdout_elpd,
    to_inference_data,
)
from l0bayes.reporting.report import (
    METRIC_KEYS,
    REPORT_DIR,
    REPORT_HELP,
    add_report_parser,
    describe_layer,
    make_report,
    read_history,
    run_report_command,
)
from l0bayes.reporting.sweep_report import (
    is_sweep_folder,
    make_sweep_report,
    pareto_front,
)

__all__ = [
    "DATASETS",
    "Diabetes",
    "HoldoutElpd",
    "MAX_EXACT",
    "METHODS",
    "METRIC_KEYS",
    "MethodFit",
    "NotApplicable",
    "Options",
    "REPORT_DIR",
    "REPORT_HELP",
    "SUMMARY_METRICS",
    "Simulated",
    "Split",
    "abess_fit",
    "add_report_parser",
    "comparison",
    "describe_layer",
    "holdout_elpd",
    "inference_data",
    "is_sweep_folder",
    "make_report",
    "make_sweep_report",
    "pareto_front",
    "pip_errors",
    "read_history",
    "report",
    "run",
    "run_report_command",
    "run_split",
    "summary_table",
    "support_metrics",
    "sweep_report",
    "to_inference_data",
]
