"""Load test of the reward server (``python -m runtime serve``), loopback only, bounded in count and time.

    python benchmarks/serve_load.py --bundles bundles [--methods arliss] [--clients 1,8,64] [--requests 256]

Per method: the server runs in its own process on 127.0.0.1 (a free port). For each client count,
that many client threads (one keep-alive connection each) send single pairs to ``/get_reward``
(OpenRLHF's shape) and small batches of 4 to ``/v1/rewards``, mixed domains (real test pairs of
all five domains), until ``--requests`` requests are sent or ``--seconds`` pass. Recorded:
requests sent and answered (each answer matched to its request; lost or duplicated answers are
counted), status codes, throughput in pairs/s, p50/p99 latency, and the server's batch-size
histogram (``/metrics``). The offline yardstick is ``RewardEngine.score`` at batch 32 over the same
pairs in the same run, in the server's process settings (threads). A fault run follows: clients
that disconnect mid-request, a malformed body every 10th request, and a burst over the queue limit.

Writes ``results/serve.json`` (``--out``); measures, asserts nothing. Run it alone on the machine:
the load average is recorded at the start.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.data import DOMAINS, load_splits
from core.manifest import METHODS

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, port: int, threads: int, queue_pairs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "runtime", "serve", "--bundle", str(bundle), "--host", "127.0.0.1", "--port",
           str(port), "--threads", str(threads), "--max-queue-pairs", str(queue_pairs)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            status, _ = request(port, "GET", "/health")
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in 120 s")


def request(port: int, method: str, path: str, body: bytes | None = None, conn=None, timeout: float = 60):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def load_run(port: int, pairs, clients: int, requests: int, seconds: float) -> dict:
    """``clients`` threads; even requests: one pair to /get_reward, odd: 4 pairs to /v1/rewards."""
    lock = threading.Lock()
    next_id = [0]
    latencies, statuses, answered, pair_count = [], {}, {}, [0]
    stop_at = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < stop_at:
            with lock:
                rid = next_id[0]
                if rid >= requests:
                    break
                next_id[0] += 1
            if rid % 2 == 0:
                p = pairs[rid % len(pairs)]
                path, body, n = "/get_reward", {"query": [p.prompt + p.chosen], "prompts": [p.prompt]}, 1
            else:
                chunk = [pairs[(rid + k) % len(pairs)] for k in range(4)]
                path, body, n = "/v1/rewards", {"pairs": [{"prompt": q.prompt, "response": q.chosen} for q in chunk]}, 4
            start = time.perf_counter()
            try:
                status, data = request(port, "POST", path, json.dumps(body).encode(), conn=conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status, data = -1, b""
            elapsed = time.perf_counter() - start
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    got = json.loads(data)["rewards"]
                    answered[rid] = answered.get(rid, 0) + (1 if len(got) == n else 0)
                    latencies.append(elapsed)
                    pair_count[0] += n
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    sent = next_id[0]
    lat = sorted(latencies)
    return {"clients": clients, "requests_sent": sent, "answered_ok": sum(1 for v in answered.values() if v == 1),
            "duplicated_or_malformed": sum(1 for v in answered.values() if v != 1), "statuses": statuses,
            "lost": sent - sum(statuses.values()), "wall_s": round(wall, 3), "pairs_per_s": round(pair_count[0] / wall, 2),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None}


def fault_run(port: int, pairs, queue_pairs: int) -> dict:
    """Disconnects mid-request, malformed bodies, and a burst over the queue limit."""
    out = {"disconnects": 0, "malformed": {}, "burst": {}}
    for i in range(10):   # send a request and close before reading the answer
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            p = pairs[i]
            body = json.dumps({"query": [p.prompt + p.chosen], "prompts": [p.prompt]}).encode()
            s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        out["disconnects"] += 1
    for i in range(30):
        body = b"{not json" if i % 10 == 0 else json.dumps({"inputs": [pairs[i].prompt, pairs[i].chosen]}).encode()
        status, _ = request(port, "POST", "/predict", body)
        out["malformed"][str(status)] = out["malformed"].get(str(status), 0) + 1
    codes, lock = {}, threading.Lock()

    def burst(k):
        body = {"pairs": [{"prompt": q.prompt, "response": q.chosen} for q in pairs[k * 16:(k + 1) * 16]]}
        status, _ = request(port, "POST", "/v1/rewards", json.dumps(body).encode())
        with lock:
            codes[str(status)] = codes.get(str(status), 0) + 1

    n = max(8, 3 * queue_pairs // 16)
    threads = [threading.Thread(target=burst, args=(k % (len(pairs) // 16),)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["burst"] = {"requests": n, "pairs_each": 16, "queue_limit_pairs": queue_pairs, "statuses": codes}
    out["healthy_after"] = request(port, "GET", "/health")[0] == 200
    return out


def offline_rate(bundle: Path, pairs, threads: int) -> float:
    from runtime import RewardEngine
    engine = RewardEngine.from_bundle(bundle, threads=threads)
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    engine.score(prompts[:32], responses[:32])
    start = time.perf_counter()
    for s in range(0, len(pairs), 32):
        engine.score(prompts[s:s + 32], responses[s:s + 32])
    return len(pairs) / (time.perf_counter() - start)


def batch_histogram(port: int) -> dict:
    _, text = request(port, "GET", "/metrics")
    return {line.split("le=")[1].split('"')[1]: float(line.split()[-1]) for line in text.decode().splitlines()
            if line.startswith("routerm_batch_pairs_bucket")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=Path("bundles"))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--requests", type=int, default=256, help="requests per client-count run (at most)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per client-count run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queue-pairs", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("results/serve.json"))
    args = parser.parse_args(argv)
    splits = load_splits()
    pairs = [p for i in range(200) for d in DOMAINS for p in splits[d]["test"][i:i + 1]]
    result = {"load_average_start": list(os.getloadavg()), "config": {k: str(v) for k, v in vars(args).items()},
              "methods": {}}
    for method in args.methods.split(","):
        bundle = args.bundles / method
        if not (bundle / "manifest.json").is_file():
            print(f"{bundle}: no bundle, skipped", file=sys.stderr)
            continue
        row = {"offline_pairs_per_s_batch32": round(offline_rate(bundle, pairs[:256], args.threads), 2), "runs": []}
        port = free_port()
        server = start_server(bundle, port, args.threads, args.queue_pairs)
        try:
            for clients in [int(c) for c in args.clients.split(",")]:
                run = load_run(port, pairs, clients, args.requests, args.seconds)
                run["vs_offline"] = round(run["pairs_per_s"] / row["offline_pairs_per_s_batch32"], 3)
                row["runs"].append(run)
                print(method, run, flush=True)
            row["batch_histogram"] = batch_histogram(port)
            row["faults"] = fault_run(port, pairs, args.queue_pairs)
            print(method, "faults", row["faults"], flush=True)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        result["methods"][method] = row
    result["load_average_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
