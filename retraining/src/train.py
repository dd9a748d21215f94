"""Minimal retraining step: read the new CSV, fit a nearest-centroid classifier
on its numeric columns, write the model and metrics.

Deliberately dependency-free (standard library only) so the placeholder runs on
any environment; replace the fitting with the real credit-risk training code.

    python train.py --training-data data.csv --model-dir out/ [--label default]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of ``path``; a folder (uri_folder mount) contributes all its *.csv."""
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    rows: list[dict[str, str]] = []
    for file in files:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def numeric_columns(rows: list[dict[str, str]], label: str) -> list[str]:
    def is_number(value: str) -> bool:
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False

    columns = [c for c in rows[0] if c != label]
    return [c for c in columns if all(is_number(row[c]) for row in rows)]


def fit(rows: list[dict[str, str]], label: str) -> dict:
    features = numeric_columns(rows, label)
    if not features:
        raise SystemExit("no numeric feature columns to train on")
    vectors = [[float(row[c]) for c in features] for row in rows]
    labels = [row[label] for row in rows]
    n = len(vectors)
    mean = [sum(v[i] for v in vectors) / n for i in range(len(features))]
    std = [math.sqrt(sum((v[i] - mean[i]) ** 2 for v in vectors) / n) or 1.0 for i in range(len(features))]
    scaled = [[(v[i] - mean[i]) / std[i] for i in range(len(features))] for v in vectors]
    centroids = {}
    for cls in sorted(set(labels)):
        members = [s for s, y in zip(scaled, labels, strict=True) if y == cls]
        centroids[cls] = [sum(m[i] for m in members) / len(members) for i in range(len(features))]
    return {
        "kind": "nearest-centroid",
        "label": label,
        "features": features,
        "mean": mean,
        "std": std,
        "centroids": centroids,
    }


def predict(model: dict, row: dict[str, str]) -> str:
    x = [(float(row[c]) - m) / s for c, m, s in zip(model["features"], model["mean"], model["std"], strict=True)]
    return min(
        model["centroids"], key=lambda cls: sum((a - b) ** 2 for a, b in zip(x, model["centroids"][cls], strict=True))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-data", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--label", default="default", help="label column (default: %(default)s)")
    args = parser.parse_args(argv)

    rows = read_rows(args.training_data)
    if not rows:
        raise SystemExit(f"no rows in {args.training_data}")
    if args.label not in rows[0]:
        raise SystemExit(f"label column {args.label!r} not in {sorted(rows[0])}")
    model = fit(rows, args.label)
    accuracy = sum(predict(model, row) == row[args.label] for row in rows) / len(rows)
    metrics = {
        "rows": len(rows),
        "features": len(model["features"]),
        "classes": sorted(model["centroids"]),
        "train_accuracy": accuracy,
    }

    args.model_dir.mkdir(parents=True, exist_ok=True)
    (args.model_dir / "model.json").write_text(json.dumps(model, indent=2))
    (args.model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
