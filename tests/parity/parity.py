#!/usr/bin/env python3
"""Parity suite: our C engine (fraudctl predict) against pinned LightGBM, generated in the run.

For every case a small model is trained on generated data (fixed seeds), saved as model.txt,
and a test CSV is written whose rows include the awkward values (NaN, empty cells, exact
zeros, values within 1e-35 of zero, +-inf, every split threshold of the model and its two
neighbouring doubles, negative / fractional / huge / NaN categories). LightGBM's own
predictions are the expectation; fraudctl must give:
  raw scores            bit for bit   (Booster.predict(raw_score=True))
  transformed outputs   within 1 ulp  (Booster.predict())
  contributions         within 1e-9   (Booster.predict(pred_contrib=True))
Usage: parity.py FRAUDCTL WORKDIR [-k SUBSTRING]. Ends with "N passed, M failed".
"""
import json
import os
import subprocess
import sys

import numpy as np
import lightgbm as lgb

FRAUDCTL = sys.argv[1]
WORK = sys.argv[2]
ONLY = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "-k" else None

passed = 0
failed = 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}: {detail}")
    sys.stdout.flush()


def thresholds(booster):
    """Numerical thresholds per feature, read from LightGBM's own JSON dump."""
    out = {}

    def walk(node):
        if "split_index" not in node:
            return
        if node.get("decision_type") == "<=":
            out.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
        walk(node["left_child"])
        walk(node["right_child"])

    for t in booster.dump_model()["tree_info"]:
        walk(t["tree_structure"])
    return out


def hard_rows(booster, X, rng, cat_cols=()):
    """Rows that sit on every decision boundary of the model, plus special values."""
    rows = []
    base = X[rng.integers(0, len(X), size=1)][0]
    for f, ths in thresholds(booster).items():
        for t in sorted(ths)[:40]:
            for v in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
                r = X[rng.integers(0, len(X))].copy()
                r[f] = v
                rows.append(r)
    specials = [np.nan, 0.0, -0.0, 1e-40, -1e-40, 1e-36, -1e-36, float(np.float32(1e-35)),
                -float(np.float32(1e-35)), np.nextafter(float(np.float32(1e-35)), 1.0),
                1e-35, 2e-35, np.inf, -np.inf, 1e300, -1e300, 5e-324]
    for f in range(X.shape[1]):
        vals = specials
        if f in cat_cols:
            vals = specials + [-1.0, -0.5, 0.5, 2.5, 1e10, -1e10, 2147483647.0, 2147483648.0,
                               31.0, 32.0, 33.0, 63.0, 64.0, 1000.0]
        for v in vals:
            r = base.copy()
            r[f] = v
            rows.append(r)
    rows.append(np.full(X.shape[1], np.nan))
    rows.append(np.zeros(X.shape[1]))
    return np.array(rows)


def fmt(v, rng):
    if np.isnan(v):
        return ["", "nan", "NaN", "NAN"][int(rng.integers(0, 4))]
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def write_csv(path, X, names, rng, shuffle=True):
    """Header by name, columns in a shuffled order plus an extra ignored column."""
    order = list(range(X.shape[1]))
    if shuffle:
        rng.shuffle(order)
    with open(path, "w") as f:
        f.write(",".join([names[i] for i in order] + ["ignored_extra"]) + "\n")
        for r in X:
            f.write(",".join([fmt(r[i], rng) for i in order] + ["x"]) + "\n")


def run_cli(model_path, csv_path, extra):
    res = subprocess.run([FRAUDCTL, "predict", "--model", model_path, "--input", csv_path]
                         + extra, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"fraudctl exit {res.returncode}: {res.stderr.strip()}")
    lines = res.stdout.splitlines()
    return np.array([[float(v) for v in ln.split(",")] for ln in lines])


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def ulp_diff(a, b):
    """Distance in units in the last place; NaN == NaN."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    both_nan = np.isnan(a) & np.isnan(b)
    ia = bits(a).astype(object)
    ib = bits(b).astype(object)
    # Map the sign-magnitude bit patterns onto a monotone integer line.
    def mono(i):
        return [(x if x >= 0 else -(x & 0x7FFFFFFFFFFFFFFF)) for x in i]
    d = np.array([abs(x - y) for x, y in zip(mono(ia), mono(ib))], dtype=object)
    d[both_nan] = 0
    return d


def compare(name, model_path, csv_path, booster, X, kinds=("raw", "pred", "contrib"),
            iters=(None,)):
    for it in iters:
        kw = {}
        extra = []
        label = name
        if it is not None:
            kw = {"start_iteration": it[0], "num_iteration": it[1]}
            extra = ["--start-iteration", str(it[0]), "--num-iteration", str(it[1])]
            label = f"{name}[start={it[0]},num={it[1]}]"
        else:
            kw = {"num_iteration": -1}
        # raw1 / pred1: the same through the single-row path (--row-by-row).
        all_kinds = list(kinds) + [k + "1" for k in kinds if k in ("raw", "pred")]
        for kind in all_kinds:
            one = ["--row-by-row"] if kind.endswith("1") else []
            try:
                if kind.startswith("raw"):
                    exp = booster.predict(X, raw_score=True, **kw)
                    got = run_cli(model_path, csv_path, extra + ["--raw"] + one)
                elif kind.startswith("pred"):
                    exp = booster.predict(X, **kw)
                    got = run_cli(model_path, csv_path, extra + one)
                else:
                    exp = booster.predict(X, pred_contrib=True, **kw)
                    got = run_cli(model_path, csv_path, extra + ["--contrib"])
            except lgb.basic.LightGBMError as e:
                # Where LightGBM refuses (contributions of linear trees), so must we.
                why = str(e).splitlines()[0]
                res = subprocess.run([FRAUDCTL, "predict", "--model", model_path, "--input",
                                      csv_path, "--contrib"], capture_output=True, text=True)
                report(res.returncode != 0 and res.stdout == "",
                       f"{label} {kind} refused like LightGBM ({why})",
                       f"exit {res.returncode}, stderr {res.stderr.strip()!r}")
                continue
            except RuntimeError as e:
                report(False, f"{label} {kind}", str(e))
                continue
            exp = np.asarray(exp, dtype=np.float64).reshape(len(X), -1)
            if got.shape != exp.shape:
                report(False, f"{label} {kind}", f"shape {got.shape} != {exp.shape}")
                continue
            path = " row-by-row" if one else ""
            if kind.startswith("raw"):
                bad = np.nonzero(bits(got).ravel() != bits(exp).ravel())[0]
                same_nan = np.isnan(got.ravel()) & np.isnan(exp.ravel())
                bad = [i for i in bad if not same_nan[i]]
                detail = ""
                if bad:
                    i = bad[0]
                    detail = (f"{len(bad)} values differ in bits; first at row "
                              f"{i // exp.shape[1]}: {got.ravel()[i]!r} != {exp.ravel()[i]!r}")
                report(not bad, f"{label} raw{path} (bit-identical, {exp.size} values)", detail)
            elif kind.startswith("pred"):
                d = ulp_diff(got, exp)
                worst = max(d) if len(d) else 0
                detail = ""
                if worst > 1:
                    i = int(np.argmax([int(x) for x in d]))
                    detail = (f"max {worst} ulp at value {i}: {got.ravel()[i]!r} != "
                              f"{exp.ravel()[i]!r}")
                report(worst <= 1, f"{label} transformed{path} (<= 1 ulp, max {worst})", detail)
            else:
                diff = np.abs(got - exp)
                diff[np.isnan(got) & np.isnan(exp)] = 0
                worst = float(np.nanmax(diff)) if diff.size else 0.0
                ok = bool(np.all(diff <= 1e-9))
                report(ok, f"{label} contrib (<= 1e-9, max {worst:.3g})",
                       "" if ok else f"max abs diff {worst}")


def case(name, params, X, y, rounds, cat_cols=(), names=None, group=None, iters=(None,),
         kinds=("raw", "pred", "contrib"), seed=0, untrained=False, n_test=200):
    if ONLY and ONLY not in name:
        return
    rng = np.random.default_rng(seed + 12345)
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    p = {"verbose": -1, "seed": seed, "deterministic": True, "num_threads": 1}
    p.update(params)
    names = names or [f"Column_{i}" for i in range(X.shape[1])]
    ds = lgb.Dataset(X, y, feature_name=names, categorical_feature=list(cat_cols) or "auto",
                     group=group, free_raw_data=False)
    if untrained:
        booster = lgb.Booster(p, ds)
    else:
        booster = lgb.train(p, ds, rounds)
    model_path = os.path.join(d, "model.txt")
    booster.save_model(model_path)
    # Reload from the text, exactly as a user's file would be read.
    booster = lgb.Booster(model_file=model_path)
    idx = rng.integers(0, len(X), size=n_test)
    Xt = np.vstack([X[idx], hard_rows(booster, X, rng, cat_cols)])
    csv_path = os.path.join(d, "test.csv")
    write_csv(csv_path, Xt, names, rng)
    compare(name, model_path, csv_path, booster, Xt, kinds=kinds, iters=iters)


def case_model_file(name, path, seed=99, n_test=1000):
    """A model file we did not train here (the bundled default model): rows drawn over the
    ranges in its feature_infos, plus the hard rows."""
    if ONLY and ONLY not in name:
        return
    if not os.path.exists(path):
        # The bundle is part of the repository: its absence is a failure, not a skip.
        report(False, f"{name}: model file", f"{path} not present")
        return
    booster = lgb.Booster(model_file=path)
    rng = np.random.default_rng(seed)
    names = booster.feature_name()
    infos = {}
    with open(path) as f:
        for line in f:
            if line.startswith("feature_infos="):
                infos = line.strip().split("=", 1)[1].split(" ")
                break
    cols = []
    for info in infos:
        if info.startswith("[") and ":" in info:
            lo, hi = (float(v) for v in info[1:-1].split(":"))
            span = (hi - lo) or 1.0
            cols.append(rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=n_test))
        else:
            cols.append(rng.integers(0, 10, size=n_test).astype(float))
    X = np.column_stack(cols)
    X[rng.random(X.shape) < 0.03] = np.nan
    Xt = np.vstack([X, hard_rows(booster, X, rng)])
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    csv_path = os.path.join(d, "test.csv")
    write_csv(csv_path, Xt, names, rng)
    compare(name, path, csv_path, booster, Xt)


def cli_errors():
    """The CLI contract's error side: non-zero exit and a message that says what and where."""
    if ONLY and ONLY not in "cli_errors":
        return
    d = os.path.join(WORK, "cli_errors")
    os.makedirs(d, exist_ok=True)
    model = os.path.join(d, "model.txt")
    X, s = data(300, 3, 5)
    b = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, lgb.Dataset(
        X, (s > 0).astype(int), feature_name=["f_a", "f_b", "f_c"]), 2)
    b.save_model(model)
    text = open(model).read()

    def write(name, content):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(content)
        return p

    def expect_fail(label, args, needle, code=None):
        res = subprocess.run([FRAUDCTL, "predict"] + args, capture_output=True, text=True)
        ok = res.returncode != 0 and needle in res.stderr and res.stdout == ""
        if code is not None:
            ok = ok and res.returncode == code
        report(ok, f"cli error: {label}",
               f"exit {res.returncode}, stderr {res.stderr.strip()!r}, stdout {res.stdout[:80]!r}")

    good = write("good.csv", "f_c,f_b,f_a\n1,2,3\n")
    expect_fail("missing model feature", ["--model", model, "--input",
                write("missing.csv", "f_a,f_b\n1,2\n")], "'f_c' is missing", 1)
    expect_fail("not a number", ["--model", model, "--input",
                write("bad.csv", "f_a,f_b,f_c\n1,2,3\n1,abc,3\n")], "line 3, column 2", 1)
    expect_fail("short row", ["--model", model, "--input",
                write("short.csv", "f_a,f_b,f_c\n1,2\n")], "expected 3 fields", 1)
    expect_fail("empty input", ["--model", model, "--input", write("empty.csv", "")],
                "header", 1)
    expect_fail("no model file", ["--model", os.path.join(d, "nope.txt"), "--input", good],
                "nope.txt:0: cannot open", 1)
    cut = text[: text.index("Tree=1") + 40]
    expect_fail("truncated model", ["--model", write("cut.txt", cut), "--input", good],
                "cut.txt:", 1)
    broken = text.replace("num_leaves=4", "num_leaves=4000000000", 1)
    expect_fail("huge num_leaves", ["--model", write("huge.txt", broken), "--input", good],
                "num_leaves", 1)
    expect_fail("usage: no --model", ["--input", good], "--model", 2)
    expect_fail("usage: unknown option", ["--model", model, "--frobnicate"], "unknown", 2)
    # Both files hold f_c,f_b,f_a = 1,2,3: the model's row is (3, 2, 1).
    exp = f"{b.predict(np.array([[3.0, 2.0, 1.0]]), raw_score=True)[0]:.17g}"

    def expect_ok(label, path):
        res = subprocess.run([FRAUDCTL, "predict", "--model", model, "--input", path, "--raw"],
                             capture_output=True, text=True)
        report(res.returncode == 0 and res.stdout.strip() == exp, label,
               f"exit {res.returncode}, {res.stdout.strip()!r} != {exp}, "
               f"stderr {res.stderr.strip()!r}")

    # A UTF-8 byte-order mark and CRLF line ends (a spreadsheet export) are accepted.
    bom = os.path.join(d, "bom.csv")
    with open(bom, "wb") as f:
        f.write(b"\xef\xbb\xbff_c,f_b,f_a\r\n1,2,3\r\n")
    expect_ok("cli: BOM and CRLF", bom)
    # And the good file works, with the columns in any order.
    expect_ok("cli: columns matched by name", good)


def data(n, nf, seed, nan_frac=0.1, zero_frac=0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, nf)) * rng.uniform(0.5, 20, size=nf)
    X[rng.random((n, nf)) < zero_frac] = 0.0
    signal = X[:, 0] - 0.5 * X[:, 1] + np.sin(X[:, 2 % nf]) + rng.normal(scale=0.5, size=n)
    X[rng.random((n, nf)) < nan_frac] = np.nan
    return X, signal


def main():
    os.makedirs(WORK, exist_ok=True)
    X, s = data(1500, 6, 1)
    yb = (s > 0).astype(int)
    case("binary_nan", {"objective": "binary", "num_leaves": 15}, X, yb, 20,
         iters=(None, (0, 5), (3, 7), (10, 0), (18, 10)))
    case("binary_sigmoid", {"objective": "binary", "sigmoid": 0.7, "num_leaves": 7}, X, yb, 10)
    case("binary_zero_as_missing", {"objective": "binary", "zero_as_missing": True,
                                    "num_leaves": 15}, X, yb, 15, seed=1)
    case("binary_no_missing", {"objective": "binary", "use_missing": False, "num_leaves": 15},
         X, yb, 15, seed=2)
    Xz, sz = data(1500, 5, 7, nan_frac=0.0, zero_frac=0.3)
    case("binary_zeros_no_nan", {"objective": "binary", "num_leaves": 15}, Xz,
         (sz > 0).astype(int), 15, seed=3)

    # Categoricals: many levels (bitsets over several words), few levels (one-hot), negatives.
    rng = np.random.default_rng(5)
    n = 3000
    Xc = np.column_stack([rng.integers(0, 120, n).astype(float), rng.normal(size=n),
                          rng.integers(0, 3, n).astype(float), rng.integers(-3, 40, n)
                          .astype(float)])
    Xc[rng.random(n) < 0.05, 0] = np.nan
    eff = rng.normal(size=200)
    yc = (eff[np.nan_to_num(Xc[:, 0]).astype(int) % 200] * (~np.isnan(Xc[:, 0])) + Xc[:, 1]
          + (Xc[:, 2] == 1) + 0.3 * (Xc[:, 3] % 5 == 0) > 0.3).astype(int)
    case("categorical", {"objective": "binary", "num_leaves": 31, "min_data_per_group": 5,
                         "cat_smooth": 1, "max_cat_threshold": 64, "cat_l2": 1},
         Xc, yc, 20, cat_cols=(0, 2, 3), names=["merchant_cat", "amount", "gender", "hour"])
    case("categorical_multiclass", {"objective": "multiclass", "num_class": 3,
                                    "num_leaves": 15, "min_data_per_group": 5},
         Xc, (yc + (Xc[:, 1] > 1)).astype(int), 8, cat_cols=(0, 2, 3), seed=4)

    X3, s3 = data(1500, 5, 11)
    y3 = np.digitize(s3, [-1, 1]).astype(int)
    case("multiclass", {"objective": "multiclass", "num_class": 3, "num_leaves": 7}, X3, y3, 10,
         iters=(None, (2, 3), (0, 1)))
    case("multiclassova", {"objective": "multiclassova", "num_class": 3, "num_leaves": 7,
                           "sigmoid": 1.3}, X3, y3, 10)

    Xr, sr = data(1500, 5, 21)
    case("linear_tree", {"objective": "regression", "linear_tree": True, "num_leaves": 8,
                         "linear_lambda": 0.1}, Xr, 3 * sr + np.nan_to_num(Xr[:, 3]), 10,
         kinds=("raw", "pred"))
    case("linear_tree_binary", {"objective": "binary", "linear_tree": True, "num_leaves": 6},
         X, yb, 6, seed=9)
    case("rf_binary", {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.7,
                       "bagging_freq": 1, "feature_fraction": 0.8, "num_leaves": 15},
         X, yb, 10, iters=(None, (2, 4)))
    case("rf_regression", {"objective": "regression", "boosting": "rf", "bagging_fraction": 0.6,
                           "bagging_freq": 1, "num_leaves": 15}, Xr, sr, 8)
    case("dart", {"objective": "binary", "boosting": "dart", "num_leaves": 7}, X, yb, 10)

    pos = np.exp(sr / 4)
    for obj, extra, target in [
        ("regression", {}, sr), ("regression", {"reg_sqrt": True}, sr * 10),
        ("regression_l1", {}, sr), ("regression_l1", {"reg_sqrt": True}, np.abs(sr)),
        ("huber", {}, sr), ("fair", {}, sr), ("quantile", {"alpha": 0.8}, sr),
        ("mape", {}, sr + 10), ("poisson", {}, np.round(pos)), ("gamma", {}, pos + 0.1),
        ("tweedie", {"tweedie_variance_power": 1.3}, np.round(pos)),
        ("cross_entropy", {}, 1 / (1 + np.exp(-sr))),
        ("cross_entropy_lambda", {}, 1 / (1 + np.exp(-sr))),
    ]:
        label = obj + ("_sqrt" if extra.get("reg_sqrt") else "")
        p = {"objective": obj, "num_leaves": 15}
        p.update(extra)
        case(label, p, Xr, target, 12, seed=len(label))

    # Ranking: 100 queries of 15 documents.
    rel = np.clip(np.round(sr + 1), 0, 4).astype(int)
    case("lambdarank", {"objective": "lambdarank", "num_leaves": 7}, Xr, rel, 10,
         group=[15] * 100)
    case("rank_xendcg", {"objective": "rank_xendcg", "num_leaves": 7}, Xr, rel, 10,
         group=[15] * 100)

    # Single-leaf trees: no split can satisfy min_data_in_leaf.
    case("single_leaf", {"objective": "binary", "min_data_in_leaf": 10000}, X, yb, 3)
    case("single_leaf_regression", {"objective": "regression", "min_data_in_leaf": 10000,
                                    "boost_from_average": True}, Xr, sr, 2)
    # Deep trees: many leaves, tiny leaves.
    Xd, sd = data(4000, 8, 31, nan_frac=0.05)
    case("deep", {"objective": "regression", "num_leaves": 400, "min_data_in_leaf": 1,
                  "min_sum_hessian_in_leaf": 0, "max_bin": 1023}, Xd, sd + Xd[:, 4] * 3, 3)
    # 0 trees: a booster that never trained.
    case("zero_trees", {"objective": "binary"}, X, yb, 0, untrained=True,
         kinds=("raw", "pred"))
    # The fraud model's shape: 100 trees x 31 leaves, 16 features.
    Xf, sf = data(5000, 16, 41, nan_frac=0.02)
    fnames = ["amount", "lat", "lon", "merch_lat", "merch_lon", "city_pop", "hour", "dow",
              "age", "dist_km", "cat_id", "gender", "amt_z", "merch_freq", "state_rate",
              "job_rate"]
    case("fraud_shape", {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05},
         Xf, (sf > 1).astype(int), 100, names=fnames, n_test=1000)

    # The bundled default model, whatever its shape today.
    case_model_file("default_model", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "..", "models", "default", "model.txt"))
    cli_errors()

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
