"""Trains a fraud model bundle from a labelled transactions CSV.

Features come only from the C pipeline (`fraudctl fit` / `fraudctl features`); this script
never computes a feature itself. Some features may be stateful (the per-customer behaviour
features, named cust_*): a row's values depend on the same customer's earlier rows in file
order, so the feature matrix is always computed over the WHOLE file in time order (the state
is warm at the holdout, as in the streaming detector) and then split by a time mask.

Steps:
  1. time order: the rows are taken in transaction_time order (a file that is not in time
     order is stably sorted by it first; recorded in metadata.json);
  2. time split: the last ~20% by transaction_time is the holdout, never used for fitting
     statistics, training or early stopping; the last ~15% of the training period is the
     validation slice for early stopping;
  3. selection stage: `fraudctl fit` on the training part minus the validation slice,
     `fraudctl features` over the whole file; LightGBM on train-minus-validation with early
     stopping on the validation slice's PR-AUC gives the number of trees, once per fraud
     weight (scale_pos_weight: --pos-weight auto, the default, tries a small grid and keeps
     the weight with the best validation recall at the bundle's threshold among those whose
     validation precision there is at least 0.93);
  4. final stage: `fraudctl fit` on the whole training part (the bundle's stats.json),
     `fraudctl features` over the whole file; the final model is retrained on the whole
     training part with that number of trees;
  5. holdout evaluation of the final model (ROC-AUC, PR-AUC, precision/recall/F1 at the
     threshold, recall at precision 0.9, confusion matrix) and the holdout metrics by number
     of trees; optional ablation (--ablation) and transfer evaluation on other labelled files
     (--eval, scored with the bundle by `fraudctl score`);
  6. the bundle: model.txt, stats.json, metadata.json, model_card.md, score_histogram.png.
Features named by --ignore-features (default: the seven identity frequencies freq_* and
cust_n_prev) stay in the bundle's feature list but are set to 0.0 in every matrix the model
is trained or early-stopped on, so no tree splits on them; model.txt is checked for it.
Deterministic: one thread, fixed seed, the same data and options give the same bundle.
"""

import argparse
import datetime
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import lightgbm as lgb
from sklearn.metrics import (average_precision_score, confusion_matrix,
                             precision_recall_curve, roc_auc_score)

# The features of the original design (names only, to label the ablation); the pipeline's
# other stateless features are analyst features that must earn their place.
BASELINE = [
    "amount", "lat", "lon", "population_city", "hour", "log1p_amount",
    "log1p_population_city", "high_amount", "cat_id_risk", "freq_merch", "freq_name_1",
    "freq_name_2", "freq_jobs", "freq_us_state", "freq_street", "freq_one_city",
]
# Features the pipeline computes but the model does not use by default (--ignore-features):
# the identity frequencies count how often the training world's own merchants, names, jobs,
# streets, cities and states occur, i.e. they encode who lives in the synthetic world, not how
# fraud looks (a file from another world shares almost no names, so they are ~0 there, a value
# no training row had); cust_n_prev measures how long the file has known the customer, which
# shifts between the training period and later data.
IDENTITY_FREQ = ["freq_merch", "freq_name_1", "freq_name_2", "freq_jobs", "freq_us_state",
                 "freq_street", "freq_one_city"]
DEFAULT_IGNORE = IDENTITY_FREQ + ["cust_n_prev"]
IGNORE_REASON = (
    "The identity frequencies (freq_merch, freq_name_1, freq_name_2, freq_jobs, "
    "freq_us_state, freq_street, freq_one_city) encode the identity of the training world's "
    "merchants and customers, not how fraud looks: data from another world shares almost "
    "none of those names, so they are ~0 there, a value no training row had. Measured with "
    "LightGBM on the feature matrices, scored on a locally generated run of the real Sparkov "
    "simulator: PR-AUC 0.886 with every feature, 0.934 without the seven freq_*, while the "
    "generated holdout moved by at most 0.007. cust_n_prev (how many earlier rows of the "
    "customer the file holds) measures how long the file has known the customer, which "
    "shifts between the training period and later data, and did not earn its place in the "
    "ablation.")
# Per-customer behaviour (stateful) features: their names start with this.
BEHAVIOUR_PREFIX = "cust_"
# Recall is reported at the best threshold whose precision is at least this.
TARGET_PRECISION = 0.9
# Number-of-trees checkpoints of the trees table (the final count is always added).
TREE_CHECKPOINTS = [10, 25, 50, 100, 150, 200, 300, 400, 500, 700, 1000]
# --pos-weight auto: the scale_pos_weight values tried, and the validation precision at the
# bundle's threshold a value must reach (TARGET_PRECISION plus a margin: the shipped model is
# retrained on more rows than the one measured, and its precision must not fall below
# TARGET_PRECISION on data it has not seen).
POS_WEIGHT_GRID = [1.0, 3.0, 10.0, 30.0, 100.0]
POS_WEIGHT_MARGIN = 0.03
# The holdout PR-AUC of the final model may sit at most this far below the best PR-AUC of a
# smaller number of trees before the run reports it as falling (a defect to look into).
FALL_TOLERANCE = 0.01


def log(msg):
    print(f"train: {msg}", file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, ok=(0,)):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in ok:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"train: command failed ({p.returncode}): {shlex.join(cmd)}")
    return p


def read_transactions(path):
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for col in ("transaction_time", "target"):
        if col not in df.columns:
            raise SystemExit(f"train: {path}: needs a {col} column")
    return df


def labels(df, path):
    t = df["target"].str.strip()
    bad = ~t.isin(["0", "1"])
    if bad.any():
        i = int(np.nonzero(bad.to_numpy())[0][0])
        raise SystemExit(f"train: {path}: data row {i}: target must be 0 or 1, "
                         f"got {df['target'].iloc[i]!r}")
    return t.to_numpy() == "1"


def is_time_ordered(times):
    # "YYYY-MM-DD HH:MM[:SS]" sorts correctly as text.
    return bool((times[1:] >= times[:-1]).all()) if len(times) > 1 else True


def late_mask(times, frac):
    """True for the rows at or after the time of the row at position (1 - frac) in time
    order (the last ~frac of the rows by time; rows sharing the cutoff time go together)."""
    order = np.sort(times, kind="stable")
    k = int(len(order) * (1.0 - frac))
    k = min(max(k, 1), len(order) - 1)
    cutoff = order[k]
    late = times >= cutoff
    if late.all() or not late.any():
        raise SystemExit("train: cannot split by time (all rows at one time?)")
    return late, str(cutoff)


def load_matrix(path, nrows):
    m = pd.read_csv(path, float_precision="round_trip")
    if len(m) != nrows:
        raise SystemExit(f"train: {path}: {len(m)} feature rows for {nrows} input rows")
    m.pop("target")  # labels come from the input file, aligned row by row
    return m


def features(fraudctl, statsdir, data_csv, out_csv, nrows, candidates):
    run([fraudctl, "features", "--model-dir", statsdir, "--input", data_csv,
         "--output", out_csv, "--with-target", *(["--candidates"] if candidates else [])])
    return load_matrix(out_csv, nrows)


def lgb_params(args):
    return {
        "objective": "binary",
        # Weight of the fraud rows in the loss (1: none); --pos-weight auto chooses it on the
        # validation slice (choose_pos_weight).
        "scale_pos_weight": 1.0,
        # A small learning rate and large leaves: with ~0.5% positives the defaults (0.1, 20)
        # overfit badly on the time holdout (ROC-AUC 0.90 vs 0.99 on generated data).
        "learning_rate": args.learning_rate,
        "num_leaves": args.leaves,
        "min_data_in_leaf": 100,
        # Guards on the leaf values. With features that make the classes nearly separable a
        # leaf's sum of hessians p(1-p) goes to 0 and the Newton step -G/(H + lambda_l2)
        # explodes; trees added late then push already-confident rows further and ranking on
        # new data gets worse as trees are added. lambda_l2 bounds the step by the gradient,
        # min_sum_hessian_in_leaf refuses leaves made only of rows the model is already sure
        # of, max_delta_step caps every leaf's output (before the learning rate).
        "lambda_l2": args.lambda_l2,
        "min_sum_hessian_in_leaf": args.min_hessian,
        "max_delta_step": args.max_delta_step,
        # Bounded depth bounds the scoring cost per row (the C engine walks each tree to its
        # leaf).
        "max_depth": args.max_depth,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "seed": args.seed,
        "verbose": -1,
    }


def dataset(X, y, names, zero=()):
    """The LightGBM training/validation set; the columns named in zero (ignored features)
    are set to the constant 0.0, so no tree can split on them (a constant column has one
    bin) while the model keeps the full feature list."""
    a = X[names].to_numpy(dtype=np.float64)
    for i, n in enumerate(names):
        if n in zero:
            a[:, i] = 0.0
    return lgb.Dataset(a, label=y.astype(np.int32), feature_name=names, free_raw_data=True)


def parse_ignore(v):
    return [n for n in (x.strip() for x in v.split(",")) if n]


def used_features(model_txt):
    """The feature names model.txt splits on (its split_feature= lines are indices into its
    feature_names= line)."""
    fnames, used = None, set()
    with open(model_txt, encoding="utf-8") as f:
        for line in f:
            if line.startswith("feature_names="):
                fnames = line.rstrip("\n").split("=", 1)[1].split(" ")
            elif line.startswith("split_feature="):
                used.update(int(i) for i in line.rstrip("\n").split("=", 1)[1].split())
    if fnames is None:
        raise SystemExit(f"train: {model_txt}: no feature_names= line")
    return {fnames[i] for i in used}


def predict(booster, X, names, k=None):
    return booster.predict(X[names].to_numpy(dtype=np.float64), num_iteration=k)


def recall_at_precision(y, p, target):
    """The best recall among thresholds whose precision is >= target, and that threshold
    (None when no threshold reaches it)."""
    if y.sum() == 0:
        return 0.0, None
    prec, rec, thr = precision_recall_curve(y, p)
    ok = prec[:-1] >= target  # the last point (precision 1, recall 0) has no threshold
    if not ok.any():
        return 0.0, None
    i = np.argmax(np.where(ok, rec[:-1], -1.0))
    return float(rec[i]), float(thr[i])


def evaluate(y, p, threshold):
    y = np.asarray(y).astype(int)
    flag = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, flag, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = len(set(y.tolist())) == 2
    r90, t90 = recall_at_precision(y, p, TARGET_PRECISION)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "threshold": threshold,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        f"recall_at_precision_{TARGET_PRECISION:g}": r90,
        f"threshold_at_precision_{TARGET_PRECISION:g}": t90,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "rows": int(len(y)),
        "positives": int(y.sum()),
    }


R90 = f"recall_at_precision_{TARGET_PRECISION:g}"


def short_metrics(y, p, threshold):
    both = len(set(np.asarray(y).astype(int).tolist())) == 2
    r90, _ = recall_at_precision(y, p, TARGET_PRECISION)
    tp = int(((p >= threshold) & (y == 1)).sum())
    return {"roc_auc": float(roc_auc_score(y, p)) if both else None,
            "pr_auc": float(average_precision_score(y, p)) if both else None,
            "recall": tp / int(y.sum()) if y.sum() else 0.0,
            R90: r90}


# ---- training ---------------------------------------------------------------------------

def select_rounds(params, X, y, fit, val, names, args, zero=()):
    """Trains on the training part minus the validation slice with early stopping on the
    validation slice's PR-AUC (LightGBM's average_precision). Returns the booster (every
    tree trained before stopping), the chosen number of trees and the validation curve."""
    p = dict(params, metric="average_precision")
    curve = {}
    booster = lgb.train(
        p, dataset(X[fit], y[fit], names, zero), num_boost_round=args.trees,
        valid_sets=[dataset(X[val], y[val], names, zero)], valid_names=["validation"],
        callbacks=[lgb.early_stopping(args.patience, first_metric_only=True, verbose=False),
                   lgb.record_evaluation(curve)],
        keep_training_booster=True)  # keep the trees after the best (for the trees table)
    ap = np.asarray(curve["validation"]["average_precision"])
    lo = min(args.min_trees, len(ap))
    best = lo + int(np.argmax(ap[lo - 1:]))  # first best, counting trees from 1
    return booster, best, [float(v) for v in ap]


def parse_pos_weight(v):
    if v == "auto":
        return v
    try:
        w = float(v)
    except ValueError:
        w = -1.0
    if not (w > 0.0 and np.isfinite(w)):
        raise argparse.ArgumentTypeError(f"expected auto or a positive number, got {v!r}")
    return w


def choose_pos_weight(params, X, y, fit, val, names, args, zero=()):
    """Early stopping (select_rounds) for each scale_pos_weight (args.pos_weight: a number,
    or auto for POS_WEIGHT_GRID), each scored on the validation slice at the bundle's
    threshold with its selected number of trees. auto keeps the weight with the highest
    validation recall among those whose validation precision is at least TARGET_PRECISION +
    POS_WEIGHT_MARGIN (ties: the smaller weight); none reaching it keeps the most precise.
    The holdout is never looked at. Returns (weight, booster, trees, curve, rows, reason)."""
    grid = POS_WEIGHT_GRID if args.pos_weight == "auto" else [args.pos_weight]
    need = TARGET_PRECISION + POS_WEIGHT_MARGIN
    rows, kept = [], {}
    for w in grid:
        t0 = time.time()
        b, k, curve = select_rounds(dict(params, scale_pos_weight=w), X, y, fit, val, names,
                                    args, zero)
        m = evaluate(y[val], predict(b, X[val], names, k), args.threshold)
        rows.append({"pos_weight": w, "trees": k, "trained": b.current_iteration(),
                     "validation_pr_auc": curve[k - 1], "precision": m["precision"],
                     "recall": m["recall"], R90: m[R90],
                     "eligible": bool(m["precision"] >= need)})
        kept[w] = (b, k, curve)
        log(f"pos_weight {w:g}: {k} trees, validation PR-AUC {curve[k - 1]:.5f}, at "
            f"{args.threshold:g} precision {m['precision']:.4f} recall {m['recall']:.4f} "
            f"({time.time() - t0:.0f} s)")
    if len(grid) == 1:
        best = rows[0]
        reason = f"given (--pos-weight {grid[0]:g})"
    else:
        ok = [r for r in rows if r["eligible"]]
        if ok:
            best = max(ok, key=lambda r: (r["recall"], -r["pos_weight"]))
            reason = (f"--pos-weight auto: the highest validation recall at the threshold "
                      f"{args.threshold:g} ({best['recall']:.4f}) among the weights "
                      f"{', '.join(f'{w:g}' for w in grid)} whose validation precision there "
                      f"is at least {need:g} ({best['precision']:.4f})")
        else:
            best = max(rows, key=lambda r: (r["precision"], -r["pos_weight"]))
            reason = (f"--pos-weight auto: no weight reached validation precision {need:g} "
                      f"at the threshold {args.threshold:g}; the most precise one is kept")
    for r in rows:
        r["chosen"] = r is best
    b, k, curve = kept[best["pos_weight"]]
    return best["pos_weight"], b, k, curve, rows, reason


def trees_table(final, rounds, X, y, hold, names, sel, Xsel, val):
    """Holdout PR-AUC/ROC-AUC of the final model by number of trees, with the selection
    model's validation PR-AUC at the same counts (where it has that many trees)."""
    ks = sorted({k for k in TREE_CHECKPOINTS if k < rounds} | {rounds})
    Xh = X[hold][names].to_numpy(dtype=np.float64)
    Xv = Xsel[val][names].to_numpy(dtype=np.float64)
    rows = []
    for k in ks:
        ph = final.predict(Xh, num_iteration=k)
        r = {"trees": k, "holdout_roc_auc": float(roc_auc_score(y[hold], ph)),
             "holdout_pr_auc": float(average_precision_score(y[hold], ph)),
             "validation_pr_auc": None}
        if k <= sel.current_iteration() and y[val].any():
            r["validation_pr_auc"] = float(average_precision_score(
                y[val], sel.predict(Xv, num_iteration=k)))
        rows.append(r)
    peak = max(rows, key=lambda r: r["holdout_pr_auc"])
    drop = peak["holdout_pr_auc"] - rows[-1]["holdout_pr_auc"]
    check = {"peak_trees": peak["trees"], "peak_holdout_pr_auc": peak["holdout_pr_auc"],
             "final_holdout_pr_auc": rows[-1]["holdout_pr_auc"], "drop": drop,
             "tolerance": FALL_TOLERANCE, "falls": bool(drop > FALL_TOLERANCE)}
    return rows, check


# ---- ablation ---------------------------------------------------------------------------

def behaviour_groups(cust, mode):
    """Leave-out units of the behaviour features: one feature each, or small groups named by
    the word after the prefix (cust_cnt_1h and cust_cnt_24h -> cust_cnt_*)."""
    if mode == "each":
        return [(c, [c]) for c in cust]
    groups = {}
    for c in cust:
        word = c[len(BEHAVIOUR_PREFIX):].split("_")[0]
        groups.setdefault(f"{BEHAVIOUR_PREFIX}{word}_*", []).append(c)
    return [(g if len(m) > 1 else m[0], m) for g, m in groups.items()]


def ablation_variants(model_names, all_names, loo_mode, ignored=()):
    """(label, features, part) in the order they are reported. part "analyst": the stateless
    analyst features (as before the behaviour features); part "behaviour": the stateless
    model features with and without the cust_* features. model_names are the features the
    model uses (the pipeline's list minus the ignored ones); each ignored feature is also
    tried added back, one at a time and all together."""
    ignored = [n for n in all_names if n in ignored]
    cust = [n for n in all_names if n.startswith(BEHAVIOUR_PREFIX) and n not in ignored]
    stateless = [n for n in all_names if not n.startswith(BEHAVIOUR_PREFIX)]
    model_sl = [n for n in model_names if not n.startswith(BEHAVIOUR_PREFIX)]
    analyst = [n for n in stateless if n not in BASELINE]
    in_model = [n for n in analyst if n in model_sl]
    candidates = [n for n in analyst if n not in model_sl and n not in ignored]
    ign_sl = [n for n in ignored if not n.startswith(BEHAVIOUR_PREFIX)]
    ign_cust = [n for n in ignored if n.startswith(BEHAVIOUR_PREFIX)]
    base = [n for n in BASELINE if n in all_names]
    sl_label = "stateless model features" if cust else "model features"
    v = [("baseline (original design)", base, "analyst")]
    v += [(f"baseline + {a}", base + [a], "analyst") for a in analyst]
    v.append((sl_label, model_sl, "analyst"))
    v += [(f"{sl_label} - {a}", [n for n in model_sl if n != a], "analyst")
          for a in in_model if len(in_model) > 1]
    v += [(f"{sl_label} + {a} (candidate)", model_sl + [a], "analyst") for a in candidates]
    v += [(f"{sl_label} + {a} (ignored)", model_sl + [a], "analyst") for a in ign_sl]
    if len(ign_sl) > 1:
        v.append((f"{sl_label} + every ignored stateless feature", model_sl + ign_sl,
                  "analyst"))
    if len(candidates) > 1:
        v.append(("every stateless feature" if cust else "every feature", stateless,
                  "analyst"))
    if cust:
        full = model_sl + cust
        v.append((f"{sl_label} (baseline for behaviour)", model_sl, "behaviour"))
        v.append((f"{sl_label} + all {BEHAVIOUR_PREFIX}*", full, "behaviour"))
        for label, drop in behaviour_groups(cust, loo_mode):
            v.append((f"{sl_label} + all {BEHAVIOUR_PREFIX}* - {label}",
                      [n for n in full if n not in drop], "behaviour"))
        for a in ign_cust:
            v.append((f"{sl_label} + all {BEHAVIOUR_PREFIX}* + {a} (ignored)", full + [a],
                      "behaviour"))
        in_model_cust = [n for n in model_names if n.startswith(BEHAVIOUR_PREFIX)]
        if in_model_cust and set(model_names) != set(full):
            v.append(("model features", model_names, "behaviour"))
    if ignored:
        v.append(("model features + every ignored feature (the pipeline's full list)",
                  list(model_names) + ignored, "behaviour" if cust else "analyst"))
    return v


def ablation(X, y, fit, val, hold, model_names, all_names, params, rounds, threshold,
             loo_mode, ignored=()):
    """Each variant: trained on the training part minus the validation slice with a fixed
    number of trees, scored on the validation slice (to decide) and the holdout (to
    confirm)."""
    rows, done = [], {}
    for label, names, part in ablation_variants(model_names, all_names, loo_mode, ignored):
        names = [n for n in all_names if n in names]  # keep pipeline order
        key = tuple(names)
        t0 = time.time()
        if key not in done:
            b = lgb.train(params, dataset(X[fit], y[fit], names), num_boost_round=rounds)
            done[key] = (short_metrics(y[val], predict(b, X[val], names), threshold),
                         short_metrics(y[hold], predict(b, X[hold], names), threshold))
        mv, mh = done[key]
        rows.append({"part": part, "variant": label, "features": len(names),
                     "validation": mv, "holdout": mh})
        log(f"ablation {label}: validation PR-AUC {fmt(mv['pr_auc'])} R@P{TARGET_PRECISION:g}"
            f" {fmt(mv[R90])}; holdout PR-AUC {fmt(mh['pr_auc'])} recall@{threshold:g} "
            f"{fmt(mh['recall'])} R@P{TARGET_PRECISION:g} {fmt(mh[R90])} "
            f"({time.time() - t0:.0f} s)")
    return rows


# ---- transfer evaluation ----------------------------------------------------------------

def eval_file(fraudctl, bundle, path, work, threshold):
    """Scores a labelled CSV with the bundle through `fraudctl score` (as the detector would,
    in file order, stateful features starting empty at the first row) and evaluates."""
    df = read_transactions(path)
    y = labels(df, path)
    del df["target"]
    out = os.path.join(work, "eval_scores.csv")
    p = run([fraudctl, "score", "--model-dir", bundle, "--input", path, "--output", out],
            ok=(0, 1))
    s = pd.read_csv(out, float_precision="round_trip", keep_default_na=False)
    if p.returncode != 0 and len(s) == 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"train: --eval {path}: fraudctl score failed")
    rows = s["row"].to_numpy()
    m = evaluate(y[rows], s["score"].to_numpy(dtype=np.float64), threshold)
    times = df["transaction_time"].to_numpy()
    return {"file": path, "sha256": sha256_file(path), "rows_in_file": int(len(df)),
            "invalid_rows_skipped": int(len(df) - len(s)),
            "time_ordered": is_time_ordered(times),
            "first_time": str(times.min()) if len(times) else None,
            "last_time": str(times.max()) if len(times) else None,
            "metrics": m}


# ---- outputs ----------------------------------------------------------------------------

def histogram(path, y, p, threshold):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
    bins = np.linspace(0.0, 1.0, 41)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, label="legitimate", color="#4477aa")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, label="fraud", color="#cc3311")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("score (holdout)")
    ax.set_ylabel("transactions (log scale)")
    ax.set_title("Holdout score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def fmt(v, d=4):
    return "n/a" if v is None else f"{v:.{d}f}"


def metrics_table(m):
    t = m["threshold"]
    return [
        "| metric | value |",
        "|---|---|",
        f"| ROC-AUC | {fmt(m['roc_auc'])} |",
        f"| PR-AUC (average precision) | {fmt(m['pr_auc'])} |",
        f"| precision at {t:g} | {fmt(m['precision'])} |",
        f"| recall at {t:g} | {fmt(m['recall'])} |",
        f"| F1 at {t:g} | {fmt(m['f1'])} |",
        f"| recall at precision >= {TARGET_PRECISION:g} | {fmt(m[R90])} "
        f"(threshold {fmt(m['threshold_at_precision_' + f'{TARGET_PRECISION:g}'], 6)}) |",
    ]


def confusion_lines(m):
    cm = m["confusion_matrix"]
    return [
        f"Confusion matrix at threshold {m['threshold']:g} "
        f"({m['rows']} rows, {m['positives']} fraud):",
        "",
        "| | predicted legitimate | predicted fraud |",
        "|---|---|---|",
        f"| actual legitimate | {cm['tn']} | {cm['fp']} |",
        f"| actual fraud | {cm['fn']} | {cm['tp']} |",
    ]


def trees_lines(meta):
    lines = ["| trees | holdout ROC-AUC | holdout PR-AUC | validation PR-AUC (selection "
             "model) |", "|---|---|---|---|"]
    for r in meta["trees_table"]:
        lines.append(f"| {r['trees']} | {r['holdout_roc_auc']:.5f} | "
                     f"{r['holdout_pr_auc']:.5f} | {fmt(r['validation_pr_auc'], 5)} |")
    return lines


def ablation_lines(abl, threshold):
    head = (f"| variant | features | val PR-AUC | val recall@{threshold:g} | val R@P{TARGET_PRECISION:g} "
            f"| holdout ROC-AUC | holdout PR-AUC | holdout recall@{threshold:g} | "
            f"holdout R@P{TARGET_PRECISION:g} |")
    lines = []
    for part, title in (("analyst", "Stateless analyst features"),
                        ("behaviour", "Behaviour (cust_*) features")):
        rows = [r for r in abl if r["part"] == part]
        if not rows:
            continue
        lines += [f"### {title}", "", head, "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            v, h = r["validation"], r["holdout"]
            lines.append(f"| {r['variant']} | {r['features']} | {fmt(v['pr_auc'])} | "
                         f"{fmt(v['recall'])} | {fmt(v[R90])} | {fmt(h['roc_auc'])} | "
                         f"{fmt(h['pr_auc'])} | {fmt(h['recall'])} | {fmt(h[R90])} |")
        lines.append("")
    return lines


def pos_weight_lines(tr, threshold):
    rows = tr["pos_weight_search"]
    if len(rows) < 2:
        return []
    lines = [
        "## Fraud weight (chosen on the validation slice)",
        "",
        f"With a 0.5% fraud rate and the leaf-value guards, an unweighted model's scores "
        f"rarely reach {threshold:g}: it ranks well but catches few frauds at the threshold. "
        f"Each scale_pos_weight below went through the same early stopping (step 1 below); "
        f"its selection model was then scored on the validation slice at the bundle's "
        f"threshold {threshold:g}. The weight kept is the one with the highest validation "
        f"recall among those with validation precision >= "
        f"{TARGET_PRECISION + POS_WEIGHT_MARGIN:g} ({TARGET_PRECISION:g} plus a margin of "
        f"{POS_WEIGHT_MARGIN:g} for the retrained model); the holdout played no part.",
        "",
        f"| scale_pos_weight | trees | validation PR-AUC | precision at {threshold:g} | "
        f"recall at {threshold:g} | R@P{TARGET_PRECISION:g} | |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['pos_weight']:g} | {r['trees']} | {r['validation_pr_auc']:.4f} | "
                     f"{r['precision']:.4f} | {r['recall']:.4f} | {r[R90]:.4f} | "
                     + ("**chosen**" if r["chosen"] else
                        ("" if r["eligible"] else "precision too low")) + " |")
    return lines + [""]


def ignored_lines(meta):
    ig = meta.get("ignored_features") or {}
    if not ig.get("names"):
        return []
    return [f"- Ignored by the model ({len(ig['names'])}): {', '.join(ig['names'])}. The "
            "pipeline computes them and they stay in the feature list above (the engine "
            "reads them), but they were set to 0.0 for training, early stopping and the "
            "fraud-weight search, so no tree splits on them (checked on model.txt). "
            f"Why: {ig['reason']} The ablation below reports what adding them back does."]


def model_card(path, meta):
    m = meta["metrics"]["holdout"]
    sp = meta["split"]
    tr = meta["training"]
    cust = [n for n in meta["feature_names"] if n.startswith(BEHAVIOUR_PREFIX)]
    lines = [
        "# Model card: fraud scoring bundle",
        "",
        f"- Training data: `{meta['training_data']['file']}` "
        f"(sha256 `{meta['training_data']['sha256']}`, {meta['training_data']['rows']} rows"
        + ("" if meta["training_data"]["time_ordered"] else
           "; not in time order in the file, stably sorted by transaction_time first") + ")",
        f"- Data source: {meta['training_data']['source'] or 'not recorded'}",
        f"- Split by time: training part = rows before {sp['cutoff_time']} "
        f"({sp['train_rows']} rows), holdout = the rest ({sp['holdout_rows']} rows, "
        f"{m['positives']} fraud), never used for statistics, training or early stopping. "
        f"Validation slice for early stopping = training rows at or after "
        f"{sp['validation_cutoff_time']} ({sp['validation_rows']} rows).",
        f"- Model: LightGBM {meta['lightgbm_version']}, {tr['final_trees']} trees x at most "
        f"{meta['params']['num_leaves']} leaves, max depth {meta['params']['max_depth']}, "
        f"learning rate {meta['params']['learning_rate']}, seed {meta['params']['seed']}, "
        "one thread (deterministic)",
        f"- Leaf-value guards: lambda_l2 {meta['params']['lambda_l2']:g}, "
        f"min_sum_hessian_in_leaf {meta['params']['min_sum_hessian_in_leaf']:g}, "
        f"max_delta_step {meta['params']['max_delta_step']:g} (a leaf adds at most "
        f"{meta['params']['max_delta_step'] * meta['params']['learning_rate']:g} to the raw "
        "score), min_data_in_leaf "
        f"{meta['params']['min_data_in_leaf']}: nearly separable classes cannot make a "
        "leaf's Newton step explode; scores also move towards the extremes more slowly, "
        "which lowers recall at a fixed high threshold for a given number of trees",
        f"- Fraud weight (scale_pos_weight): {tr['pos_weight']:g}, {tr['pos_weight_reason']}."
        + (" Fraud rows weigh more in the loss, so the scores are not calibrated "
           "probabilities (they overstate the fraud rate); they rank as before and the "
           "threshold is read against the precision and recall below."
           if tr["pos_weight"] != 1.0 else ""),
        f"- Features ({len(meta['feature_names'])}): {', '.join(meta['feature_names'])}",
        *ignored_lines(meta),
        f"- Command: `{meta['command']}`",
        "",
        "## How it was trained",
        "",
        "The feature matrix comes from `fraudctl features` run over the whole file in time "
        "order, then split by the time masks; features of a row only read earlier rows "
        "(stateful ones) or the fitted statistics, so the holdout rows see the customers' "
        "history from the training period (warm state, as the streaming detector does).",
        "",
        f"1. Number of trees: statistics fitted (`fraudctl fit`) on the training part minus "
        f"the validation slice; LightGBM on those rows with early stopping on the validation "
        f"slice's PR-AUC (patience {tr['patience']}, at least {tr['min_trees']} and at most "
        f"{tr['max_trees']} trees): best at {tr['selected_trees']} trees (validation PR-AUC "
        f"{fmt(tr['validation_pr_auc_at_selected'])}; {tr['trees_trained_in_selection']} "
        "trained before stopping)."
        + (f" Training reached the {tr['max_trees']}-tree cap less than {tr['patience']} "
           "trees after the best count, so the cap, not the validation slice, ended the "
           "search (a larger --trees might add a little; the cap keeps the engine's "
           "per-row cost bounded)." if tr["capped_by_max_trees"] else ""),
        f"2. Final model: statistics refitted on the whole training part (this bundle's "
        f"stats.json) and the model retrained on the whole training part with "
        f"{tr['final_trees']} trees.",
        "",
        "Why retrain rather than ship the early-stopped model: the validation slice is the "
        "most recent ~15% of the training period, the data closest to the holdout and to "
        "what the model will score; leaving it out of the shipped model (and out of its "
        "frequency statistics) would throw away exactly the freshest behaviour. The "
        "validation slice only chooses the number of trees; the statistics for that choice "
        "are fitted without it, so it is scored like unseen data (unseen merchants get "
        "frequency 0 as they will in production). The trees table below checks the "
        "transferred count on the holdout, which influenced nothing.",
        "",
        *pos_weight_lines(tr, m["threshold"]),
        "## Holdout metrics (final model)",
        "",
        *metrics_table(m),
        "",
        "For comparison at threshold 0.5: precision {}, recall {}, F1 {}.".format(
            *(fmt(meta["metrics"]["holdout_at_0.5"][k]) for k in ("precision", "recall", "f1"))),
        "",
        *confusion_lines(m),
        "",
        "![holdout score histogram](score_histogram.png)",
        "",
        "## Metrics by number of trees",
        "",
        "Holdout metrics of the final model truncated to its first N trees; the validation "
        "column is the selection model (trained without the validation slice) on the "
        "validation slice, the curve early stopping used.",
        "",
        *trees_lines(meta),
        "",
    ]
    chk = meta["trees_check"]
    if chk["falls"]:
        lines += [f"**Warning:** holdout PR-AUC falls as trees are added: "
                  f"{chk['peak_holdout_pr_auc']:.5f} at {chk['peak_trees']} trees, "
                  f"{chk['final_holdout_pr_auc']:.5f} at the final count (more than "
                  f"{FALL_TOLERANCE:g} lower). Treat this as a defect of the parameters.", ""]
    else:
        lines += [f"Holdout PR-AUC at the final count is within {FALL_TOLERANCE:g} of its "
                  f"best in this table ({chk['peak_holdout_pr_auc']:.5f} at "
                  f"{chk['peak_trees']} trees).", ""]
    abl = meta.get("ablation")
    if abl:
        a = meta["ablation_settings"]
        lines += [
            "## Ablation",
            "",
            f"Each variant is trained on the training part minus the validation slice "
            f"(statistics fitted on those rows) with a fixed {a['trees']} trees and the same "
            f"parameters, then scored on the validation slice (to decide: it is from the "
            f"training period) and on the holdout (to confirm). recall@{m['threshold']:g} is "
            f"at the bundle's threshold; R@P{TARGET_PRECISION:g} is the best recall among "
            f"thresholds with precision >= {TARGET_PRECISION:g}. Behaviour features are left "
            f"out {'one at a time' if a['behaviour_leave_out'] == 'each' else 'in groups'} "
            "from the full set.",
            "",
            *ablation_lines(abl, m["threshold"]),
        ]
    ev = meta.get("eval")
    if ev:
        lines += [
            "## Other labelled data (transfer)",
            "",
            "Scored with this bundle by `fraudctl score`, in file order, as the detector "
            "would: nothing of these files was used for statistics, training or the number "
            "of trees."
            + (" The behaviour (cust_*) features start with empty state at each file's first "
               "row (no customer history), so a customer's first transactions in the file "
               "look like first transactions." if cust else ""),
            "",
        ]
        for e in ev:
            lines += [
                f"### {os.path.basename(e['file'])}",
                "",
                f"`{e['file']}` (sha256 `{e['sha256']}`, {e['rows_in_file']} rows, "
                f"{e['metrics']['positives']} fraud, {e['first_time']} .. {e['last_time']}"
                + ("" if e["time_ordered"] else "; NOT in time order") + ")"
                + (f"; {e['invalid_rows_skipped']} invalid rows skipped by fraudctl score"
                   if e["invalid_rows_skipped"] else ""),
                "",
                *metrics_table(e["metrics"]),
                "",
                *confusion_lines(e["metrics"]),
                "",
            ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def print_summary(meta):
    m = meta["metrics"]["holdout"]
    out = [f"holdout ({m['rows']} rows, {m['positives']} fraud), final model "
           f"{meta['training']['final_trees']} trees:", *metrics_table(m), "",
           "by number of trees:", *trees_lines(meta), ""]
    if meta["trees_check"]["falls"]:
        out.append("WARNING: holdout PR-AUC falls as trees are added (see the card)")
    if meta.get("ablation"):
        out += ["ablation:", *ablation_lines(meta["ablation"], m["threshold"])]
    for e in meta.get("eval", []):
        out += [f"eval {e['file']} (sha256 {e['sha256']}, {e['rows_in_file']} rows, "
                f"{e['metrics']['positives']} fraud):", *metrics_table(e["metrics"]), ""]
    print("\n".join(out))


# ---- main -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled transactions CSV (train.csv)")
    ap.add_argument("--out", required=True, help="bundle directory to write")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--holdout", type=float, default=0.2, help="holdout fraction by time")
    ap.add_argument("--validation", type=float, default=0.15,
                    help="early-stopping slice: this fraction of the training part, by time")
    ap.add_argument("--trees", type=int, default=300,
                    help="most trees (early stopping picks the number up to this)")
    ap.add_argument("--min-trees", type=int, default=20,
                    help="fewest trees early stopping may pick")
    ap.add_argument("--patience", type=int, default=50,
                    help="early stopping: rounds without a better validation PR-AUC")
    ap.add_argument("--leaves", type=int, default=31)
    ap.add_argument("--max-depth", type=int, default=8)
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--lambda-l2", type=float, default=10.0)
    ap.add_argument("--min-hessian", type=float, default=1.0,
                    help="min_sum_hessian_in_leaf")
    ap.add_argument("--max-delta-step", type=float, default=4.0,
                    help="cap on a leaf's output before the learning rate (0: none)")
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--pos-weight", type=parse_pos_weight, default="auto",
                    help="LightGBM scale_pos_weight: a number, or auto (default) to choose "
                         "it on the validation slice from "
                         + ", ".join(f"{w:g}" for w in POS_WEIGHT_GRID)
                         + f" (highest recall at --threshold with precision >= "
                         f"{TARGET_PRECISION + POS_WEIGHT_MARGIN:g})")
    ap.add_argument("--ablation", action="store_true",
                    help="also train feature-set variants (analyst and behaviour features) "
                         "and report them")
    ap.add_argument("--ablation-trees", type=int, default=150,
                    help="fixed trees per ablation variant (at most the final model's)")
    ap.add_argument("--ablation-leave-out", choices=["each", "groups"], default="each",
                    help="leave the cust_* features out one at a time or in groups named "
                         "by their first word (cust_cnt_*)")
    ap.add_argument("--ignore-features", type=parse_ignore, default=list(DEFAULT_IGNORE),
                    metavar="NAME[,NAME...]",
                    help="features the model must not use: trained (and early-stopped, and "
                         "the fraud weight chosen) with these columns set to 0.0, so no tree "
                         "splits on them; the bundle keeps the pipeline's full feature list. "
                         "Default: " + ",".join(DEFAULT_IGNORE) + " ('' for none)")
    ap.add_argument("--eval", action="append", default=[], metavar="CSV",
                    help="also score this labelled CSV with the bundle (repeatable)")
    ap.add_argument("--fraudctl", default=os.environ.get("FRAUDCTL", "build/src/cli/fraudctl"))
    ap.add_argument("--command", default=None, help="command line recorded in metadata")
    ap.add_argument("--data-source", default=None,
                    help="how the data was made (e.g. the fraudctl generate command), recorded")
    args = ap.parse_args(argv)

    if not os.access(args.fraudctl, os.X_OK):
        raise SystemExit(f"train: {args.fraudctl}: not executable (run scripts/build)")
    for e in args.eval:
        if not os.path.isfile(e):
            raise SystemExit(f"train: --eval {e}: no such file")
        with open(e, encoding="utf-8-sig") as f:
            header = f.readline()
        if "target" not in header or "transaction_time" not in header:
            raise SystemExit(f"train: --eval {e}: needs target and transaction_time columns")
    if args.min_trees > args.trees:
        raise SystemExit("train: --min-trees is larger than --trees")
    command = args.command or shlex.join(["scripts/train"] + (argv or sys.argv[1:]))
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fs_train_")
    try:
        df = read_transactions(args.data)
        y = labels(df, args.data)
        times = df["transaction_time"].to_numpy()
        ordered = is_time_ordered(times)
        data_csv = args.data
        if not ordered:
            order = np.argsort(times, kind="stable")
            df = df.iloc[order].reset_index(drop=True)
            y, times = y[order], times[order]
            data_csv = os.path.join(work, "all.csv")
            df.to_csv(data_csv, index=False)
            log(f"{args.data}: not in time order; stably sorted by transaction_time")
        n = len(df)
        hold, cutoff = late_mask(times, args.holdout)
        train = ~hold
        vlate, vcutoff = late_mask(times[train], args.validation)
        val = np.zeros(n, dtype=bool)
        val[np.nonzero(train)[0][vlate]] = True
        fit = train & ~val
        if not y[val].any() or not y[fit].any():
            raise SystemExit("train: no fraud in the validation slice or before it")

        # Selection stage: statistics without the validation slice.
        fit_csv, train_csv = os.path.join(work, "fit.csv"), os.path.join(work, "train.csv")
        df[fit].to_csv(fit_csv, index=False)
        df[train].to_csv(train_csv, index=False)
        del df
        sel_stats, stats = os.path.join(work, "stats_sel"), os.path.join(work, "stats")
        run([args.fraudctl, "fit", "--input", fit_csv, "--out", sel_stats])
        run([args.fraudctl, "fit", "--input", train_csv, "--out", stats])
        names = run([args.fraudctl, "features", "--names"]).stdout.split()
        Xs = features(args.fraudctl, sel_stats, data_csv, os.path.join(work, "fsel.csv"), n,
                      args.ablation)
        assert list(Xs.columns[:len(names)]) == names, "matrix header vs --names"
        all_names = list(Xs.columns)
        unknown = [f for f in args.ignore_features if f not in names]
        if unknown:
            raise SystemExit(f"train: --ignore-features: not in the pipeline's feature list: "
                             f"{', '.join(unknown)}")
        ignored = [f for f in names if f in args.ignore_features]  # pipeline order
        used = [f for f in names if f not in ignored]
        if not used:
            raise SystemExit("train: --ignore-features leaves no feature for the model")
        if ignored:
            log(f"ignored by the model (set to 0.0 for training): {', '.join(ignored)}")
        log(f"{n} rows, {len(all_names)} features ({len(names)} in the bundle, "
            f"{len(used)} used by the model); train "
            f"{int(train.sum())} (validation {int(val.sum())}), holdout {int(hold.sum())}")

        params = lgb_params(args)
        t0 = time.time()
        pos_weight, sel, best, vcurve, pw_rows, pw_reason = choose_pos_weight(
            params, Xs, y, fit, val, names, args, set(ignored))
        params["scale_pos_weight"] = pos_weight
        capped = len(vcurve) == args.trees and best > args.trees - args.patience
        log(f"early stopping: {best} trees (validation PR-AUC {vcurve[best - 1]:.5f}, "
            f"{sel.current_iteration()} trained, {time.time() - t0:.0f} s)"
            + ("; stopped by the --trees cap, not by the validation slice" if capped else ""))

        abl = None
        abl_trees = min(args.ablation_trees, best)
        if args.ablation:
            abl = ablation(Xs, y, fit, val, hold, used, all_names, params, abl_trees,
                           args.threshold, args.ablation_leave_out, ignored)
        if not args.ablation:
            Xs = Xs[names]

        # Final stage: statistics of the whole training part, retrained with `best` trees.
        X = features(args.fraudctl, stats, data_csv, os.path.join(work, "ffinal.csv"), n,
                     False)
        assert list(X.columns) == names
        t0 = time.time()
        booster = lgb.train(params, dataset(X[train], y[train], names, set(ignored)),
                            num_boost_round=best)
        log(f"final model: {best} trees on {int(train.sum())} rows ({time.time() - t0:.0f} s)")
        p = predict(booster, X[hold], names)
        metrics = {"holdout": evaluate(y[hold], p, args.threshold),
                   "holdout_at_0.5": evaluate(y[hold], p, 0.5),
                   "train": evaluate(y[train], predict(booster, X[train], names),
                                     args.threshold),
                   "validation_selection_model": evaluate(
                       y[val], predict(sel, Xs[val], names, best), args.threshold)}
        ttable, tcheck = trees_table(booster, best, X, y, hold, names, sel, Xs, val)
        if tcheck["falls"]:
            log(f"WARNING: holdout PR-AUC falls as trees are added: "
                f"{tcheck['peak_holdout_pr_auc']:.5f} at {tcheck['peak_trees']} trees, "
                f"{tcheck['final_holdout_pr_auc']:.5f} at {best}")

        booster.save_model(os.path.join(args.out, "model.txt"))
        split_on = used_features(os.path.join(args.out, "model.txt"))
        bad = [f for f in ignored if f in split_on]
        if bad:
            raise SystemExit(f"train: the final model splits on ignored features: "
                             f"{', '.join(bad)} (model.txt left in {args.out})")
        shutil.copyfile(os.path.join(stats, "stats.json"), os.path.join(args.out, "stats.json"))
        meta = {
            "format": "fs_bundle/1",
            "feature_names": names,
            "ignored_features": {
                "names": ignored,
                "used_by_model": used,
                "how": "computed by the pipeline and kept in the bundle's feature list, but "
                       "set to the constant 0.0 in every matrix the model was trained and "
                       "early-stopped on (and in the fraud-weight search), so no tree splits "
                       "on them; checked on model.txt's split_feature lines",
                "option": ",".join(args.ignore_features),
                "reason": (IGNORE_REASON if set(ignored) == set(DEFAULT_IGNORE) else
                           "given by --ignore-features" + (
                               "; the default list is ignored because: " + IGNORE_REASON
                               if ignored else "")),
                "features_split_on": sorted(split_on, key=names.index),
            },
            "threshold": args.threshold,
            "training_data": {"file": os.path.basename(args.data),
                              "sha256": sha256_file(args.data), "rows": n,
                              "time_ordered": ordered, "source": args.data_source},
            "split": {"method": "time", "holdout_fraction": args.holdout,
                      "cutoff_time": cutoff, "train_rows": int(train.sum()),
                      "holdout_rows": int(hold.sum()),
                      "validation_fraction_of_train": args.validation,
                      "validation_cutoff_time": vcutoff, "validation_rows": int(val.sum()),
                      "features": "fraudctl features over the whole file in time order, "
                                  "then split by these masks (stateful features warm at "
                                  "the holdout)"},
            "training": {
                "early_stopping": "LightGBM average_precision on the validation slice; "
                                  "model and statistics fitted on the training part minus "
                                  "that slice",
                "max_trees": args.trees, "min_trees": args.min_trees,
                "patience": args.patience,
                "trees_trained_in_selection": sel.current_iteration(),
                "selected_trees": best,
                "validation_pr_auc_at_selected": vcurve[best - 1],
                "validation_pr_auc_curve": vcurve,
                "final_trees": best,
                "pos_weight": pos_weight,
                "pos_weight_option": str(args.pos_weight) if args.pos_weight == "auto"
                else args.pos_weight,
                "pos_weight_reason": pw_reason,
                "pos_weight_search": pw_rows,
                "capped_by_max_trees": capped,
                "final_model": "retrained on the whole training part (statistics refitted "
                               "on it) with the selected number of trees",
            },
            "final_model": "trained on the training part with the number of trees chosen by "
                           "early stopping on its last 15% by time; statistics fitted on the "
                           "training part",
            "params": dict(params, num_boost_round=best),
            "lightgbm_version": lgb.__version__,
            "metrics": metrics,
            "trees_table": ttable,
            "trees_check": tcheck,
            "command": command,
            "created_at": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if abl:
            meta["ablation"] = abl
            meta["ablation_settings"] = {
                "trees": abl_trees, "behaviour_leave_out": args.ablation_leave_out,
                "trained_on": "training part minus the validation slice",
                "scored_on": ["validation slice", "holdout"]}
        histogram(os.path.join(args.out, "score_histogram.png"), y[hold].astype(int), p,
                  args.threshold)
        if args.eval:
            meta["eval"] = []
            # Write what fraudctl score needs to load the bundle before scoring with it.
            write_meta(args.out, meta)
            for e in args.eval:
                meta["eval"].append(eval_file(args.fraudctl, args.out, e, work,
                                              args.threshold))
        write_meta(args.out, meta)
        model_card(os.path.join(args.out, "model_card.md"), meta)
        print_summary(meta)
        h = metrics["holdout"]
        log(f"{args.out}: holdout ROC-AUC {fmt(h['roc_auc'])} PR-AUC {fmt(h['pr_auc'])} "
            f"recall@{args.threshold:g} {fmt(h['recall'])} R@P{TARGET_PRECISION:g} "
            f"{fmt(h[R90])} ({time.time() - t_start:.0f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_meta(out, meta):
    with open(os.path.join(out, "metadata.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
