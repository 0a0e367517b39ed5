#!/usr/bin/env python3
"""Generate latency samples for the example candidates.

Writes `NAME.latency.jsonl` next to this script: one JSON object per
request, `{"latency_ms": 431.2}`, the samples the `latency` gate reads.
Each candidate gets 600 requests (enough for a 95% interval around p99,
which needs at least 368):

- `triage-v2`: log-normal around 420 ms (sigma 0.22), so p99 is near 700 ms;
- `triage-v4-regressed`: slightly slower in the body (440 ms, sigma 0.24)
  and with a fat tail: 6% of requests are 2.2 to 4 times slower (a retry
  or a cold cache), which takes p99 well past 1,000 ms.

Deterministic: a fixed seed per candidate and only the standard library,
so running it again rewrites the same files. Run from anywhere:

    python3 examples/outputs/latency.py
"""

import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUESTS = 600

# name -> (seed, median ms, sigma of log latency, share of slow requests)
CANDIDATES = {
    "triage-v2": (20, 420.0, 0.22, 0.0),
    "triage-v4-regressed": (40, 440.0, 0.24, 0.06),
}


def normal(rng: random.Random) -> float:
    """A standard normal by Box-Muller on `rng.random()` alone, stable
    across Python versions."""
    u1 = 1.0 - rng.random()  # in (0, 1], so the logarithm is finite
    u2 = rng.random()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def samples(seed: int, median: float, sigma: float, slow_share: float) -> list[float]:
    rng = random.Random(seed)
    out = []
    for _ in range(REQUESTS):
        latency = median * math.exp(sigma * normal(rng))
        # Draw the tail's numbers for every request, so the body's draws
        # do not depend on the tail's share.
        slow, factor = rng.random(), 2.2 + 1.8 * rng.random()
        if slow < slow_share:
            latency *= factor
        out.append(round(latency, 1))
    return out


def main() -> None:
    for name, (seed, median, sigma, slow_share) in CANDIDATES.items():
        values = samples(seed, median, sigma, slow_share)
        with open(HERE / f"{name}.latency.jsonl", "w", encoding="utf-8") as out:
            for value in values:
                out.write(json.dumps({"latency_ms": value}) + "\n")
        ordered = sorted(values)
        p = lambda q: ordered[round(q * (len(ordered) - 1))]
        print(f"{name}.latency.jsonl: {len(values)} samples, p50 {p(0.5)} p95 {p(0.95)} p99 {p(0.99)}")


if __name__ == "__main__":
    main()
