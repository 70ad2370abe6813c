"""From what a user writes (a pattern, a packed directory, a list file, URLs) to a list of shard paths.

Accepted specs, tried in this order:
  ``pipe:CMD`` or ``scheme://...``      passed through (brace patterns expanded), e.g. ``pipe:aws s3 cp s3://b/x.tar -``
  ``a.tar,b.tar``                       comma-separated list (commas inside ``{...}`` belong to the pattern)
  ``data/phantom``                      a packed directory: the shards of ``split`` named in its dataset.json
  ``shards.txt``                        a text file with one shard per line (relative to the file; ``#`` comments)
  ``data/train-{000000..000127}.tar``   a brace and/or glob pattern; every expanded path must exist
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import re
import tarfile
from pathlib import Path
from typing import Any

import braceexpand
from webdataset.gopen import gopen
from webdataset.tariterators import base_plus_ext, tar_file_expander

from gvae.errors import GvaeError

log = logging.getLogger(__name__)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
# the shard's file name inside a path, URL or pipe command: `pipe:aws s3 cp s3://b/train-000001.tar -`
_SHARD_NAME = re.compile(r"[^\s/]+\.(?:tar\.gz|tar|tgz)(?=[\s?#]|$)")


MAX_SHARDS = 1_000_000  # names a pattern may expand to: more is a typo, and would exhaust memory


def _expand(spec: str) -> list[str]:
    """The brace expansion of ``spec``, read lazily and refused beyond MAX_SHARDS names."""
    names = list(itertools.islice(braceexpand.braceexpand(spec), MAX_SHARDS + 1))
    if len(names) > MAX_SHARDS:
        raise GvaeError(f"{spec}: expands to more than {MAX_SHARDS:,} shard names; check the {{A..B}} range")
    return names


def is_url(spec: str) -> bool:
    return spec.startswith("pipe:") or "://" in spec


def shard_name(shard: str) -> str:
    """The file name of a shard given as a path, URL or pipe command (what dataset.json lists it as)."""
    names = _SHARD_NAME.findall(shard)
    return names[-1] if names else shard.rsplit("/", 1)[-1]


def _split_commas(spec: str) -> list[str]:
    """Split on commas outside braces: ``a-{0,1}.tar,b.tar`` -> [``a-{0,1}.tar``, ``b.tar``]."""
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


def resolve_shards(spec: str, split: str = "train") -> list[str]:
    """The shard paths or URLs that ``spec`` names, in order (see the module docstring for the forms).

    ``split`` matters only for a packed directory. Raises GvaeError when nothing matches or a named local
    shard does not exist.
    """
    spec = str(spec).strip()
    if not spec:
        raise GvaeError("empty shard spec; give a packed dataset directory or a pattern like data/train-{000000..000009}.tar")
    if is_url(spec):
        return _expand(spec)
    parts = _split_commas(spec)
    if len(parts) > 1:
        return [shard for part in parts for shard in resolve_shards(part, split)]
    path = Path(spec)
    if path.is_dir():
        return _from_directory(path, split)
    if path.is_file():
        return [spec] if spec.endswith(TAR_SUFFIXES) else _from_list_file(path)
    expanded = [match for pattern in _expand(spec)
                for match in (sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])]
    missing = [p for p in expanded if not Path(p).is_file()]
    if not expanded or missing:
        example = f" (e.g. {missing[0]})" if missing else ""
        raise GvaeError(f"{spec}: no such shards{example}; give a packed dataset directory, a shard pattern like "
                        f"data/train-{{000000..000009}}.tar, or a list file")
    return expanded


def _from_directory(path: Path, split: str) -> list[str]:
    info = _read_json(path / "dataset.json")
    if info is not None:
        if split not in info.get("splits", {}):
            raise GvaeError(f"{path}: dataset.json has no split {split!r} (it has {', '.join(info['splits'])})")
        shards = [str(path / shard["name"]) for shard in info["splits"][split]["shards"]]
        if not shards:
            raise GvaeError(f"{path}: the {split} split is empty; pack with a --val-fraction above 0 to get one")
        return shards
    shards = sorted(glob.glob(str(path / f"{split}-*.tar")))
    if not shards:
        raise GvaeError(f"{path}: no dataset.json and no {split}-*.tar shards; pack it with `gvae data pack`")
    return shards


def _from_list_file(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise GvaeError(f"{path}: the shard list file is empty")
    return [entry if is_url(entry) or Path(entry).is_absolute() else str(path.parent / entry) for entry in entries]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise GvaeError(f"{path}: unreadable dataset description ({err}); repack or remove it") from None
    return check_dataset_info(info, str(path))


def check_dataset_info(info: Any, where: str) -> dict[str, Any]:
    """``info`` if it has the shape every reader relies on, else one GvaeError saying what is wrong: splits
    mapping to a count and a list of shards (each with a name and a count), and an integer resolution and
    channel count."""
    def fail(what: str) -> GvaeError:
        return GvaeError(f"{where}: not a gvae dataset description ({what}); repack the data or remove it")

    if not isinstance(info, dict):
        raise fail("expected a JSON object")
    for key in ("resolution", "channels"):
        if not isinstance(info.get(key), int) or isinstance(info.get(key), bool):
            raise fail(f"{key} must be an integer")
    splits = info.get("splits")
    if not isinstance(splits, dict):
        raise fail("splits must map split names to their shards")
    for name, entry in splits.items():
        shards = entry.get("shards") if isinstance(entry, dict) else None
        if not isinstance(shards, list) or not isinstance(entry.get("count"), int):
            raise fail(f"splits.{name} needs an integer count and a list of shards")
        for shard in shards:
            if not (isinstance(shard, dict) and isinstance(shard.get("name"), str)
                    and isinstance(shard.get("count"), int)):
                raise fail(f"each shard of splits.{name} needs a name and an integer count")
    return info


def read_dataset_info(spec: str) -> dict[str, Any] | None:
    """The dataset.json beside the shards, or None when there is none.

    For a packed directory, its own; for local shards, the one in the first shard's directory; for URLs and
    pipe commands, the first shard's address with its file name replaced by ``dataset.json``
    (``pipe:aws s3 cp s3://b/train-000000.tar -`` reads ``pipe:aws s3 cp s3://b/dataset.json -``).
    """
    spec = str(spec).strip()
    path = Path(spec)
    if not is_url(spec) and path.is_dir():
        return _read_json(path / "dataset.json")
    try:
        first = resolve_shards(spec)[0]
    except GvaeError:
        return None
    return _read_remote_json(first) if is_url(first) else _read_json(Path(first).parent / "dataset.json")


def _read_remote_json(shard: str) -> dict[str, Any] | None:
    name = shard_name(shard)
    if not _SHARD_NAME.fullmatch(name):
        return None
    at = shard.rindex(name)
    url = shard[:at] + "dataset.json" + shard[at + len(name):]
    try:
        with gopen(url) as stream:
            return json.loads(stream.read())
    except Exception as err:  # a missing file surfaces as the command's or server's own error
        log.info("no dataset.json at %s (%s)", url, err)
        return None


def count_tar_samples(path: str) -> int:
    """Samples in a local shard, from the tar headers alone (no data read); a truncated tar counts what it has."""
    keys = set()
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isreg():
                    keys.add(base_plus_ext(member.name)[0])
    except (tarfile.TarError, OSError, EOFError):
        pass
    return len(keys - {None})


def count_stream_samples(url: str) -> int:
    """Samples in a shard at a URL or pipe command, by reading it once; a broken stream counts what it had."""
    keys = set()
    try:
        with gopen(url) as stream:
            for entry in tar_file_expander([{"url": url, "stream": stream}]):
                keys.add(base_plus_ext(entry["fname"])[0])
    except Exception as err:  # a failed download or a truncated tar: the loader skips what is missing
        log.warning("%s: counted %d samples before an error: %s", url, len(keys - {None}), err)
    return len(keys - {None})


def shard_counts(shards: list[str], info: dict[str, Any] | None) -> list[int]:
    """Samples per shard: from dataset.json where it names the shard, else by counting.

    Local shards are counted from their tar headers; shards at URLs are read once, which costs a download
    per shard on every process, so ship the pack's dataset.json beside remote shards.
    """
    known = {}
    for split in (info or {}).get("splits", {}).values():
        known.update({shard["name"]: shard["count"] for shard in split["shards"]})
    remote = [shard for shard in shards if shard_name(shard) not in known and is_url(shard)]
    if remote:
        log.warning("counting the samples of %d remote shards by reading them once; put the pack's "
                    "dataset.json beside them to skip this", len(remote))
    counts = []
    for shard in shards:
        name = shard_name(shard)
        if name in known:
            counts.append(int(known[name]))
        else:
            counts.append(count_stream_samples(shard) if is_url(shard) else count_tar_samples(shard))
    return counts
