"""The reward server as a Ray Serve deployment: the same routes, batching and status codes as ``runtime.server``.

    from runtime.ray_serve import reward_app
    from ray import serve
    serve.run(reward_app("bundles/arliss"), route_prefix="/")     # POST /get_reward, /predict, /v1/rewards

Each replica builds ``runtime.server.create_app`` over its own ``RewardEngine`` (``serve.ingress``
with an app builder, evaluated on the replica), so a Ray Serve replica answers a request with the
bytes the plain server would: one implementation of the HTTP API, its dynamic batcher and its
limits. Scale out with ``num_replicas`` (each replica loads the bundle once; give each
``threads`` = its CPUs). Needs the ``ray-serve`` extra (``pip install "routerm[ray-serve]"``).
"""
from __future__ import annotations

from pathlib import Path

from .server import ServerConfig, create_app


def reward_app(bundle: str | Path, config: ServerConfig = ServerConfig(), num_replicas: int = 1,
               threads: int | None = None, providers=None, name: str = "routerm-reward"):
    """A bound Ray Serve application (``serve.run(...)`` it) serving ``bundle`` on every replica."""
    try:
        from ray import serve
    except ImportError as exc:
        raise ImportError("runtime.ray_serve needs Ray Serve: pip install 'routerm[ray-serve]'") from exc
    bundle = str(Path(bundle).resolve())

    def build():
        from .engine import RewardEngine

        engine = RewardEngine.from_bundle(bundle, threads=threads, providers=providers)
        used = getattr(engine.backend, "providers", None)
        return create_app(engine, config, provider=used[0] if used else None)

    replica = serve.ingress(build)()   # a deployment class whose replicas serve build()'s app
    return serve.deployment(replica, name=name, num_replicas=num_replicas,
                            ray_actor_options={"num_cpus": threads or 1}).bind()


__all__ = ["reward_app"]
