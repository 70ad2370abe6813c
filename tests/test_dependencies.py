"""The dependencies gvae declares are the ones it imports, and the private internals it relies on still exist.

gvae reaches into accelerate, DeepSpeed and webdataset below their public API (see each check's name). An
upgrade that moves one of them fails here, naming the internal, instead of deep inside a training run.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
import sys
from pathlib import Path

import pytest

import gvae

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_requirement_name(s) for s in specs} - {"gvae"}


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "gvae").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"gvae"}


def _distributions_of(module: str) -> set[str]:
    names = importlib.metadata.packages_distributions().get(module, [])
    return {name.lower().replace("_", "-") for name in names}


def test_every_third_party_module_gvae_imports_is_declared():
    missing = {module: _distributions_of(module) for module in _imported_top_level_modules()
               if not _distributions_of(module) & _declared()}
    assert not missing, f"imported by gvae but not declared in pyproject.toml: {missing}"


def test_every_declared_runtime_dependency_is_imported():
    # tensorboard is reached through torch.utils.tensorboard, which imports it itself
    used = set().union(*(_distributions_of(m) for m in _imported_top_level_modules())) | {"tensorboard"}
    unused = {_requirement_name(s) for s in PYPROJECT["project"]["dependencies"]} - used
    assert not unused, f"declared in pyproject.toml but never imported by gvae: {unused}"


def test_the_version_is_written_once():
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gvae.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", gvae.__version__)


def test_the_setuptools_floor_supports_an_spdx_license_string():
    assert isinstance(PYPROJECT["project"]["license"], str)  # PEP 639: setuptools 77 and later
    (floor,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    version = tuple(int(p) for p in floor.split(">=")[1].split("."))
    assert version >= (77, 0, 3)


def test_the_constraints_file_pins_every_runtime_dependency_exactly():
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_requirement_name(name)] = version
    runtime = {_requirement_name(s) for s in PYPROJECT["project"]["dependencies"]}
    assert runtime <= pinned.keys(), f"not in constraints.txt: {runtime - pinned.keys()}"
    assert all(re.fullmatch(r"\d+(\.\d+)*", v) for v in pinned.values())


# ------------------------------------------------------------------ private internals, one check each
def _accelerate_resets_its_state():
    from accelerate.state import AcceleratorState

    assert callable(AcceleratorState._reset_state)  # gvae.train.distributed.build_accelerators


def _accelerate_reads_ds_fields_from_the_environment():
    from accelerate.utils import dataclasses as accelerate_dataclasses

    # build_accelerators pops it, so that a full DeepSpeed config from the recipe sits beside a launch config
    assert "ACCELERATE_CONFIG_DS_FIELDS" in inspect.getsource(accelerate_dataclasses)


def _accelerate_launch_exports_the_deepspeed_settings():
    from accelerate.utils import launch

    source = inspect.getsource(launch)
    for variable in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE",
                     "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE",
                     "ACCELERATE_DEEPSPEED_CONFIG_FILE"):
        assert variable in source, variable


def _accelerate_tensorboard_tracker_takes_a_directory_and_logs_images():
    from accelerate.tracking import TensorBoardTracker

    # gvae.train.trackers: TensorBoard in RUN/tensorboard, sample grids through log_images(dataformats=...)
    assert list(inspect.signature(TensorBoardTracker.__init__).parameters)[:3] == ["self", "run_name", "logging_dir"]
    assert "kwargs" in inspect.signature(TensorBoardTracker.log_images).parameters
    from accelerate import Accelerator

    assert "self.trackers.append" in inspect.getsource(Accelerator)  # a list, which gvae clears after finish()


def _deepspeed_torch_checkpoint_engine_loads_by_path():
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    assert list(inspect.signature(TorchCheckpointEngine.load).parameters) == ["self", "path", "map_location"]
    assert "config_params" in inspect.signature(TorchCheckpointEngine.__init__).parameters


def _deepspeed_engine_keeps_its_checkpoint_engine_and_config():
    from deepspeed.runtime import engine

    source = inspect.getsource(engine.DeepSpeedEngine)
    assert "self.checkpoint_engine" in source and "self._config" in source


def _deepspeed_checkpoint_state_types_import():
    importlib.import_module("gvae.train.deepspeed_loading")  # LossScaler, ZeroStageEnum, fragment_address


def _webdataset_gopen_and_tar_expansion():
    from webdataset.gopen import gopen
    from webdataset.tariterators import base_plus_ext, tar_file_expander

    assert callable(gopen) and callable(tar_file_expander)
    assert base_plus_ext("dir/00000001.cls.txt") == ("dir/00000001", "cls.txt")


def _webdataset_tarfile_samples_takes_a_handler():
    from webdataset.tariterators import tarfile_samples

    assert "handler" in inspect.signature(tarfile_samples).parameters


def _webdataset_tar_writer_takes_owner_and_mtime():
    import webdataset

    assert {"user", "group", "mtime"} <= inspect.signature(webdataset.TarWriter.__init__).parameters.keys()


INTERNALS = {
    "accelerate: AcceleratorState._reset_state": _accelerate_resets_its_state,
    "accelerate: ACCELERATE_CONFIG_DS_FIELDS": _accelerate_reads_ds_fields_from_the_environment,
    "accelerate: launch's ACCELERATE_DEEPSPEED_* variables": _accelerate_launch_exports_the_deepspeed_settings,
    "accelerate: TensorBoardTracker(run_name, logging_dir).log_images(**kwargs), Accelerator.trackers":
        _accelerate_tensorboard_tracker_takes_a_directory_and_logs_images,
    "deepspeed: TorchCheckpointEngine(config_params).load(path, map_location)":
        _deepspeed_torch_checkpoint_engine_loads_by_path,
    "deepspeed: DeepSpeedEngine.checkpoint_engine and ._config": _deepspeed_engine_keeps_its_checkpoint_engine_and_config,
    "deepspeed: the checkpoint state types (LossScaler, ZeroStageEnum, fragment_address)":
        _deepspeed_checkpoint_state_types_import,
    "webdataset: gopen, tar_file_expander, base_plus_ext": _webdataset_gopen_and_tar_expansion,
    "webdataset: tarfile_samples(handler=)": _webdataset_tarfile_samples_takes_a_handler,
    "webdataset: TarWriter(user=, group=, mtime=)": _webdataset_tar_writer_takes_owner_and_mtime,
}


@pytest.mark.parametrize("internal", list(INTERNALS))
def test_a_private_internal_gvae_relies_on_is_still_there(internal):
    if internal.startswith("deepspeed"):
        pytest.importorskip("deepspeed")
    try:
        INTERNALS[internal]()
    except (AssertionError, ImportError, AttributeError, TypeError, ValueError) as exc:
        pytest.fail(f"the installed {internal.split(':')[0]} changed an internal gvae relies on: {internal} "
                    f"({type(exc).__name__}: {exc}); adapt gvae or stay on the version in constraints.txt")
