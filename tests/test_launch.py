"""launch/: the DeepSpeed settings a launch config may choose, and the SLURM scripts (run with stand-ins for
srun, scontrol, scancel and accelerate that record what they were given)."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gvae.config import recipe_from_dict
from gvae.errors import GvaeError
from gvae.train.distributed import _zero_optimization, build_accelerators
from tests.launching import accelerate_launch, run_launched
from tests.train_helpers import phantom_data, tiny_recipe_file

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ ZeRO settings of the launch config
@pytest.fixture
def launch_env(monkeypatch):
    for name in ("ACCELERATE_DEEPSPEED_CONFIG_FILE", "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE",
                 "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_zero3_parameter_offload_from_the_launch_config_is_honoured(launch_env):
    launch_env.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    launch_env.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "cpu")
    launch_env.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "cpu")
    assert _zero_optimization() == {"stage": 3, "offload_param": {"device": "cpu"},
                                    "offload_optimizer": {"device": "cpu"}}


def test_parameter_offload_below_zero3_is_refused(launch_env):
    launch_env.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    launch_env.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "cpu")
    with pytest.raises(GvaeError, match=r"offload_param_device: cpu needs ZeRO stage 3 \(got stage 2\)"):
        _zero_optimization()


def test_r1_below_zero3_is_refused_before_any_process_group_starts(launch_env):
    launch_env.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    launch_env.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    recipe = recipe_from_dict({"model": {"kind": "gvae"}, "loss": {"r1_gamma": 1.0}})
    with pytest.raises(GvaeError, match=r"loss.r1_gamma > 0 does not run under DeepSpeed ZeRO stage 2; use ZeRO-3"):
        build_accelerators(recipe, two_players=True)


def test_a_deepspeed_config_file_gives_its_zero_section(launch_env, tmp_path):
    path = tmp_path / "ds.json"
    zero = {"stage": 3, "offload_param": {"device": "nvme", "nvme_path": "/local"}, "overlap_comm": True}
    path.write_text(json.dumps({"zero_optimization": zero, "train_micro_batch_size_per_gpu": "auto"}))
    launch_env.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(path))
    assert _zero_optimization() == zero


def test_a_deepspeed_config_file_that_sets_what_the_recipe_sets_is_refused(launch_env, tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_batch_size": 64, "bf16": {"enabled": True}}))
    launch_env.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(path))
    with pytest.raises(GvaeError, match=r"sets bf16, train_batch_size; gvae takes only its zero_optimization"):
        _zero_optimization()


@pytest.mark.slow
def test_zero3_with_parameter_offload_trains_on_two_processes_and_records_it(tmp_path):
    pytest.importorskip("deepspeed")
    config = tmp_path / "zero3-offload.yaml"
    config.write_text((REPO / "launch/cpu-zero3.yaml").read_text().replace("offload_param_device: none",
                                                                         "offload_param_device: cpu"))
    recipe = tiny_recipe_file(tmp_path, phantom_data(tmp_path / "data"))
    result = run_launched([*accelerate_launch(config), "-m", "gvae", "train", str(recipe), "train.max_steps=2",
                           "--out", str(tmp_path / "run"), "--no-progress"], [tmp_path / "run"],
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["world_size"] == 2 and info["deepspeed_zero_stage"] == 3
    assert info["deepspeed_zero_optimization"] == {"stage": 3, "offload_param": {"device": "cpu"}}
    assert (tmp_path / "run" / "checkpoints" / "step-00000002").is_dir()


# ------------------------------------------------------------------ SLURM
STAND_INS = {
    "scontrol": """#!/bin/bash
if [ "$1" = show ]; then echo node-a; echo node-b; else echo "$*" >> "$RECORD/scontrol"; fi""",
    "scancel": """#!/bin/bash
echo "$*" >> "$RECORD/scancel"; touch "$RECORD/stop" """,
    "srun": """#!/bin/bash
exec "$@" """,
    "accelerate": f"""#!{sys.executable}
import json, os, signal, sys, time
record = os.environ["RECORD"]
json.dump({{"argv": sys.argv[1:], "usr1_ignored": signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN}},
          open(os.path.join(record, "accelerate.json"), "w"))
while os.environ.get("WAIT_FOR_STOP") and not os.path.exists(os.path.join(record, "stop")):
    time.sleep(0.05)
""",
}


@pytest.fixture
def slurm(tmp_path):
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    for name, text in STAND_INS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", RECORD=str(record), SLURM_JOB_ID="42",
               SLURM_JOB_NODELIST="node-[a-b]", SLURM_NNODES="2", SLURM_GPUS_ON_NODE="4", SLURM_NODEID="1")
    return env, record


def test_the_sbatch_script_passes_every_argument_through_intact(slurm):
    env, record = slurm
    args = ["recipes/my recipe.yaml", "name=it's \"mine\"", "data.train=data/{a,b}/*.tar", "--out", "/runs/x y"]
    result = subprocess.run(["bash", str(REPO / "launch/slurm/train.sbatch"), *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    argv = json.loads((record / "accelerate.json").read_text())["argv"]
    assert argv[argv.index("-m"):] == ["-m", "gvae", "train", *args]
    assert argv[argv.index("--machine_rank") + 1] == "1" and argv[argv.index("--num_processes") + 1] == "8"
    assert argv[argv.index("--main_process_ip") + 1] == "node-a"


def test_the_sbatch_script_asks_for_a_signal_before_the_time_limit():
    lines = (REPO / "launch/slurm/train.sbatch").read_text().splitlines()
    assert "#SBATCH --signal=B:USR1@300" in lines and "#SBATCH --requeue" in lines


def test_near_the_time_limit_the_training_is_signalled_and_the_job_requeued(slurm):
    env, record = slurm
    script = subprocess.Popen(["bash", str(REPO / "launch/slurm/train.sbatch"), "recipe.yaml"],
                              env=dict(env, WAIT_FOR_STOP="1"), cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (record / "accelerate.json").is_file():
        assert time.monotonic() < deadline and script.poll() is None
        time.sleep(0.05)
    script.send_signal(signal.SIGUSR1)  # what SLURM sends the batch shell 300 s before the limit
    _, stderr = script.communicate(timeout=60)
    assert script.returncode == 0, stderr
    assert (record / "scancel").read_text() == "--signal=USR1 42.0\n"
    assert (record / "scontrol").read_text() == "requeue 42\n"
    assert json.loads((record / "accelerate.json").read_text())["usr1_ignored"]  # only gvae's trainer handles it


def test_submit_creates_the_logs_directory_before_sbatch(slurm, tmp_path):
    env, record = slurm
    (Path(env["PATH"].split(":")[0]) / "sbatch").write_text('#!/bin/bash\n[ -d logs ] && echo "$*" > "$RECORD/sbatch"')
    (Path(env["PATH"].split(":")[0]) / "sbatch").chmod(stat.S_IRWXU)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = subprocess.run([str(REPO / "launch/slurm/submit"), "--nodes", "4", "train.sbatch", "r.yaml"],
                            env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (workdir / "logs").is_dir() and (record / "sbatch").read_text() == "--nodes 4 train.sbatch r.yaml\n"


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, as `accelerate launch` leaves one for the command to use."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield dist
    if dist.is_initialized():
        dist.destroy_process_group()


def test_a_finished_command_closes_the_process_group_and_a_failed_one_does_not_wait(process_group):
    from click.testing import CliRunner

    from gvae.cli import cli

    failed = CliRunner().invoke(cli, ["recipe", "show", str(REPO / "recipes/fmnist-32-gvae.yaml"), "model.nope=1"])
    assert failed.exit_code != 0 and process_group.is_initialized()
    done = CliRunner().invoke(cli, ["recipe", "show", str(REPO / "recipes/fmnist-32-gvae.yaml")])
    assert done.exit_code == 0, done.output
    assert not process_group.is_initialized()


ENDS_AFTER_LEAVING = """
import atexit, os, sys
import torch.distributed as dist
from gvae.process_group import end_launched_process, leave_process_group

end_launched_process(3)  # no group left yet: nothing happens
dist.init_process_group("gloo", rank=0, world_size=1, init_method="tcp://127.0.0.1:" + sys.argv[1])
atexit.register(lambda: print("teardown ran", flush=True))
leave_process_group()
print("work done")  # still in the buffer: ending must flush it
end_launched_process(0)
print("after the end")
"""


def test_a_process_that_left_its_group_ends_at_once_with_its_output_and_without_teardown():
    """The end the CLI gives a launched process: exit code as asked, output flushed, no atexit teardown."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run([sys.executable, "-c", ENDS_AFTER_LEAVING, str(port)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "work done\n"


FAILS_ONCE = """
import pathlib, sys
marker, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if out.exists():
    sys.exit("the output of the first try was not cleared")
out.mkdir()
if not marker.exists():
    marker.touch()
    sys.exit(sys.argv[3])
"""


@pytest.mark.parametrize(("message", "tries_ok"), [("terminate called without an active exception", True),
                                                   ("some other failure", False)])
def test_a_launch_is_retried_once_after_a_teardown_abort_only(tmp_path, message, tries_ok):
    from tests.launching import run_launched

    cmd = [sys.executable, "-c", FAILS_ONCE, str(tmp_path / "marker"), str(tmp_path / "out"), message]
    assert (run_launched(cmd, [tmp_path / "out"], timeout=60).returncode == 0) == tries_ok
