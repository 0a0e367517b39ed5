#!/usr/bin/env python3
"""Derive per-request feature samples from the example candidates' outputs.

For each example candidate, reads `NAME.outputs.jsonl` (its answers on the
223 golden triage cases) and writes `NAME.features.jsonl` next to it: one
JSON object per request, the samples the `drift` gate compares.

The requests simulate a replay of 2,000 support messages: each is one of
the golden cases drawn at random (the same draws for every candidate, so
both answer the same traffic), and its features come from the candidate's
answer to that case. 223 records alone would leave the label shares too
noisy to tell drift from chance (see the drift gate's docs).

- `output_label`: the answer as given (so a label the model misspelt, such
  as "Outage" or "Category: account", is a category of its own);
- `output_length`: the answer's length in characters;
- `confidence`: a simulated model confidence, drawn from a normal
  distribution per candidate (the regressed candidate is less sure of
  itself), 0.15 lower for an answer that is not one of the five labels,
  clipped to [0.05, 0.999] and rounded to three decimals.

Deterministic: a fixed seed per candidate and only the standard library,
so running it again rewrites the same files. Run from anywhere:

    python3 examples/outputs/features.py
"""

import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUESTS = 2000
TRAFFIC_SEED = 2024
LABELS = {"billing", "account", "outage", "feature-request", "other"}

# name -> (seed, mean confidence, standard deviation)
CANDIDATES = {
    "triage-v2": (2, 0.88, 0.05),
    "triage-v4-regressed": (4, 0.81, 0.08),
}


def normal(rng: random.Random, mean: float, sd: float) -> float:
    """Box-Muller on `rng.random()` alone, stable across Python versions."""
    u1 = 1.0 - rng.random()  # in (0, 1], so the logarithm is finite
    u2 = rng.random()
    return mean + sd * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def features(name: str, seed: int, mean: float, sd: float) -> list[dict]:
    with open(HERE / f"{name}.outputs.jsonl", encoding="utf-8") as outputs:
        answers = [json.loads(line)["output"] for line in outputs if line.strip()]
    traffic = random.Random(TRAFFIC_SEED)
    rng = random.Random(seed)
    rows = []
    for _ in range(REQUESTS):
        answer = answers[int(traffic.random() * len(answers))]
        confidence = normal(rng, mean, sd)
        if answer not in LABELS:
            confidence -= 0.15
        confidence = min(0.999, max(0.05, confidence))
        rows.append(
            {
                "output_label": answer,
                "output_length": len(answer),
                "confidence": round(confidence, 3),
            }
        )
    return rows


def main() -> None:
    for name, (seed, mean, sd) in CANDIDATES.items():
        rows = features(name, seed, mean, sd)
        with open(HERE / f"{name}.features.jsonl", "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
        print(f"{name}.features.jsonl: {len(rows)} records")


if __name__ == "__main__":
    main()
