"""Small phantom datasets and tiny recipes that train in a fraction of a second a step."""

import hashlib
import tarfile
from pathlib import Path

from gvae.config import load_recipe
from gvae.data import PackConfig, pack

TINY = {
    "data": "resolution: 32\n  channels: 1\n  workers: 0\n  shuffle_buffer: 16",
    "model": "latent_dim: 8\n  channel_base: 128\n  channel_min: 4\n  channel_max: 16",
    "train": "batch_size: 4\n  max_steps: 4\n  checkpoint_every: 2\n  keep_checkpoints: 5\n  ema_decay: 0.9",
    "log": "every: 1\n  sample_every: 2\n  num_samples: 8",
}


def phantom_data(directory: Path, num: int = 40) -> Path:
    """Pack ``num`` 32 px phantoms (train + val) into ``directory``."""
    if not (directory / "dataset.json").is_file():
        pack(PackConfig(src="-", kind="phantom", out=str(directory), resolution=32, num=num, shard_size=8,
                        val_fraction=0.2))
    return directory


def tiny_recipe_file(directory: Path, data: Path, kind: str = "gvae") -> Path:
    """A recipe file for a tiny model of ``kind`` on ``data``; returns its path."""
    sections = dict(TINY)
    sections["data"] = f"train: {data}\n  val: {data}\n  " + sections["data"]
    sections["model"] = f"kind: {kind}\n  " + sections["model"]
    text = "".join(f"{name}:\n  {body}\n" for name, body in sections.items())
    path = directory / f"tiny-{kind}.yaml"
    path.write_text(text)
    return path


def tiny_recipe(directory: Path, data: Path, kind: str = "gvae", overrides=()):
    return load_recipe(tiny_recipe_file(directory, data, kind), overrides)


def tiny_run(directory: Path, overrides=()) -> Path:
    """A tiny GVAE trained on 32 px phantoms packed in ``directory/data``; returns its run directory."""
    from gvae.train.loop import train

    train(tiny_recipe(directory, phantom_data(directory / "data"), overrides=overrides), directory / "run",
          progress=False)
    return directory / "run"


def sample_hashes(out: Path) -> dict[str, str]:
    """sha256 of every sample's PNG bytes, by key, from wds shards or png folders."""
    hashes = {}
    for tar in sorted(out.glob("train-*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive:
                if member.name.endswith(".png"):
                    hashes[member.name[:-4]] = hashlib.sha256(archive.extractfile(member).read()).hexdigest()
    for png in sorted(out.glob("[0-9]*/*.png")):
        hashes[png.stem] = hashlib.sha256(png.read_bytes()).hexdigest()
    return hashes
