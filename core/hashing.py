"""sha256 of a file and of a directory tree: the one implementation bundles, checkpoints and results use."""
from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (bundles hold graphs of gigabytes)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_tree(root: str | Path) -> str:
    """Hex sha256 over every file under ``root``: its relative POSIX path, then its bytes, in path order.

    Two trees hash alike exactly when they hold the same files with the same contents.
    """
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()
