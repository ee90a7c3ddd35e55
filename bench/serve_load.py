"""Load test of ``s2lc serve`` on loopback: requests/s and p50/p95 latency of ``POST /classify``.

Starts ``python -m s2lc serve`` on 127.0.0.1 (a free port) in a child process, or targets a running
server with --url; sends --requests 64 × 64 PNG patches from --concurrency client threads (each
with its own keep-alive connection), after a short warm-up, and stops at --requests or after
--time-limit seconds, whichever comes first. Without --model (and --url) it writes a
freshly initialised resnet18 checkpoint with the ten EuroSAT classes, the shipped model's
architecture, so the compute per patch is the real one (the answers are not).

Reports requests, failures, wall seconds, requests/s, latency p50/p95/max and, from /health,
how many model batches served them (the micro-batcher at work).

Usage: python bench/serve_load.py [--url URL | --model PATH] [--requests 200] [--concurrency 8]
       [--time-limit 60] [--batch-size 16] [--max-wait-ms 5] [--device cpu] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_checkpoint(path: Path) -> Path:
    """A resnet18 with random weights and the EuroSAT RGB contract."""
    import torch

    from s2lc.checkpoint import RGB_SCALING, ModelContract, save_checkpoint
    from s2lc.legend import EUROSAT_CLASSES
    from s2lc.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 3, len(EUROSAT_CLASSES))
    contract = ModelContract(arch="resnet18", bands=["B04", "B03", "B02"], classes=list(EUROSAT_CLASSES),
                             scaling=dict(RGB_SCALING), mean=[0.5] * 3, std=[0.25] * 3, name="bench-random-resnet18")
    save_checkpoint(path, model, contract)
    return path


def payloads(n: int = 16, seed: int = 0) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "s2lc", "-q", "serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(model),
           "--batch-size", str(args.batch_size), "--max-wait-ms", str(args.max_wait_ms), "--device", args.device]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, env=env)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"no answer from {url}/health within {timeout:.0f} s")


def load(url: str, bodies: list[bytes], n: int, concurrency: int, time_limit: float) -> dict:
    """Send up to ``n`` requests from ``concurrency`` threads; latency of each, in seconds."""
    import httpx

    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    failures: dict[str, int] = {}
    deadline = time.monotonic() + time_limit

    def client() -> None:
        nonlocal issued
        with httpx.Client(base_url=url, timeout=max(5.0, time_limit)) as c:
            while True:
                with lock:
                    if issued >= n or time.monotonic() > deadline:
                        return
                    i = issued
                    issued += 1
                t0 = time.perf_counter()
                try:
                    r = c.post("/classify", files={"file": (f"{i}.png", bodies[i % len(bodies)], "image/png")})
                    ok, why = r.status_code == 200, str(r.status_code)
                except httpx.HTTPError as exc:
                    ok, why = False, type(exc).__name__
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        failures[why] = failures.get(why, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies), "failed": failures, "concurrency": concurrency, "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
        "latency_ms": {k: round(float(np.percentile(lat, q)), 1) if len(lat) else None
                       for k, q in (("p50", 50), ("p95", 95), ("max", 100))},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server; otherwise one is started here")
    ap.add_argument("--model", type=Path, help="checkpoint for the started server (default: a generated resnet18)")
    ap.add_argument("-n", "--requests", type=int, default=200)
    ap.add_argument("-c", "--concurrency", type=int, default=8)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds of load at most")
    ap.add_argument("--warmup", type=int, default=8, help="requests before measuring")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.time_limit <= 0:
        ap.error("--requests and --concurrency must be ≥ 1 and --time-limit > 0")

    proc = None
    with tempfile.TemporaryDirectory(prefix="s2lc-serve-bench-") as tmp:
        try:
            if args.url:
                url = args.url.rstrip("/")
            else:
                model = args.model or make_checkpoint(Path(tmp) / "bench.safetensors")
                proc, url = start_server(model, args)
            health = wait_healthy(url, proc, timeout=120)
            bodies = payloads()
            load(url, bodies, args.warmup, min(args.concurrency, args.warmup), args.time_limit)
            before = wait_healthy(url, None, 10)["batches"]
            result = load(url, bodies, args.requests, args.concurrency, args.time_limit)
            after = wait_healthy(url, None, 10)["batches"]
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    batches = after - before
    result.update({
        "model": health["model"], "url": url, "server_started_here": proc is not None,
        "batch_size": args.batch_size if proc is not None else None,
        "max_wait_ms": args.max_wait_ms if proc is not None else None,
        "model_batches": batches, "mean_batch": round(result["requests"] / batches, 2) if batches else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}",
    })
    lat = result["latency_ms"]
    print(f"{result['requests']} requests ({sum(result['failed'].values())} failed) from {args.concurrency} clients "
          f"in {result['wall_s']:.1f} s: {result['requests_per_s']:.1f} requests/s, "
          f"latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms; "
          f"{batches} model batches (mean {result['mean_batch']} patches); {result['machine']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if not result["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
