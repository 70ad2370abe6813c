"""Defaults and constants that the library uses and the command line shows, each written once.

As with torch-fidelity's ``DEFAULTS``: the library's settings (:class:`gvae.generation.GenerateConfig`, the
eval :class:`gvae.evaluation.Protocol`, :class:`gvae.evaluation.utility.UtilitySettings`, the domain feature
network's training) take their defaults from here, and the command line's defaults and help text read the same
names, so the two cannot drift apart. This module imports nothing, so the command line reads it without loading
torch-fidelity, accelerate or the models. Settings whose module the command line imports anyway
(:class:`gvae.data.PackConfig`) keep their defaults in their dataclass, and ``gvae data pack`` reads them there.
"""

# gvae generate
GENERATE_BLOCK = 64  # sample indices per group, and source images per encoder pass: the fixed batch composition
GENERATE_BATCH_SIZE = 64  # images decoded per step while the previous step's are PNG-encoded
GENERATE_SHARD_SIZE = 1000  # images per shard (per folder for --format png)
REALISM_CALIBRATION = 1024  # candidates whose discriminator logits set the --min-realism threshold
GENERATE_FORMATS = ("wds", "png", "imagefolder")  # --format
GENERATE_PRECISIONS = ("fp32", "bf16")  # --precision, of the decoder's and the discriminator's passes
CLASS_BALANCES = ("data", "uniform")  # --class-balance: the training set's class frequencies, or equal

# gvae eval: the protocol
EVAL_NUM_SAMPLES = 1000  # images drawn from the model for the sample metrics
EVAL_IWAE_K = 100  # importance samples per held-out image
EVAL_NUM_REAL = 10000  # held-out images read, at most
EVAL_NUM_TRAIN = 20000  # training images read for memorisation and utility, at most
EVAL_BATCH_SIZE = 256  # images (or image x importance-sample pairs) per forward pass
MSSSIM_PAIRS = 1000  # random sample pairs averaged for the MS-SSIM diversity
KID_SUBSETS = 100  # KID's std is over this many subsets
ISC_SPLITS = 10  # the Inception Score's std is over this many splits of the samples (and needs as many)
PRC_NEIGHBORHOOD = 3  # k of the k-NN manifolds of precision and recall (they need k + 1 images)

# gvae eval utility: classifiers trained with synthetic images
UTILITY_KS = (10, 100)  # real images per class, one set of variants each
UTILITY_SEEDS = 3  # classifier seeds, each with its own real subset
UTILITY_MIX_RATIO = 1.0  # synthetic images per real image in a training batch
UTILITY_STEPS = 900  # optimizer steps per classifier
UTILITY_BATCH_SIZE = 64  # images per optimizer step
UTILITY_SYNTHETIC_PER_CLASS = 500  # images per class a model makes

# gvae eval train-features: the domain feature network
FEATURES_EPOCHS = 3
FEATURES_BATCH_SIZE = 128

# gvae eval temperature: the sampling temperatures tried
TEMPERATURE_GRID = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
