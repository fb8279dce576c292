"""Read-only lookups in the caches where timm's downloads land, without touching the network.

Two caches matter:

- the Hugging Face hub cache (where ``timm.create_model(pretrained=True)`` puts weights today),
  in its real layout::

      $HF_HUB_CACHE  (else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
                      else ~/.cache/huggingface/hub)
        models--{org}--{repo}/
          refs/main                      text file holding the commit hash
          snapshots/{commit}/model.safetensors   (a symlink into blobs/)

- timm's older cache, torch.hub's ``checkpoints`` folder (``$TORCH_HOME/hub/checkpoints``), where
  weights downloaded by URL land under the URL's file name.

Both are listed once per call (one ``os.listdir``), so checking ~1,800 names costs a few
dictionary look-ups each rather than a ``stat`` per model.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

# The files timm asks the hub for, best first: timm tries the safetensors twin of
# pytorch_model.bin before the pickle (timm.models._hub.load_state_dict_from_hf).
HF_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
)

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def hf_hub_cache_dir() -> Path:
    """The folder huggingface_hub downloads into, resolved the way huggingface_hub does it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):  # older name, still honoured by huggingface_hub
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()
    return base / "huggingface" / "hub"


def torch_hub_checkpoints_dir() -> Path:
    """torch.hub's checkpoints folder (timm's cache for weights it fetches by URL).

    Resolved as ``torch.hub.get_dir()`` does, without importing torch (which costs seconds and
    the catalog asks this on its first call): ``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``,
    else ``~/.cache/torch``; then ``hub/checkpoints``. A folder set with ``torch.hub.set_dir``
    exists only in a process that imported torch, so then torch itself is asked.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    # the same os.getenv defaults as torch.hub._get_torch_home (an empty variable counts as set)
    default_home = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    torch_home = os.getenv("TORCH_HOME", default_home)
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def repo_folder_name(repo_id: str) -> str:
    """``"timm/resnet18.a1_in1k"`` -> ``"models--timm--resnet18.a1_in1k"``, the cache's naming."""
    return "models--" + repo_id.replace("/", "--")


def split_hub_id(hub_id: str) -> tuple[str, str]:
    """``"org/repo@rev"`` -> ``("org/repo", "rev")``; the revision defaults to ``"main"``."""
    repo, _, rev = hub_id.partition("@")
    return repo, rev or "main"


def list_cached_repos(cache_dir: Path | None = None) -> set[str]:
    """Names of the ``models--*`` folders in the hub cache (empty when there is no cache)."""
    cache_dir = hf_hub_cache_dir() if cache_dir is None else cache_dir
    try:
        return {n for n in os.listdir(cache_dir) if n.startswith("models--")}
    except OSError:
        return set()


def list_torch_hub_checkpoints() -> set[str]:
    """File names in torch.hub's checkpoints folder (empty when it does not exist)."""
    try:
        return set(os.listdir(torch_hub_checkpoints_dir()))
    except OSError:
        return set()


def _snapshot_dir(repo_dir: Path, revision: str) -> Path | None:
    if _COMMIT_RE.match(revision):
        snap = repo_dir / "snapshots" / revision
        return snap if snap.is_dir() else None
    try:
        commit = (repo_dir / "refs" / revision).read_text().strip()
    except OSError:
        return None
    snap = repo_dir / "snapshots" / commit
    return snap if commit and snap.is_dir() else None


def find_hf_cached_weights(
    hub_id: str,
    filenames: Iterable[str] = HF_WEIGHT_FILES,
    cache_dir: Path | None = None,
    cached_repos: set[str] | None = None,
) -> Path | None:
    """The path of a complete weights file for ``hub_id`` in the hub cache, or None.

    ``cached_repos`` (from :func:`list_cached_repos`) lets a caller checking many ids list the
    cache once. Only the snapshot that ``refs/<revision>`` points at counts, as in
    huggingface_hub's own offline mode; a blob still downloading (``*.incomplete``) has no
    snapshot link yet, so it is never picked.
    """
    cache_dir = hf_hub_cache_dir() if cache_dir is None else cache_dir
    repo, revision = split_hub_id(hub_id)
    folder = repo_folder_name(repo)
    if cached_repos is not None and folder not in cached_repos:
        return None
    snap = _snapshot_dir(cache_dir / folder, revision)
    if snap is None:
        return None
    for name in filenames:
        path = snap / name
        # is_file() follows the symlink into blobs/, so a dangling link does not count
        if path.is_file():
            return path
    return None
