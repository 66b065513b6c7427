"""RouteRM runtime: serve rewards from a bundle (see runtime.manifest for the contract)."""
from .errors import BundleError, ProviderError
from .manifest import Manifest, load_manifest

__all__ = ["BundleError", "ProviderError", "Manifest", "load_manifest"]
