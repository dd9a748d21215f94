"""One MLflow run per drift report (kind=drift), as the retraining check reads it."""

from __future__ import annotations

import re
from typing import Any

from ... import tracking as t
from ..engine import DriftReport
from .report import HTML_NAME, JSON_NAME, MARKDOWN_NAME, to_html, to_json_text, to_markdown

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
#: drift, ok or inconclusive (too few rows): `azml retrain check` reads it.
TAG_STATUS = "azml.drift.status"


def metric_key(prefix: str, feature: str) -> str:
    """MLflow keys allow letters, digits, _ - . space and /: anything else becomes _."""
    return f"{prefix}.{_UNSAFE.sub('_', feature)}"


def log_report(
    report: DriftReport,
    tracking_uri: str,
    experiment: str,
    *,
    stack: str | None = None,
    endpoint: str | None = None,
    deployment: str | None = None,
    metadata: dict[str, Any] | None = None,
    html: str | None = None,
) -> str:
    """Log ``report`` as a finished run; return its run id. Artifacts are stored
    before the run is marked FINISHED, so a reader never sees half a record."""
    client = t.client(tracking_uri)
    tags = {t.TAG_KIND: t.KIND_DRIFT, TAG_STATUS: report.status}
    for tag, value in ((t.TAG_STACK, stack), (t.TAG_ENDPOINT, endpoint), (t.TAG_DEPLOYMENT, deployment)):
        if value:
            tags[tag] = value
    run = client.create_run(t.experiment_id(client, experiment), run_name="drift", tags=tags)
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric, Param

        metrics = [Metric("max_psi", report.max_psi, 0, 0), Metric("drifted_features", float(len(report.drifted)), 0, 0)]
        for feature in report.features:
            metrics.append(Metric(metric_key("psi", feature.name), feature.psi, 0, 0))
            metrics.append(Metric(metric_key("jsd", feature.name), feature.jensen_shannon, 0, 0))
            for prefix, value in (("nwd", feature.wasserstein), ("chi2_pvalue", feature.chi2_pvalue)):
                if value is not None:
                    metrics.append(Metric(metric_key(prefix, feature.name), value, 0, 0))
            if feature.ks_statistic is not None:
                metrics.append(Metric(metric_key("ks_statistic", feature.name), feature.ks_statistic, 0, 0))
                metrics.append(Metric(metric_key("ks_pvalue", feature.name), feature.ks_pvalue or 0.0, 0, 0))
        params = [
            Param("bins", str(report.bins)),
            Param("epsilon", repr(report.epsilon)),
            Param("threshold", repr(report.default_threshold)),
            Param("features", str(len(report.features))),
            Param("min_samples", str(report.min_samples)),
            Param("metric_thresholds", ",".join(f"{k}={v!r}" for k, v in report.metric_thresholds.items())),
        ]
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000], params=params if start == 0 else [])
        client.log_text(run_id, to_json_text(report, metadata), JSON_NAME)
        client.log_text(run_id, to_markdown(report), MARKDOWN_NAME)
        client.log_text(run_id, html if html is not None else to_html(report), HTML_NAME)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
