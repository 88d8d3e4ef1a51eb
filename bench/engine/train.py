#!/usr/bin/env python3
"""Trains the two benchmark models with pinned LightGBM and writes their inputs.

  train.py OUTDIR
writes OUTDIR/fraud.txt (binary, 100 trees x 31 leaves, 16 features), OUTDIR/large.txt
(binary, 1000 trees x 63 leaves, 16 features) and OUTDIR/X.f64 (rows x 16 float64, row-major,
with a few NaN like real transactions). Deterministic (fixed seeds, one thread).
"""
import os
import sys

import numpy as np
import lightgbm as lgb

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(2025)
n, nf = 60000, 16
X = rng.normal(size=(n, nf)) * rng.uniform(1, 100, size=nf)
logit = (X[:, 0] / 50 - X[:, 1] / 80 + np.sin(X[:, 2] / 10) + (X[:, 3] > 20) * 1.5
         + X[:, 4] * X[:, 5] / 4000 + rng.normal(scale=1.0, size=n))
y = (logit > 1.5).astype(int)
X[rng.random((n, nf)) < 0.02] = np.nan
base = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True,
        "seed": 1, "min_data_in_leaf": 5, "min_sum_hessian_in_leaf": 0}
ds = lgb.Dataset(X, y, free_raw_data=False)
for name, leaves, rounds in (("fraud", 31, 100), ("large", 63, 1000)):
    p = dict(base, num_leaves=leaves, learning_rate=0.05)
    b = lgb.train(p, ds, rounds)
    b.save_model(os.path.join(out, f"{name}.txt"))
    shapes = [t["num_leaves"] for t in b.dump_model()["tree_info"]]
    print(f"{name}: {len(shapes)} trees, {min(shapes)}..{max(shapes)} leaves")
Xt = rng.normal(size=(100000, nf)) * rng.uniform(1, 100, size=nf)
Xt[rng.random(Xt.shape) < 0.02] = np.nan
Xt.astype(np.float64).tofile(os.path.join(out, "X.f64"))
