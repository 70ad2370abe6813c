"""Data: pack raw images into WebDataset shards, and read them back for training, evaluation and generation.

Public API (used by the train, eval and generate commands):
  resolve_shards(spec, split="train") -> list[str]          shard paths/URLs named by a pattern, dir, list, URLs
  read_dataset_info(spec) -> dict | None                    the dataset.json beside the shards
  TrainLoader(spec, *, batch_size, resolution, channels, ...)  infinite, sharded, resumable training batches
  iter_samples(spec, split="val", limit=None)               ordered decoded samples, no shuffling
  load_images(spec, split="val", limit=None) -> (images, labels)
  encode_png(image) -> bytes;  write_shard(path, samples) -> {"count", "sha256"}  (atomic)
  pack(PackConfig) -> dict                                  what ``gvae data pack`` runs
  MixedDataset(real, synthetic, synthetic_fraction, seed)   real + synthetic samples for a user's own training,
      with SyntheticSet(generated set) or ModelSamples(model) as the synthetic source
"""

from gvae.data.mixing import MixedDataset, ModelSamples, SyntheticSet
from gvae.data.pack import PackConfig, pack
from gvae.data.reader import iter_samples, load_images
from gvae.data.shards import TrainLoader
from gvae.data.spec import read_dataset_info, resolve_shards
from gvae.data.writer import AtomicShardWriter, encode_png, write_shard

__all__ = ["AtomicShardWriter", "MixedDataset", "ModelSamples", "PackConfig", "SyntheticSet", "TrainLoader",
           "encode_png", "iter_samples", "load_images", "pack", "read_dataset_info", "resolve_shards", "write_shard"]
