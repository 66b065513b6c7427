"""Reporting and experiment drivers: they reproduce and render the project's figures; nothing users import depends on them."""
