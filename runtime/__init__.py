"""RouteRM runtime: serve rewards from a bundle (see core.manifest for the contract).

``RewardEngine.from_bundle(path)`` loads a bundle and scores (prompt, response) pairs, routed to
each prompt's domain; ``python -m runtime score`` does the same over a JSONL file.
"""
from .engine import RewardEngine, ScoreResult
from core.errors import BundleError, ProviderError
from core.manifest import Manifest, load_manifest

__all__ = ["BundleError", "ProviderError", "Manifest", "load_manifest", "RewardEngine", "ScoreResult"]
