"""The HTTP reward server (runtime.server) and the TRL reward function, on the tiny bundles, loopback only."""
import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from runtime import RewardEngine  # noqa: E402
from runtime.server import ServerConfig, create_app  # noqa: E402


class Server:
    """uvicorn in a thread on 127.0.0.1 (a free port); stopped (gracefully) by ``close``."""

    def __init__(self, engine, config=ServerConfig()):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(engine, config), host="127.0.0.1", port=self.port,
                                                   log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.should_exit = True
        self.thread.join(30)


def call(url, path, body=None, raw: bytes | None = None):
    """(status, parsed JSON or text) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"},
                                     method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


PAIRS = [("What is 2 + 2?", "4"), ("Write a poem about rain.", "Drops on the window, soft and grey."),
         ("How do I cook rice?", "Rinse it, add water, simmer 15 minutes."), ("Tell me a secret.", "No.")]


@pytest.fixture(scope="module")
def arliss(tiny_bundles):
    engine = RewardEngine.from_bundle(tiny_bundles["arliss"], threads=1)
    server = Server(engine, ServerConfig(max_wait_ms=20, max_request_pairs=16, max_body_bytes=1 << 16))
    yield engine, server
    server.close()


def offline(engine, pairs, domains=None):
    return engine.score([p for p, _ in pairs], [r for _, r in pairs], domains)


def test_tei_predict_single_and_batch(arliss):
    engine, server = arliss
    want = offline(engine, PAIRS)
    status, one = call(server.url, "/predict", {"inputs": list(PAIRS[0]), "raw_scores": True})
    assert status == 200 and one[0]["label"] == want.domains[0]
    assert abs(one[0]["score"] - float(want.rewards[0])) < 1e-5
    status, many = call(server.url, "/predict", {"inputs": [list(p) for p in PAIRS]})
    assert status == 200 and len(many) == len(PAIRS)
    sig = 1 / (1 + np.exp(-want.rewards.astype(np.float64)))
    np.testing.assert_allclose([row[0]["score"] for row in many], sig, atol=1e-5)


def test_openrlhf_get_reward_shape(arliss):
    engine, server = arliss
    want = offline(engine, PAIRS)
    body = {"query": [p + r for p, r in PAIRS], "prompts": [p for p, _ in PAIRS], "labels": ["x"] * len(PAIRS)}
    status, out = call(server.url, "/get_reward", body)
    assert status == 200 and set(out) == {"rewards", "scores", "extra_logs"}
    np.testing.assert_allclose(out["rewards"], want.rewards, atol=1e-5)
    assert all(isinstance(v, int) for v in out["extra_logs"]["domain_index"])
    assert [engine.domains[i] for i in out["extra_logs"]["domain_index"]] == want.domains


def test_v1_rewards_with_and_without_domains(arliss):
    engine, server = arliss
    domain = engine.domains[1]
    status, out = call(server.url, "/v1/rewards", {"pairs": [{"prompt": p, "response": r, "domain": domain} for p, r in PAIRS]})
    assert status == 200 and out["domains"] == [domain] * len(PAIRS) and out["router_probs"] is None
    np.testing.assert_allclose(out["rewards"], offline(engine, PAIRS, [domain] * len(PAIRS)).rewards, atol=1e-5)
    status, out = call(server.url, "/v1/rewards", {"pairs": [{"prompt": p, "response": r} for p, r in PAIRS]})
    assert status == 200 and len(out["router_probs"]) == len(PAIRS)


def test_bad_requests_get_documented_codes(arliss):
    engine, server = arliss
    status, out = call(server.url, "/v1/rewards", {"pairs": [{"prompt": "p", "response": "r", "domain": "cooking"}]})
    assert status == 422 and "cooking" in out["error"] and all(d in out["error"] for d in engine.domains)
    assert call(server.url, "/predict", raw=b"{not json")[0] == 400
    assert call(server.url, "/predict", {"inputs": [["only one"]]})[0] == 422
    assert call(server.url, "/get_reward", {"query": ["abc"], "prompts": ["xyz"]})[0] == 422
    assert call(server.url, "/predict", {"inputs": [["p", "r"]] * 17})[0] == 413     # max_request_pairs 16
    status, out = call(server.url, "/predict", raw=json.dumps({"inputs": ["p", "x" * 70000]}).encode())
    assert status == 413 and out["error_type"] == "Payload"


def test_concurrent_single_pairs_are_batched_and_each_answered_once(arliss):
    engine, server = arliss
    rng = np.random.default_rng(0)
    pairs = [PAIRS[i] for i in rng.integers(0, len(PAIRS), 48)]
    want = offline(engine, pairs).rewards

    def one(i):
        p, r = pairs[i]
        return i, call(server.url, "/get_reward", {"query": [p + r], "prompts": [p]})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(len(pairs))))
    assert sorted(i for i, _ in answers) == list(range(len(pairs)))
    for i, (status, out) in answers:
        assert status == 200 and len(out["rewards"]) == 1
        assert abs(out["rewards"][0] - float(want[i])) < 1e-5
    status, text = call(server.url, "/metrics")
    assert status == 200 and 'routerm_requests_total{route="/get_reward",status="200"}' in text
    counts = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("routerm_batch_pairs")}
    assert counts["routerm_batch_pairs_count"] < counts["routerm_batch_pairs_sum"], "no request was coalesced"


def test_info_and_health(arliss):
    engine, server = arliss
    status, info = call(server.url, "/info")
    assert status == 200 and info["method"] == "arliss" and info["domains"] == list(engine.domains)
    assert info["limits"]["max_request_pairs"] == 16
    assert call(server.url, "/health") == (200, {"status": "ok"})


class SlowEngine:
    """An engine stand-in whose score blocks until released (to fill the queue)."""

    def __init__(self, real):
        self.real, self.manifest, self.domains, self.method = real, real.manifest, real.domains, real.method
        self.truncation, self.backend = real.truncation, real.backend
        self.release = threading.Event()
        self.entered = threading.Event()

    def score(self, prompts, responses, domains=None):
        self.entered.set()
        self.release.wait(30)
        return self.real.score(prompts, responses, domains)


def test_queue_overflow_is_429_and_shutdown_finishes_in_flight(tiny_bundles):
    slow = SlowEngine(RewardEngine.from_bundle(tiny_bundles["baseline"], threads=1))
    server = Server(slow, ServerConfig(max_queue_pairs=2, max_batch_pairs=1, max_wait_ms=0))
    try:
        body = {"inputs": ["p", "r"], "raw_scores": True}
        with ThreadPoolExecutor(3) as pool:
            # one request running (the worker inside score), then two queued: order them, or the third
            # can arrive while the first still waits in the queue and be the one refused
            first = [pool.submit(call, server.url, "/predict", body)]
            assert slow.entered.wait(60), "the first request never reached the engine"
            first += [pool.submit(call, server.url, "/predict", body) for _ in range(2)]
            deadline = time.monotonic() + 60
            while "routerm_queue_pairs 2" not in call(server.url, "/metrics")[1]:   # wait until the queue is full
                assert time.monotonic() < deadline, "the three requests never filled the queue"
                time.sleep(0.05)
            assert call(server.url, "/predict", body)[0] == 429
            slow.release.set()
            assert [f.result()[0] for f in first] == [200, 200, 200]
    finally:
        slow.release.set()
        server.close()


def test_trl_reward_function_against_the_server(arliss):
    from runtime.integrations.trl import make_reward_func
    engine, server = arliss
    rf = make_reward_func(url=server.url)
    want = offline(engine, PAIRS).rewards
    got = rf(prompts=[p for p, _ in PAIRS], completions=[r for _, r in PAIRS], completion_ids=None, trainer_state=None)
    np.testing.assert_allclose(got, want, atol=1e-5)
    chat_prompts = [[{"role": "user", "content": p}] for p, _ in PAIRS]
    chat_completions = [[{"role": "assistant", "content": r}] for _, r in PAIRS]
    got_chat = asyncio.run(rf.acall(chat_prompts, chat_completions))
    want_chat = engine.score([f"Human: {p}" for p, _ in PAIRS], [r for _, r in PAIRS]).rewards
    np.testing.assert_allclose(got_chat, want_chat, atol=1e-5)
    with pytest.raises(TypeError, match="prompt"):
        rf(prompts=[42], completions=["x"])


def test_cli_serve_flags_are_the_config_fields_and_defaults(capsys):
    """``python -m runtime serve`` restates no limit: a flag per ServerConfig field, its default the field's."""
    from dataclasses import fields

    from runtime.__main__ import build_parser, server_config
    parser = build_parser()
    assert server_config(parser.parse_args(["serve", "--bundle", "b"])) == ServerConfig()
    args = parser.parse_args(["serve", "--bundle", "b", "--max-wait-ms", "2.5", "--max-body-bytes", "1024",
                              "--request-timeout-s", "3"])
    assert server_config(args) == ServerConfig(max_wait_ms=2.5, max_body_bytes=1024, request_timeout_s=3.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    serve_help = " ".join(capsys.readouterr().out.split())
    for limit in fields(ServerConfig):
        flag = "--" + limit.name.replace("_", "-")
        assert f"{flag} {limit.name.upper()} {limit.metadata['help']} (default: {limit.default})" in serve_help
