#!/usr/bin/env python3
"""Trains the models of the form-choice sweep (bench/engine/forms) with pinned LightGBM.

  forms.py OUTDIR
writes OUTDIR/NAME.txt and OUTDIR/NAME.f64 (20000 test rows drawn like the training rows) for
w48 (100 trees x 31 leaves on 48 features), w188 (200 x 4 leaves, 250 features, feature
fraction 0.3), w261 (200 x 8, 300 features, 0.3), m64 (300 x 15 on 64) and d30 (300 x 31 on
30): shapes on both sides of the table/walk crossing. Deterministic (fixed seeds).
"""
import os
import sys

import numpy as np
import lightgbm as lgb

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
specs = [("w48", 48, 100, 31, 1.0), ("w188", 250, 200, 4, 0.3), ("w261", 300, 200, 8, 0.3),
         ("m64", 64, 300, 15, 1.0), ("d30", 30, 300, 31, 1.0)]
for name, nf, nt, nl, ff in specs:
    n = 20000
    sc = rng.uniform(1, 100, size=nf)
    X = rng.normal(size=(n, nf)) * sc
    y = (X[:, :min(nf, 10)].sum(1) / 100 + rng.normal(size=n) > 0).astype(int)
    p = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1, "num_leaves": nl,
         "feature_fraction": ff, "feature_fraction_bynode": ff, "min_data_in_leaf": 5}
    b = lgb.train(p, lgb.Dataset(X, y), nt)
    b.save_model(os.path.join(out, f"{name}.txt"))
    Xt = rng.normal(size=(20000, nf)) * sc
    Xt.astype(np.float64).tofile(os.path.join(out, f"{name}.f64"))
    print(name, nf, nt, nl)
