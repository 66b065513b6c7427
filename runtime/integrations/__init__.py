"""Adapters from RLHF trainers' calling conventions to RouteRM (runtime.integrations.trl)."""
