#!/usr/bin/env python3
"""How far fad_pytorch's own FAD moves on the same embeddings (a diagnostic for
eval/bench/bench_scorers.sh's FAD agreement check).

fad_score (fad_pytorch 0.0.6, method 'maji') takes the square root of S_ref S_gen with 20
coupled Newton-Schulz steps in float32.  When that product has eigenvalues the 20 steps do not
resolve, the result depends on rounding: this script evaluates fad_score on the bench's rows
as given, with the rows reversed in order, with a 1e-7 relative perturbation of the reference
rows, and on m2u's rows, beside the exact (float64 scipy sqrtm) distance of each side's rows.
Run it after the benchmark, from anywhere:

    python3 eval/bench/fad_ns_spread.py [BUILD/bench_scorers/run]

Pinned: torch 2.15.0, fad_pytorch 0.0.6 (its sqrtm module only), numpy 1.26.4, scipy.
"""
import os
import sys

import numpy as np
import scipy.linalg
import torch
from fad_pytorch.sqrtm import sqrtm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bench_scorers", "run")


def fad_score(r, f):
    """fad_pytorch.fad_score.calc_score's arithmetic on two row sets (float32)."""
    r, f = torch.from_numpy(r.astype(np.float32)), torch.from_numpy(f.astype(np.float32))
    mr, sr = torch.mean(r, axis=0), torch.cov(r.T)
    mf, sf = torch.mean(f, axis=0), torch.cov(f.T)
    d = mr - mf
    s = d.dot(d) + torch.trace(sr) + torch.trace(sf)
    return float(s - 2 * torch.trace(torch.real(sqrtm(torch.matmul(sr, sf), method="maji"))))


def exact(r, f):
    r, f = r.astype(np.float64), f.astype(np.float64)
    s1, s2 = np.cov(r.T), np.cov(f.T)
    d = r.mean(0) - f.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))


def main():
    R, F = np.load(os.path.join(RUN, "ref_fad_ref.npy")), np.load(os.path.join(RUN, "ref_fad_gen.npy"))
    Rm, Fm = np.load(os.path.join(RUN, "m2u_fad_ref.npy")), np.load(os.path.join(RUN, "m2u_fad_gen.npy"))
    rng = np.random.default_rng(0)
    rows = [
        ("fad_score, the reference's rows", fad_score(R, F)),
        ("fad_score, the same rows in reverse order", fad_score(R[::-1].copy(), F[::-1].copy())),
        ("fad_score, reference rows x (1 + 1e-7 noise)", fad_score(R * (1 + 1e-7 * rng.standard_normal(R.shape)), F)),
        ("fad_score, m2u's rows", fad_score(Rm, Fm)),
        ("exact distance, the reference's rows", exact(R, F)),
        ("exact distance, m2u's rows", exact(Rm, Fm)),
    ]
    print(f"{R.shape[0]} + {F.shape[0]} rows of {R.shape[1]}")
    for name, v in rows:
        print(f"  {name:48s} {v:.7f}")
    lo, hi = min(v for n, v in rows[:4]), max(v for n, v in rows[:4])
    print(f"  fad_score's spread over these evaluations: {(hi - lo) / abs(hi):.2e} relative")


if __name__ == "__main__":
    main()
