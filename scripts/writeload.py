"""Closed-loop REST write load against a running server: invite one callee, then cancel.

Usage: python scripts/writeload.py --url http://127.0.0.1:8011 --pairs 40 --seconds 20
Creates users wl_a<i>/wl_b<i> (via manage.py with the same environment) and their tokens
first (--setup). Prints throughput (cycles/s), median and p99 latency per request, status
counts. A measuring aid for issue 9's write path, not a benchmark of record (bench/ is).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import time

import httpx
import psutil


def setup(pairs: int) -> dict[str, str]:
    code = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
U = get_user_model()
from invitations.models import Call
Call.objects.filter(inviter__username__startswith="wl_").delete()  # leftovers of a run
out = {{}}
for i in range({pairs}):
    for n in (f"wl_a{{i}}", f"wl_b{{i}}"):
        u, _ = U.objects.get_or_create(username=n)
        out[n] = Token.objects.get_or_create(user=u)[0].key
print(json.dumps(out))
"""
    res = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


async def worker(
    c: httpx.AsyncClient,
    a: str,
    b: str,
    stop: float,
    lat: list[float],
    codes: collections.Counter,
    cycles: list[int],
    timeout: float,
) -> None:
    ha = {"Authorization": f"Token {a}"}
    b_name = b
    while time.monotonic() < stop:
        t = time.monotonic()
        try:
            r = await c.post(
                "/api/calls/",
                json={"invitees": [b_name], "timeout": 60},
                headers=ha,
                timeout=timeout,
            )
        except httpx.HTTPError as e:
            codes[type(e).__name__] += 1
            continue
        lat.append(time.monotonic() - t)
        codes[r.status_code] += 1
        if r.status_code != 201:
            if codes[r.status_code] == 1:
                print(r.status_code, r.text[:200], file=sys.stderr)
            await asyncio.sleep(float(r.headers.get("Retry-After", "0.05")) / 10)
            continue
        cid = r.json()["call"]["id"]
        t = time.monotonic()
        try:
            r = await c.post(f"/api/calls/{cid}/cancel/", json={}, headers=ha, timeout=timeout)
        except httpx.HTTPError as e:
            codes[type(e).__name__] += 1
            continue
        lat.append(time.monotonic() - t)
        codes[r.status_code] += 1
        cycles[0] += 1


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8011")
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--pid", type=int, help="server process: report its CPU ms per cycle")
    args = ap.parse_args()
    tokens = setup(args.pairs)
    lat: list[float] = []
    codes: collections.Counter = collections.Counter()
    cycles = [0]
    limits = httpx.Limits(max_connections=args.pairs + 10)
    proc = psutil.Process(args.pid) if args.pid else None
    cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
    async with httpx.AsyncClient(base_url=args.url, limits=limits) as c:
        stop = time.monotonic() + args.seconds
        t0 = time.monotonic()
        await asyncio.gather(
            *(
                worker(c, tokens[f"wl_a{i}"], f"wl_b{i}", stop, lat, codes, cycles, args.timeout)
                for i in range(args.pairs)
            )
        )
        took = time.monotonic() - t0
    cpu = (sum(proc.cpu_times()[:2]) - cpu0) if proc else 0.0
    lat.sort()
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0)
    print(
        json.dumps(
            {
                "cycles_per_s": round(cycles[0] / took, 1),
                "requests": len(lat),
                "median_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
                "p99_ms": round(p(0.99), 1),
                "codes": dict(codes),
                "server_cpu_ms_per_cycle": round(cpu * 1000 / max(1, cycles[0]), 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
