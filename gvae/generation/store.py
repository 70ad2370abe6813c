"""The output directory of a generated set: shards written atomically, per-shard records, the final manifest.

Layout (shard j holds samples [j * S, min((j + 1) * S, N)), keys are the 8-digit sample indices)::

    train-000000.tar ...        --format wds: WebDataset shards (png, cls when labelled, json), and
    dataset.json                a dataset description, so the set is a drop-in ``data.train`` for gvae train
    000000/00000000.png ...     --format png: one folder per shard, with samples.jsonl (key, cls, json)
    <class>/00000000.png ...    --format imagefolder: torchvision's ImageFolder layout, one folder per class
    000000.jsonl ...            (imagefolder) shard j's listing: key, file, cls, json per sample
    manifest.json               what the set is and the sha256 of every shard; written last
    .generate/                  while a run is unfinished: identity.json and one record per finished shard

A shard is written under a temporary name (``.train-000000.tar.partial``, ``.000000.partial/``) and renamed
into place when complete; its record (count, bytes, sha256, exact pixel sums, filter rejections) is written
after the rename, so a shard with a record is complete. The sha256 is taken as the shard is written (a tar's
bytes as they stream out; a folder's files as they are written), by the rank that writes it, so the manifest
needs no second read of the set. A rerun keeps every shard whose record matches the count it should have and
rewrites the others. When the run ends, rank 0 writes the manifest (the records moved into it) and removes
``.generate/``; a later run that extends the set turns the manifest back into records first. A folder's
sha256 is that of its ``sha256sum``-style listing: "<file sha256>  <name>\\n" per file, sorted by name; an
imagefolder shard's sha256 is that of the same kind of listing of its .jsonl and its images (named by their
path below OUT).

An imagefolder shard's images are spread over the class folders, so it cannot be one rename: they are built
in ``.000000.partial/<class>/`` and moved into place on close, and the listing, renamed into place last, is
what marks the shard complete. A rewrite (after a crash, or a different --num) removes the files of the
previous listing that the new one lacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from gvae.data.dataset_info import DATASET_INFO, write_dataset_info
from gvae.data.writer import PARTIAL_SUFFIX, AtomicShardWriter
from gvae.errors import GvaeError
from gvae.fileio import read_json, sha256_file, write_bytes_atomic, write_json_atomic

STATE_DIR = ".generate"
MANIFEST = "manifest.json"
_SHARD = {"wds": r"train-(\d{6})\.tar", "png": r"(\d{6})", "imagefolder": r"(\d{6})\.jsonl"}  # per format
_OWN_FILES = {MANIFEST, DATASET_INFO, STATE_DIR, *(f".{name}{PARTIAL_SUFFIX}" for name in (MANIFEST, DATASET_INFO))}
IDENTITY_KEYS = ("checkpoint_sha256", "ema", "seed", "temperature", "format", "shard_size", "block",
                 "from_data", "filters", "labels", "precision")  # what makes two runs the same set (filters: settings)
ADDED_KEYS = {"precision": "fp32"}  # identity keys added since sets were first made, with their value in those sets
UNLABELLED = "unlabelled"  # the imagefolder class folder of samples without a class name


def numbered_shard(fmt: str, j: int) -> str:
    """The name of shard j of a set in format ``fmt`` (the listing of an imagefolder shard). Not
    :func:`gvae.data.spec.shard_name`, which takes a shard's file name out of a path, URL or pipe command."""
    return {"wds": f"train-{j:06d}.tar", "png": f"{j:06d}", "imagefolder": f"{j:06d}.jsonl"}[fmt]


def class_folder(name: str) -> str:
    """A class name as one folder name: path separators become "_" (Fashion-MNIST's "T-shirt/top" ->
    "T-shirt_top"); a name that is empty or all dots becomes "_"."""
    folder = name.replace("/", "_").replace("\\", "_").strip()
    return folder if folder.strip(".") else "_"


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def _listed_files(listing: Path) -> list[str]:
    """The image files (relative to OUT) an imagefolder shard's listing names; [] when there is none."""
    if not listing.is_file():
        return []
    return [json.loads(line)["file"] for line in listing.read_text().splitlines() if line]


def _listing_sha256(digests: dict[str, str]) -> str:
    """The sha256 of a folder shard: that of its listing, "<file sha256>  <name>\\n" per file sorted by name."""
    listing = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    return hashlib.sha256(listing.encode()).hexdigest()


def sha256_of_shard(path: Path) -> str:
    """The sha256 of a shard, read from its files (see the module docstring for a folder's)."""
    if path.suffix == ".jsonl":
        files = {path.name: path, **{rel: path.parent / rel for rel in _listed_files(path)}}
    elif path.is_dir():
        files = {p.name: p for p in path.iterdir()}
    else:
        return sha256_file(path)
    return _listing_sha256({name: sha256_file(file) for name, file in files.items()})


def _matcher(fmt: str, suffix: str = "") -> re.Pattern:
    """Names of this format's shards (with ``suffix``: their records), or their temporary ``.NAME.partial``
    (for imagefolder shards also the ``.NNNNNN.partial/`` folder their images are built in)."""
    shard = _SHARD[fmt] + re.escape(suffix)
    partial = re.escape(PARTIAL_SUFFIX)
    staging = rf"|\.\d{{6}}{partial}" if fmt == "imagefolder" and not suffix else ""
    return re.compile(rf"^(?:{shard}|\.{shard}{partial}{staging})$")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
        return
    if path.suffix == ".jsonl":  # an imagefolder shard: its images first
        for rel in _listed_files(path):
            (path.parent / rel).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


class PngShardWriter:
    """A folder of PNGs plus samples.jsonl, built in ``.NAME.partial/`` and renamed into place on close."""

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name("." + path.name + PARTIAL_SUFFIX)
        _remove(self.partial)
        self.partial.mkdir()
        self.lines: list[str] = []
        self.digests: dict[str, str] = {}  # file name -> sha256 of what was written

    def write(self, sample: dict[str, Any]) -> None:
        name = f"{sample['__key__']}.png"
        (self.partial / name).write_bytes(sample["png"])
        self.digests[name] = hashlib.sha256(sample["png"]).hexdigest()
        entry = {k: sample[k] for k in ("__key__", "cls", "json") if k in sample}
        self.lines.append(json.dumps(entry, sort_keys=True) + "\n")

    def close(self) -> dict[str, Any]:
        """Put the shard in place; returns ``{"count", "sha256"}`` like :class:`AtomicShardWriter`."""
        listing = "".join(self.lines).encode()
        (self.partial / "samples.jsonl").write_bytes(listing)
        self.digests["samples.jsonl"] = hashlib.sha256(listing).hexdigest()
        if self.path.exists():  # an outdated version of this shard (a run with another N)
            _remove(self.path)
        os.replace(self.partial, self.path)
        return {"count": len(self.lines), "sha256": _listing_sha256(self.digests)}

    def abort(self) -> None:
        _remove(self.partial)


class ImageFolderShardWriter:
    """Shard ``path`` (OUT/NNNNNN.jsonl) of --format imagefolder: images to OUT/<class>/<key>.png, then the
    listing (see the module docstring for how it stays atomic)."""

    def __init__(self, path: Path):
        self.path, self.out = path, path.parent
        self.partial = path.with_name("." + path.stem + PARTIAL_SUFFIX)
        _remove(self.partial)
        self.partial.mkdir()
        self.lines: list[str] = []
        self.digests: dict[str, str] = {}  # image path below OUT -> sha256 of what was written

    def write(self, sample: dict[str, Any]) -> None:
        rel = f"{class_folder(sample['json'].get('class', UNLABELLED))}/{sample['__key__']}.png"
        (self.partial / rel).parent.mkdir(exist_ok=True)
        (self.partial / rel).write_bytes(sample["png"])
        self.digests[rel] = hashlib.sha256(sample["png"]).hexdigest()
        entry = {"file": rel, **{k: sample[k] for k in ("__key__", "cls", "json") if k in sample}}
        self.lines.append(json.dumps(entry, sort_keys=True) + "\n")

    def close(self) -> dict[str, Any]:
        """Put the shard in place; returns ``{"count", "sha256"}`` like :class:`AtomicShardWriter`."""
        previous = _listed_files(self.path)
        for rel in self.digests:
            (self.out / rel).parent.mkdir(exist_ok=True)
            os.replace(self.partial / rel, self.out / rel)
        for rel in set(previous) - set(self.digests):
            (self.out / rel).unlink(missing_ok=True)
        listing = "".join(self.lines).encode()
        write_bytes_atomic(self.path, listing)
        shutil.rmtree(self.partial)
        digests = {**self.digests, self.path.name: hashlib.sha256(listing).hexdigest()}
        return {"count": len(self.lines), "sha256": _listing_sha256(digests)}

    def abort(self) -> None:
        _remove(self.partial)


class OutputDir:
    """One generated set's directory, seen from one rank. ``identity``: the IDENTITY_KEYS of this run."""

    def __init__(self, out: str | Path, identity: dict[str, Any]):
        self.out, self.identity = Path(out), identity
        self.fmt = identity["format"]
        self.state = self.out / STATE_DIR

    def check(self) -> None:
        """Raise GvaeError, touching nothing, if the directory holds anything but (part of) this same set."""
        if not self.out.exists():
            return
        if not self.out.is_dir():
            raise GvaeError(f"--out {self.out} is a file; give a directory")
        found, listed = None, None
        if (self.state / "identity.json").is_file():
            found = read_json(self.state / "identity.json", "generation state")
        elif (self.out / MANIFEST).is_file():
            manifest = read_json(self.out / MANIFEST, "manifest")
            listed = {entry["name"] for entry in manifest["shards"]}
            found = {k: manifest.get(k) for k in IDENTITY_KEYS}
        elif [p for p in self.out.iterdir() if p.name != STATE_DIR and not _matcher(self.fmt).match(p.name)]:
            raise GvaeError(f"--out {self.out} is not empty and holds no gvae generate output; give a new or "
                            f"empty directory")
        self._check_no_foreign_files(listed)
        if found is not None:
            found.update({key: value for key, value in ADDED_KEYS.items() if found.get(key) is None})
        for key, mine in self.identity.items():  # the manifest's dicts also hold results, e.g. rejections, and
            if found is not None and isinstance(mine, dict) and isinstance(found.get(key), dict):  # a setting
                found[key] = {k: found[key].get(k) for k in mine}  # added since (absent there) is its default
        if found is not None and found != self.identity and not self._nothing_written():
            differ = ", ".join(f"{k} {found.get(k)!r} there, {self.identity[k]!r} here"
                               for k in IDENTITY_KEYS if found.get(k) != self.identity[k])
            raise GvaeError(f"--out {self.out} holds another generated set ({differ}); use a new --out, or "
                            f"delete it to replace it")

    def _nothing_written(self) -> bool:
        """An unfinished run that failed before finishing any shard (e.g. a bad --from-data source): its
        identity alone holds no images, and must not keep another set out of the directory."""
        if (self.out / MANIFEST).is_file():
            return False
        states = [p.name for p in self.state.iterdir()] if self.state.is_dir() else []
        outputs = [p for p in self.out.iterdir() if p.name != STATE_DIR]
        return not outputs and all(name == "identity.json" or name.endswith(PARTIAL_SUFFIX) for name in states)

    def _check_no_foreign_files(self, listed: set[str] | None) -> None:
        """Refuse a directory with files this set did not write: extending or shrinking the set removes shard
        and temporary files by name, and must never take a user's file with them. A finished set owns exactly
        the shards its manifest lists (``listed``; None for an unfinished run)."""
        ours = _matcher(self.fmt)
        for path in self.out.iterdir():
            name = path.name
            if name in _OWN_FILES:
                continue
            class_folder = self.fmt == "imagefolder" and path.is_dir()  # only files its listings name go
            owned = class_folder or (ours.match(name) and (listed is None or name in listed
                                                           or name.endswith(PARTIAL_SUFFIX)))
            if not owned:
                raise GvaeError(f"--out {self.out} holds {name}, which is not part of this generated set; move "
                                "it elsewhere or use another --out")

    def prepare(self, num_shards: int) -> None:
        """Rank 0, before any rank writes: records from a finished manifest, no temporary files, no shards
        beyond the new end (a smaller N)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        if (self.out / MANIFEST).is_file():
            for entry in read_json(self.out / MANIFEST, "manifest")["shards"]:
                record = {**entry, "bytes": size_of(self.out / entry["name"])}
                write_json_atomic(self.state / f"{entry['name']}.json", record)
        write_json_atomic(self.state / "identity.json", self.identity)
        for name in (MANIFEST, DATASET_INFO):
            (self.out / name).unlink(missing_ok=True)
        shards, records = _matcher(self.fmt), _matcher(self.fmt, ".json")
        for directory, names in ((self.out, shards), (self.state, records)):
            for path in directory.iterdir():
                match = names.match(path.name)
                temporary = path.name.endswith(PARTIAL_SUFFIX) and (match or directory == self.state)
                beyond_end = match and not temporary and int(match.group(1)) >= num_shards
                if temporary or beyond_end:
                    _remove(path)

    def is_complete(self, j: int, count: int) -> bool:
        """Shard j is there, whole, with ``count`` samples (per its record and its size on disk)."""
        name = numbered_shard(self.fmt, j)
        record_path, path = self.state / f"{name}.json", self.out / name
        if not (record_path.is_file() and path.exists()):
            return False
        record = read_json(record_path, "shard record")
        return record["count"] == count and record["bytes"] == size_of(path)

    def open_shard(self, j: int) -> AtomicShardWriter | PngShardWriter | ImageFolderShardWriter:
        path = self.out / numbered_shard(self.fmt, j)
        writers = {"wds": AtomicShardWriter, "png": PngShardWriter, "imagefolder": ImageFolderShardWriter}
        return writers[self.fmt](path)

    def record(self, j: int, stats: dict[str, Any]) -> None:
        """Mark shard j complete (after its rename), with its sample count, sha256, pixel sums and rejections."""
        name = numbered_shard(self.fmt, j)
        write_json_atomic(self.state / f"{name}.json", {"name": name, **stats, "bytes": size_of(self.out / name)})

    def collect(self, num_shards: int) -> list[dict[str, Any]]:
        """Rank 0, after every rank is done: each shard's record, with its sha256 computed from the files."""
        shards = []
        for j in range(num_shards):
            name = numbered_shard(self.fmt, j)
            record = read_json(self.state / f"{name}.json", "shard record")
            del record["bytes"], record["name"]
            sha256 = record.pop("sha256", None) or sha256_of_shard(self.out / name)  # an older gvae's records lack it
            shards.append({"name": name, "count": record.pop("count"), "sha256": sha256, **record})
        return shards

    def publish(self, manifest: dict[str, Any], dataset: dict[str, Any] | None) -> None:
        """dataset.json (if any), then manifest.json, which marks the set finished; the state goes last."""
        if dataset is not None:
            write_dataset_info(self.out, dataset)
        write_json_atomic(self.out / MANIFEST, manifest)
        shutil.rmtree(self.state)
