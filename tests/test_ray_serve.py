"""The Ray Serve deployment (runtime.ray_serve) answers the server's requests with the same rewards and codes.

A local Ray instance (2 CPUs, no dashboard), HTTP on 127.0.0.1 at a free port, one replica of the
tiny ARLISS bundle; shut down at the end of the module.
"""
import socket

import numpy as np
import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from runtime import RewardEngine  # noqa: E402
from runtime.ray_serve import reward_app  # noqa: E402
from runtime.server import ServerConfig  # noqa: E402
from test_server import PAIRS, call, offline  # noqa: E402


@pytest.fixture(scope="module")
def ray_url(tiny_bundles):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        config = ServerConfig(max_wait_ms=20, max_request_pairs=16)
        app = reward_app(tiny_bundles["arliss"], config, threads=1, autoscaling_config={"min_replicas": 1, "max_replicas": 1})
        serve.run(app, route_prefix="/", blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_ray_serve_answers_like_the_engine(ray_url, tiny_bundles):
    engine = RewardEngine.from_bundle(tiny_bundles["arliss"], threads=1)
    want = offline(engine, PAIRS)
    body = {"query": [p + r for p, r in PAIRS], "prompts": [p for p, _ in PAIRS]}
    status, out = call(ray_url, "/get_reward", body)
    assert status == 200, out
    np.testing.assert_allclose(out["rewards"], want.rewards, atol=1e-5)
    assert [engine.domains[i] for i in out["extra_logs"]["domain_index"]] == want.domains
    status, out = call(ray_url, "/predict", {"inputs": list(PAIRS[0]), "raw_scores": True})
    assert status == 200 and abs(out[0]["score"] - float(want.rewards[0])) < 1e-5
    status, out = call(ray_url, "/v1/rewards", {"pairs": [{"prompt": "p", "response": "r", "domain": "cooking"}]})
    assert status == 422 and "cooking" in out["error"]
    assert call(ray_url, "/predict", {"inputs": [["p", "r"]] * 17})[0] == 413
    assert call(ray_url, "/health")[0] == 200
