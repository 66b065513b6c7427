"""RouteRM's typed errors; everything else is a plain TypeError/ValueError naming the argument."""


class BundleError(Exception):
    """A bundle is missing, changed, malformed or of an unknown schema; the message names the file."""


class ProviderError(RuntimeError):
    """An execution provider was asked for by name and is not available (and fallback was not allowed)."""


class DataError(ValueError):
    """A preference file or record is malformed; the message names file, line and field."""
