"""The reward server as a Ray Serve deployment: the same routes, batching and status codes as ``runtime.server``.

    from runtime.ray_serve import reward_app
    from ray import serve
    serve.run(reward_app("bundles/arliss"), route_prefix="/")     # POST /get_reward, /predict, /v1/rewards

Each replica builds ``runtime.server.bundle_app`` (its own ``RewardEngine``) (``serve.ingress``
with an app builder, evaluated on the replica), so a Ray Serve replica answers a request with the
bytes the plain server would: one implementation of the HTTP API, its dynamic batcher and its
limits. Batching stays the server's (``runtime.queue.Batcher``: pairs per engine call, a bounded
queue, 429 on overflow; the engine cuts each call by padded tokens) rather than ``@serve.batch``,
which would be a second batcher with other limits. Scale out with ``num_replicas`` or
``autoscaling_config`` (each replica loads the bundle once; give each ``threads`` = its CPUs). On a
cluster: ``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on the others, then
from any node ``ray.init(address="auto")``, ``serve.start(http_options={"host": "0.0.0.0"})`` and
``serve.run(reward_app(...))``.
Needs the ``ray-serve`` extra (``pip install "routerm[ray-serve]"``).
"""
from __future__ import annotations

from pathlib import Path

from .server import ServerConfig, bundle_app


def reward_app(bundle: str | Path, config: ServerConfig = ServerConfig(), num_replicas: int = 1,
               threads: int | None = None, providers=None, name: str = "routerm-reward",
               autoscaling_config: dict | None = None):
    """A bound Ray Serve application (``serve.run(...)`` it) serving ``bundle`` on every replica.

    ``autoscaling_config`` (Ray Serve's, e.g. ``{"min_replicas": 1, "max_replicas": 8,
    "target_ongoing_requests": 64}``) replaces the fixed ``num_replicas``. ``bundle`` must be
    readable at the same path on every node that may host a replica (a shared file system).
    """
    try:
        from ray import serve
    except ImportError as exc:
        raise ImportError("runtime.ray_serve needs Ray Serve: pip install 'routerm[ray-serve]'") from exc
    bundle = str(Path(bundle).resolve())

    def build():
        return bundle_app(bundle, config, threads, providers)

    replica = serve.ingress(build)()   # a deployment class whose replicas serve build()'s app
    scale = {"autoscaling_config": autoscaling_config} if autoscaling_config else {"num_replicas": num_replicas}
    return serve.deployment(replica, name=name, ray_actor_options={"num_cpus": threads or 1}, **scale).bind()


__all__ = ["reward_app"]
