"""Deprecated module paths of l0bayes 0.1 (the flat layout), kept importable.

l0bayes 0.1 had 30 modules side by side in ``l0bayes/``; they now live in subpackages
(``l0bayes.linear_model``, ``l0bayes.nn``, ``l0bayes.training``, ...). Importing
an old path,
e.g. ``import l0bayes.training.trainer`` or ``from l0bayes.linear_model.selection import
best_subset``, still works: a
meta-path finder builds a module holding the old module's public names, taken from their new
homes listed in :data:`MOVED`, and warns once with a :class:`DeprecationWarning` naming them.
Nothing else of the package uses these paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: Old module path → {new module path: the public names of the old module that live there}.
MOVED: dict[str, dict[str, tuple[str, ...]]] = {
    "l0bayes.architecture": {
        "l0bayes.nn.architecture": (
            "Architecture",
            "GATE_STATES",
            "GateValues",
            "SelectInputs",
            "WEIGHT_LAYERS",
            "ZERO_PRESERVING",
            "architecture",
            "compact",
            "dense_layer",
            "expected_cost",
            "keep_values",
        ),
        "l0bayes.nn.layers": ("L0Conv2d", "L0Layer", "L0Linear"),
        "l0bayes.nn.runtime": ("TILE_BYTES", "exact_rewrites", "tiled"),
    },
    "l0bayes.checkpoint": {
        "l0bayes.training.checkpoint": (
            "CHECKPOINT_KEYS",
            "PathLike",
            "TEMP_PREFIX",
            "atomic_write",
            "load_checkpoint",
            "remove_stale_temporaries",
            "rng_state",
            "save_checkpoint",
            "set_rng_state",
            "write_json",
            "write_text",
        ),
    },
    "l0bayes.comparison": {
        "l0bayes.data.simulate": ("simulate_regression",),
        "l0bayes.linear_model.estimator": ("L0Regression",),
        "l0bayes.linear_model.exact": ("exact_posterior",),
        "l0bayes.linear_model.selection": ("best_subset", "refit_coefficients"),
        "l0bayes.linear_model.varbvs": ("varbvs",),
        "l0bayes.reporting.comparison": (
            "DATASETS",
            "Diabetes",
            "MAX_EXACT",
            "METHODS",
            "MethodFit",
            "NotApplicable",
            "Options",
            "SUMMARY_METRICS",
            "Simulated",
            "Split",
            "abess_fit",
            "pip_errors",
            "run",
            "run_split",
            "summary_table",
            "support_metrics",
        ),
    },
    "l0bayes.data": {
        "l0bayes.data.files": (
            "ChecksumError",
            "ENV_VAR",
            "FASHION_CLASSES",
            "FASHION_MNIST_URLS",
            "IDX_FILES",
            "ImageDataset",
            "MD5",
            "MNIST_URLS",
            "PathLike",
            "SHA256",
            "default_data_dir",
            "load_cifar",
            "load_fashion_mnist",
            "load_mnist",
            "read_idx",
            "to_tensors",
            "verify_file",
        ),
        "l0bayes.device": ("resolve_device",),
    },
    "l0bayes.distributed": {
        "l0bayes.training.distributed": (
            "COLLECTIVE_TIMEOUT",
            "DistributedError",
            "GRACE_PERIOD",
            "allreduce_gradients",
            "barrier",
            "collective_timeout",
            "init_from_env",
            "launched_by_torchrun",
            "shutdown",
            "spawn",
            "world",
        ),
    },
    "l0bayes.exact": {
        "l0bayes.device": ("resolve_device",),
        "l0bayes.linear_model.exact": (
            "ExactPosterior",
            "exact_posterior",
            "log_marginal_likelihoods",
            "score_supports",
        ),
        "l0bayes.linear_model.model_size": (
            "PriorInclusion",
            "check_prior_inclusion",
            "log_prior_by_size",
            "pi_posterior",
        ),
        "l0bayes.validation": ("as_float_array", "check_Xy", "check_count", "check_positive"),
    },
    "l0bayes.fit": {
        "l0bayes.data.images": ("Images", "epoch_order"),
        "l0bayes.training.loop": ("FitResult", "LossFn", "error_rate", "fit"),
    },
    "l0bayes.importance": {
        "l0bayes.linear_model.exact": ("score_supports",),
        "l0bayes.linear_model.importance": (
            "ImportanceResult",
            "pareto_smooth",
            "psis_inclusion_probs",
        ),
        "l0bayes.linear_model.model_size": (
            "PriorInclusion",
            "check_prior_inclusion",
            "log_prior_by_size",
        ),
        "l0bayes.validation": ("as_float_array", "check_Xy", "check_count"),
    },
    "l0bayes.infer": {
        "l0bayes.device": ("resolve_device", "torch_threads"),
        "l0bayes.linear_model.svi": ("SVIResult", "fit_svi"),
        "l0bayes.validation": ("check_count", "check_positive"),
    },
    "l0bayes.inference_data": {
        "l0bayes.nn.inference_data": ("network_inference_data",),
        "l0bayes.reporting.inference_data": ("HoldoutElpd", "holdout_elpd", "to_inference_data"),
        "l0bayes.validation": ("feature_names",),
    },
    "l0bayes.linear_model": {
        "l0bayes.device": ("resolve_device",),
        "l0bayes.distributions.hard_concrete": (
            "DEFAULT_TEMPERATURE",
            "HardConcrete",
            "check_gate_hyperparameters",
        ),
        "l0bayes.linear_model.estimator": ("L0Regression", "METHODS", "PENALTIES"),
        "l0bayes.linear_model.model": ("RegressionPrior", "regression_guide", "regression_model"),
        "l0bayes.linear_model.model_size": (
            "PriorInclusion",
            "beta_from_model_size",
            "check_prior_inclusion",
            "pi_posterior",
            "pmf_interval",
            "poisson_binomial",
        ),
        "l0bayes.linear_model.selection": (
            "InformationCriteria",
            "information_criteria",
            "local_search",
        ),
        "l0bayes.linear_model.svi": ("fit_svi",),
        "l0bayes.validation": (
            "as_float_array",
            "check_Xy",
            "check_count",
            "check_finite",
            "check_not_constant",
            "check_positive",
            "feature_names",
        ),
    },
    "l0bayes.model_size": {
        "l0bayes.linear_model.model_size": (
            "PriorInclusion",
            "beta_from_model_size",
            "check_prior_inclusion",
            "log_prior_by_size",
            "pi_posterior",
            "pmf_interval",
            "poisson_binomial",
        ),
    },
    "l0bayes.networks": {
        "l0bayes.nn.architecture": (
            "Architecture",
            "GateValues",
            "architecture",
            "dense_layer",
            "expected_cost",
            "keep_values",
        ),
        "l0bayes.nn.layers": (
            "L0Conv2d",
            "L0Layer",
            "L0Linear",
            "L0Network",
            "L0Sequential",
            "LayerDraw",
            "check_precision",
        ),
        "l0bayes.nn.networks": (
            "CompactWideBlock",
            "CompactWideResNet",
            "NETWORKS",
            "NetworkSpec",
            "WideBlock",
            "WideResNet",
            "get_network",
            "lenet5",
            "mnist_mlp",
            "network_architecture",
            "network_expected_cost",
            "wide_resnet",
        ),
    },
    "l0bayes.nn": {
        "l0bayes.distributions.hard_concrete": (
            "DEFAULT_STRETCH",
            "DEFAULT_TEMPERATURE",
            "HardConcrete",
            "check_gate_hyperparameters",
        ),
        "l0bayes.distributions.spike_slab": (
            "GaussianSlab",
            "SpikeSlabGate",
            "code_cost",
            "gate_kl",
            "point_mass_kl",
        ),
        "l0bayes.nn.layers": (
            "DEFAULT_LAM",
            "GATE_KINDS",
            "L0Conv2d",
            "L0Layer",
            "L0Linear",
            "L0Network",
            "L0Sequential",
            "LayerDraw",
            "WEIGHT_GUIDES",
            "WEIGHT_INITS",
            "check_conv_input",
            "check_precision",
            "drop_rate_to_log_alpha",
            "init_conv",
            "init_weights",
            "l0_layers",
        ),
    },
    "l0bayes.path": {
        "l0bayes.linear_model.estimator": ("L0Regression",),
        "l0bayes.linear_model.path": (
            "LambdaPath",
            "PathRow",
            "default_lambdas",
            "lambda_path",
        ),
        "l0bayes.linear_model.selection": ("SubsetResult", "best_subset"),
        "l0bayes.viz.plotting": ("plot_lambda_path",),
        "l0bayes.viz.tables": ("indices",),
    },
    "l0bayes.plotting": {
        "l0bayes.viz.plotting": (
            "plot_active_units",
            "plot_input_gates",
            "plot_layer_pips",
            "plot_pips",
            "plot_reliability",
            "plot_training_curves",
            "save_figure",
        ),
    },
    "l0bayes.posterior": {
        "l0bayes.nn.architecture": ("Architecture",),
        "l0bayes.nn.layers": ("L0Layer", "L0Linear", "L0Network", "LayerDraw", "l0_layers"),
        "l0bayes.nn.networks": ("network_architecture",),
        "l0bayes.nn.posterior": (
            "ArchitecturePosterior",
            "DEFAULT_SAMPLES",
            "ECE_BINS",
            "Interval",
            "architecture_summary",
            "bma_log_probs",
            "classification_metrics",
            "coinclusion",
            "compare_bma",
            "credible_interval",
            "deterministic_log_probs",
            "deterministic_open",
            "expected_calibration_error",
            "gated_layer_names",
            "inclusion_probabilities",
            "input_gate_image",
            "posterior_rank",
            "reliability_bins",
            "sample_architectures",
            "sample_gates",
            "sampled_log_probs",
            "unit_agreement",
        ),
    },
    "l0bayes.pruning": {
        "l0bayes.baselines.pruning": (
            "PLAIN",
            "fine_tune",
            "live_chain",
            "magnitude_prune",
            "masked_architecture",
            "nonzero_weights",
            "plain_chain",
            "sparse_architecture",
            "weight_layers",
        ),
        "l0bayes.data.images": ("Images",),
        "l0bayes.nn.architecture": ("Architecture", "architecture"),
        "l0bayes.nn.layers": ("L0Conv2d", "L0Layer", "L0Linear"),
        "l0bayes.training.loop": ("FitResult", "fit"),
    },
    "l0bayes.regression": {
        "l0bayes.distributions.hard_concrete": (
            "DEFAULT_STRETCH",
            "DEFAULT_TEMPERATURE",
            "HardConcrete",
            "check_gate_hyperparameters",
        ),
        "l0bayes.distributions.spike_slab": ("GaussianSlab", "KL_MODES", "SpikeSlabGate"),
        "l0bayes.linear_model.model": (
            "RegressionPrior",
            "WEIGHT_GUIDES",
            "linear_predictor",
            "regression_guide",
            "regression_model",
        ),
        "l0bayes.validation": ("FAMILIES", "check_choice", "check_count", "check_positive"),
    },
    "l0bayes.report": {
        "l0bayes.device": ("resolve_device",),
        "l0bayes.nn.layers": ("L0Conv2d", "L0Layer", "L0Network", "l0_layers"),
        "l0bayes.nn.networks": ("get_network",),
        "l0bayes.reporting.report": (
            "METRIC_KEYS",
            "REPORT_DIR",
            "REPORT_HELP",
            "add_report_parser",
            "describe_layer",
            "make_report",
            "read_history",
            "run_report_command",
        ),
        "l0bayes.training.checkpoint": ("write_text",),
        "l0bayes.training.run_directory": ("prepare_output_dir",),
        "l0bayes.viz.tables": ("Table", "to_latex", "to_markdown", "write_csv"),
    },
    "l0bayes.run_directory": {
        "l0bayes.data.files": ("PathLike",),
        "l0bayes.training.checkpoint": ("remove_stale_temporaries", "write_json"),
        "l0bayes.training.run_directory": (
            "LOCK",
            "MARKER",
            "RunDirectoryError",
            "is_run_directory",
            "open_run",
            "prepare_new_run",
            "prepare_output_dir",
            "run_lock",
            "write_marker",
        ),
    },
    "l0bayes.runtime": {
        "l0bayes.nn.runtime": (
            "StridedMaxPool2d",
            "TILE_BYTES",
            "TiledSequential",
            "exact_rewrites",
            "tiled",
        ),
    },
    "l0bayes.selection": {
        "l0bayes.linear_model.selection": (
            "InformationCriteria",
            "SubsetResult",
            "best_subset",
            "information_criteria",
            "local_search",
            "refit_coefficients",
        ),
        "l0bayes.validation": ("FAMILIES", "check_Xy", "check_count", "check_not_constant"),
    },
    "l0bayes.simulate": {
        "l0bayes.data.simulate": ("Problem", "simulate_regression"),
        "l0bayes.validation": ("FAMILIES", "check_choice", "check_count", "check_positive"),
    },
    "l0bayes.sparse_vd": {
        "l0bayes.baselines.sparse_vd": (
            "INIT_LOG_SIGMA2",
            "LOG_ALPHA_THRESHOLD",
            "SVDConv2d",
            "SVDLayer",
            "SVDLinear",
            "SVDNetwork",
            "SVDSequential",
            "SVD_NETWORKS",
            "VAR_EPS",
            "fit_sparse_vd",
            "svd_lenet5",
            "svd_mnist_mlp",
            "svd_network",
        ),
        "l0bayes.data.files": ("ImageDataset",),
        "l0bayes.data.images": ("image_splits",),
        "l0bayes.distributions.log_uniform": (
            "LOG_ALPHA_RANGE",
            "LogUniform",
            "log_alpha_of",
            "sparse_vd_kl",
        ),
        "l0bayes.nn.layers": ("check_conv_input", "init_conv", "init_weights"),
        "l0bayes.training.loop": ("FitResult", "error_rate", "fit"),
    },
    "l0bayes.tables": {
        "l0bayes.viz.tables": (
            "Table",
            "command_line",
            "finite",
            "indices",
            "mean_sd",
            "nonfinite_count",
            "nonfinite_note",
            "tex_escape",
            "to_latex",
            "to_markdown",
            "write_csv",
        ),
    },
    "l0bayes.train": {
        "l0bayes.data.files": ("ImageDataset", "load_cifar", "load_fashion_mnist", "load_mnist"),
        "l0bayes.data.images": (
            "Images",
            "SYNTHETIC_SIZES",
            "epoch_order",
            "image_splits",
            "synthetic_images",
        ),
        "l0bayes.device": ("resolve_device", "torch_threads"),
        "l0bayes.nn.layers": ("L0Network", "WEIGHT_INITS", "check_precision"),
        "l0bayes.nn.networks": (
            "NETWORKS",
            "get_network",
            "network_architecture",
            "network_expected_cost",
        ),
        "l0bayes.training.averaging": ("Lagrangian", "ParameterEMA"),
        "l0bayes.training.checkpoint": (
            "load_checkpoint",
            "rng_state",
            "save_checkpoint",
            "set_rng_state",
            "write_json",
            "write_text",
        ),
        "l0bayes.training.config": (
            "DATASETS",
            "ELBOS",
            "LOG_ALPHA_RANGE",
            "RESUMABLE",
            "TARGETS",
            "TrainConfig",
        ),
        "l0bayes.training.datasets": ("load_dataset",),
        "l0bayes.training.records": ("environment", "history_csv"),
        "l0bayes.training.run_directory": (
            "MARKER",
            "open_run",
            "prepare_new_run",
            "run_lock",
            "write_marker",
        ),
        "l0bayes.training.trainer": (
            "RunState",
            "Trainer",
            "TrainingInterrupted",
            "build_network",
            "load_network",
            "train",
        ),
    },
    "l0bayes.varbvs": {
        "l0bayes.linear_model.varbvs": ("ORDERS", "VarbvsFit", "varbvs"),
        "l0bayes.validation": (
            "check_Xy",
            "check_choice",
            "check_count",
            "check_not_constant",
            "check_positive",
        ),
    },
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MOVED` and loads each as a module re-exporting its
    names from their new modules, with a :class:`DeprecationWarning`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        homes = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} is deprecated: import from "
            f"{', '.join(sorted(homes))} (or from l0bayes) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        names = []
        for home, moved in homes.items():
            new = importlib.import_module(home)
            for name in moved:
                setattr(module, name, getattr(new, name))
                names.append(name)
        module.__all__ = sorted(names)
        module.__doc__ = f"Deprecated alias; see {', '.join(sorted(homes))}."


def install() -> None:
    """Register the finder (once)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())


__all__ = ["MOVED", "MovedModuleFinder", "install"]
