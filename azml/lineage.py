"""Lineage record of a model version: ``azml lineage`` writes ``lineage.json``.

A record ties a registered model version to what produced it: the sha256 of
each training-data file (or, for DVC-tracked data, the hash DVC recorded plus
the sha256 of the ``.dvc`` file, without reading the data), the git commit of
the code and whether the work tree had local changes, and the sha256 of the
environment lock. A composite sha256 over all of it (canonical JSON) names the
record; the record is turned into the deployment tags the policy pack checks
(:func:`record_tags`), and ``azml retrain check`` reads the training time and
accuracy from it.

See docs/retraining-and-lineage.md for the layout and the tags.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from .jsonfile import JsonInputError, read_json
from .naming import label


SCHEMA_VERSION = 1
DEFAULT_ENV_LOCK = "requirements.lock"
DEFAULT_OUT = "lineage.json"

# Deployment tags (Azure: values up to 256 characters; keys without < > % & \ ? /).
TAG_MODEL_NAME = "model-name"
TAG_MODEL_VERSION = "model-version"
TAG_TRAINING_RUN = "training-run"
TAG_TRAINED_AT = "trained-at"
TAG_LINEAGE = "lineage-sha256"
TAG_GIT_COMMIT = "git-commit"
TAG_GIT_DIRTY = "git-dirty"
TAG_DATA = "data-sha256"
TAG_ENV_LOCK = "env-lock-sha256"
#: Tags every record yields (the others only when the record knows the value).
ALWAYS_TAGS = (TAG_MODEL_NAME, TAG_MODEL_VERSION, TAG_LINEAGE, TAG_DATA, TAG_ENV_LOCK)
MAX_TAG_VALUE = 256
_TAG_KEY_FORBIDDEN = re.compile(r"[<>%&\\?/]")

_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
_ASSET_VERSION = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,29}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_CHUNK = 1 << 20


class LineageError(ValueError):
    """Bad input or a broken record; the message is one line naming what is wrong."""


# --------------------------------------------------------------------------- hashing


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: the text the composite hash covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def hash_directory(root: Path) -> tuple[str, int, int]:
    """``(sha256, files, bytes)`` of a directory tree: the sha256 of the lines
    ``<relative POSIX path>\\0<sha256 of the file>\\n`` in sorted path order
    (so the same tree hashes the same on every machine). Symbolic links to
    directories are not followed; empty directories do not count."""
    entries: list[tuple[str, Path]] = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in files:
            path = Path(directory, name)
            if path.is_file():
                entries.append((path.relative_to(root).as_posix(), path))
    entries.sort(key=lambda item: item[0])
    digest = hashlib.sha256()
    total = 0
    for relative, path in entries:
        digest.update(f"{relative}\0{sha256_file(path)}\n".encode("utf-8"))
        total += path.stat().st_size
    return digest.hexdigest(), len(entries), total


# --------------------------------------------------------------------------- data entries


def _display_path(path: Path, base: Path) -> str:
    """POSIX path relative to ``base`` when inside it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(base.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _dvc_outs(dvc_file: Path) -> list[dict[str, Any]]:
    """The ``outs`` DVC recorded: path and content hash of each output."""
    from .yamlfile import YamlInputError, read_yaml

    try:  # bounded like a stack file: a .dvc file arrives in pull requests too
        document = read_yaml(dvc_file, what="DVC file")
    except YamlInputError as error:
        reason = error.problems[0].removeprefix(f"{dvc_file.name}:").strip()
        raise LineageError(f"--data {dvc_file}: not a DVC file ({reason})") from None
    outs = document.get("outs") if isinstance(document, dict) else None
    if not isinstance(outs, list) or not outs:
        raise LineageError(f"--data {dvc_file}: not a DVC file (no 'outs' list)")
    result = []
    for index, out in enumerate(outs):
        if not isinstance(out, dict):
            raise LineageError(f"--data {dvc_file}: outs[{index}] is not a mapping")
        # DVC 3: md5 holds the value and hash names its kind ("md5"); some
        # remotes record etag or checksum instead; accept a hex value in hash too.
        value, kind = None, None
        for key in ("md5", "etag", "checksum"):
            if isinstance(out.get(key), str) and out[key]:
                value, kind = out[key], key
                break
        declared = out.get("hash")
        if value is None and isinstance(declared, str) and len(declared) >= 32:
            value, kind = declared, "hash"
        elif value is not None and isinstance(declared, str) and kind == "md5":
            kind = declared  # "md5" (DVC 3) or a legacy marker such as "md5-dos2unix"
        if value is None:
            raise LineageError(f"--data {dvc_file}: outs[{index}] records no hash (md5, etag, checksum or hash)")
        entry: dict[str, Any] = {"path": str(out.get("path", "")), "hash": str(value), "hashType": kind}
        for key in ("size", "nfiles"):
            if isinstance(out.get(key), int):
                entry[key] = out[key]
        result.append(entry)
    return result


def data_entry(given: Path, base: Path) -> dict[str, Any]:
    """One ``data`` entry of the record; ``digest`` identifies the content."""
    dvc_file: Path | None = None
    if given.suffix == ".dvc" and given.is_file():
        dvc_file, data_path = given, given.with_suffix("")
    elif Path(f"{given}.dvc").is_file():
        dvc_file, data_path = Path(f"{given}.dvc"), given
    else:
        data_path = given
    if dvc_file is not None:
        outs = _dvc_outs(dvc_file)
        dvc_sha = sha256_file(dvc_file)
        content = outs[0]["hash"] if len(outs) == 1 else sha256_json([[o["path"], o["hash"]] for o in outs])
        return {
            "path": _display_path(data_path, base),
            "kind": "dvc",
            "digest": f"{outs[0]['hashType'] if len(outs) == 1 else 'sha256'}:{content}",
            "dvcFile": _display_path(dvc_file, base),
            "dvcFileSha256": dvc_sha,
            "outs": outs,
        }
    if data_path.is_dir():
        digest, files, size = hash_directory(data_path)
        if files == 0:
            raise LineageError(f"--data {given}: the directory holds no files")
        return {"path": _display_path(data_path, base), "kind": "directory", "digest": f"sha256:{digest}",
                "sha256": digest, "files": files, "bytes": size}
    if data_path.is_file():
        digest = sha256_file(data_path)
        return {"path": _display_path(data_path, base), "kind": "file", "digest": f"sha256:{digest}",
                "sha256": digest, "bytes": data_path.stat().st_size}
    raise LineageError(f"--data {given}: no such file or directory (and no {given}.dvc)")


def data_sha256(entries: list[dict[str, Any]]) -> str:
    """One hash for all training data: sha256 of the canonical JSON of the
    sorted ``[path, digest]`` pairs."""
    return sha256_json(sorted([e["path"], e["digest"]] for e in entries))


# --------------------------------------------------------------------------- git


def git_state(directory: Path) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the work tree holding ``directory``; both
    ``None`` outside a git work tree (or without git). Dirty means tracked
    files differ from the commit (untracked files do not count)."""
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


# --------------------------------------------------------------------------- the record


def parse_model(text: str, option: str = "--model") -> tuple[str, str]:
    name, sep, version = text.partition(":")
    if not sep or not _ASSET_NAME.match(name) or not _ASSET_VERSION.match(version):
        raise LineageError(f"{option}: expected NAME:VERSION of a registered model (e.g. credit-risk:3), got {text!r}")
    return name, version


def parse_time(text: str, option: str) -> dt.datetime:
    """An ISO 8601 time; without a UTC offset it is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LineageError(f"{option}: expected an ISO 8601 time such as 2026-11-26T08:00:00Z, got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _hashed_part(record: dict[str, Any]) -> dict[str, Any]:
    """What the composite hash covers: everything but the hash itself, the
    creation time and the derived tags (so equal inputs give equal hashes)."""
    return {k: record[k] for k in ("schemaVersion", "model", "training", "data", "git", "environment")}


def build_record(
    model: tuple[str, str],
    data: list[dict[str, Any]],
    git: dict[str, Any],
    env_lock: tuple[str, str],
    training: dict[str, Any],
    created_at: dt.datetime,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "model": {"name": model[0], "version": model[1]},
        "training": training,
        "data": sorted(data, key=lambda e: e["path"]),
        "dataSha256": data_sha256(data),
        "git": git,
        "environment": {"lock": env_lock[0], "sha256": env_lock[1]},
    }
    record["lineageSha256"] = sha256_json({**_hashed_part(record), "dataSha256": record["dataSha256"]})
    record["createdAt"] = iso(created_at)
    record["tags"] = record_tags(record)
    return record


def record_tags(record: dict[str, Any]) -> dict[str, str]:
    """The deployment tags of a record (see the module docs for the keys)."""
    training = record.get("training") or {}
    git = record.get("git") or {}
    tags = {
        TAG_MODEL_NAME: record["model"]["name"],
        TAG_MODEL_VERSION: record["model"]["version"],
        TAG_LINEAGE: record["lineageSha256"],
        TAG_DATA: record["dataSha256"],
        TAG_ENV_LOCK: record["environment"]["sha256"],
    }
    if training.get("run"):
        tags[TAG_TRAINING_RUN] = str(training["run"])
    if training.get("trainedAt"):
        tags[TAG_TRAINED_AT] = str(training["trainedAt"])
    if git.get("commit"):
        tags[TAG_GIT_COMMIT] = str(git["commit"])
        if git.get("dirty") is not None:
            tags[TAG_GIT_DIRTY] = "true" if git["dirty"] else "false"
    for key, value in tags.items():
        if _TAG_KEY_FORBIDDEN.search(key) or len(value) > MAX_TAG_VALUE:
            raise LineageError(f"tag {key}: value longer than {MAX_TAG_VALUE} characters (Azure's limit)")
    return tags


#: A lineage record names a model, its data and environment: a few KB.
MAX_RECORD_BYTES = 1024 * 1024


def read_record(path: Path) -> dict[str, Any]:
    """A lineage.json, checked: layout, and the composite hash against its
    contents (a hand-edited record is refused). Raises :class:`LineageError`."""
    try:  # a record named by a stack file is input from a pull request: strict and bounded
        record = read_json(path, max_bytes=MAX_RECORD_BYTES)
    except JsonInputError as error:
        raise LineageError(error.problems[0]) from None
    if not isinstance(record, dict) or record.get("schemaVersion") != SCHEMA_VERSION:
        raise LineageError(f"{path}: not a lineage record (schemaVersion {SCHEMA_VERSION} expected)")
    try:
        model = record["model"]
        if not (isinstance(model, dict) and _ASSET_NAME.match(str(model["name"])) and _ASSET_VERSION.match(str(model["version"]))):
            raise LineageError(f"{path}: model must be {{name, version}} of a registered model")
        for entry in record["data"]:
            entry["path"], entry["digest"]
        expected_data = data_sha256(record["data"])
        expected = sha256_json({**_hashed_part(record), "dataSha256": record["dataSha256"]})
        record["environment"]["sha256"]
    except (KeyError, TypeError) as error:
        raise LineageError(f"{path}: not a lineage record (missing {error})") from None
    if record["dataSha256"] != expected_data or record.get("lineageSha256") != expected:
        raise LineageError(f"{path}: lineageSha256 does not match the record's contents (edited after it was written?)")
    training = record.get("training") or {}
    if not isinstance(training, dict):
        raise LineageError(f"{path}: training must be a mapping")
    accuracy = training.get("accuracy")
    if accuracy is not None and not (isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1):
        raise LineageError(f"{path}: training.accuracy must be a number in 0..1")
    if training.get("trainedAt") is not None:
        try:
            parse_time(str(training["trainedAt"]), "training.trainedAt")
        except LineageError as error:
            raise LineageError(f"{path}: {error}") from None
    return record


def record_problems(path: Path, model_name: str | None, model_version: str | None) -> list[str]:
    """Why ``path`` cannot be the lineage of a deployment serving that model."""
    try:
        record = read_record(path)
    except LineageError as error:
        return [str(error)]
    recorded = (record["model"]["name"], record["model"]["version"])
    if model_name is not None and recorded != (model_name, model_version):
        return [f"{path.name} records model {label(*recorded)} but the deployment serves {label(model_name, model_version)}"]
    return []
