"""Sharing models on the Hugging Face Hub: ``gvae push RUN OWNER/NAME`` and ``hf://OWNER/NAME[@REVISION]``.

A pushed repository is the folder of :func:`gvae.export.export`. Loading downloads only the files a model is
built from (safetensors weights, config.yaml, gvae.json) into huggingface_hub's cache; a pickle that someone
added to the repository is never fetched, and the weights are read with safetensors, so loading runs no code
from the repository.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from gvae.errors import GvaeError

SCHEME = "hf://"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
DOWNLOADED = ["model.safetensors", "ema.safetensors", "config.yaml", "gvae.json", "temperature.json"]


def is_hub_address(source: str | Path) -> bool:
    return isinstance(source, str) and source.startswith(SCHEME)


def parse_address(source: str) -> tuple[str, str | None]:
    """``hf://OWNER/NAME[@REVISION]`` -> (repo id, revision or None)."""
    repo_id, _, revision = source[len(SCHEME):].partition("@")
    check_repo_id(repo_id, source)
    return repo_id, revision or None


def check_repo_id(repo_id: str, given: str | None = None) -> str:
    if not REPO_ID.match(repo_id):
        raise GvaeError(f"{given or repo_id}: expected a Hub repository as OWNER/NAME "
                        f"(e.g. {SCHEME}alice/phantom-gvae, optionally @REVISION)")
    return repo_id


def _hub_failure(what: str, exc: Exception) -> GvaeError:
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return GvaeError(f"{what}: {type(exc).__name__}{': ' + reason if reason else ''}")


def download(source: str) -> Path:
    """The local folder (huggingface_hub's cache) holding the model files of ``hf://OWNER/NAME[@REVISION]``."""
    import huggingface_hub

    repo_id, revision = parse_address(source)
    try:
        folder = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=DOWNLOADED,
                                                   library_name="gvae")
    except Exception as exc:  # network, authentication, a missing repository: all end the command the same way
        raise _hub_failure(f"cannot download {source} (check the name, your network and `hf auth login`)",
                           exc) from None
    return Path(folder)


def push(run_or_checkpoint: str | Path, repo_id: str, private: bool = False, results: str | None = None,
         message: str | None = None, token: str | None = None) -> str:
    """Export the model of a run (see :func:`gvae.export.export`) and upload it to ``repo_id``, creating the
    repository if needed. Returns the URL of the commit."""
    import huggingface_hub

    from gvae.export import export

    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="gvae-push-") as staging:
        folder = export(run_or_checkpoint, Path(staging) / "model", results=results, repo_id=repo_id)
        api = huggingface_hub.HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                                       commit_message=message or f"gvae push {Path(run_or_checkpoint).name}")
        except Exception as exc:  # network, authentication, permissions: all end the command the same way
            raise _hub_failure(f"cannot push to {repo_id} (check your network and `hf auth login`)", exc) from None
    return str(getattr(commit, "commit_url", commit))
