"""Trains a fraud model bundle from a labelled transactions CSV.

Features come only from the C pipeline (`fraudctl fit` / `fraudctl features`); this script
never computes a feature itself. Steps:
  1. time-based split: the last ~20% of rows by transaction_time form the holdout;
  2. `fraudctl fit` on the training part only (stats.json);
  3. `fraudctl features` for both parts with those statistics;
  4. LightGBM (pinned 4.6.0), deterministic: one thread, row-wise, fixed seed;
  5. holdout evaluation (ROC-AUC, PR-AUC, F1, precision/recall at the threshold, confusion
     matrix), optional ablation of the analyst features;
  6. the bundle: model.txt, stats.json, metadata.json, model_card.md, score_histogram.png.
The shipped model is the one trained on the training part, so the metrics in its card are
its own holdout metrics.
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

import numpy as np
import pandas as pd

import lightgbm as lgb
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

# The features of the original design (names only, to label the ablation); the pipeline's
# other features are analyst features that must earn their place on the holdout.
BASELINE = [
    "amount", "lat", "lon", "population_city", "hour", "log1p_amount",
    "log1p_population_city", "high_amount", "cat_id_risk", "freq_merch", "freq_name_1",
    "freq_name_2", "freq_jobs", "freq_us_state", "freq_street", "freq_one_city",
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"train: command failed ({p.returncode}): {shlex.join(cmd)}")
    return p


def split_by_time(data_path, workdir, holdout_frac):
    """Writes train.csv and holdout.csv (rows in their original order). The holdout is every
    row at or after the time of the row at position (1 - holdout_frac) in time order."""
    df = pd.read_csv(data_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if "transaction_time" not in df.columns or "target" not in df.columns:
        raise SystemExit(f"train: {data_path}: needs transaction_time and target columns")
    # "YYYY-MM-DD HH:MM[:SS]" sorts correctly as text.
    times = df["transaction_time"].to_numpy()
    order = np.sort(times, kind="stable")
    k = int(len(order) * (1.0 - holdout_frac))
    k = min(max(k, 1), len(order) - 1)
    cutoff = order[k]
    hold = times >= cutoff
    if hold.all() or not hold.any():
        raise SystemExit("train: cannot split by time (all rows at one time?)")
    train_csv = os.path.join(workdir, "train.csv")
    hold_csv = os.path.join(workdir, "holdout.csv")
    df[~hold].to_csv(train_csv, index=False)
    df[hold].to_csv(hold_csv, index=False)
    return train_csv, hold_csv, str(cutoff), int((~hold).sum()), int(hold.sum())


def load_matrix(path):
    m = pd.read_csv(path, float_precision="round_trip")
    y = m.pop("target").to_numpy()
    if (y < 0).any():
        raise SystemExit(f"train: {path}: rows without a target label")
    return m, y.astype(np.int32)


def lgb_params(seed, num_leaves):
    return {
        "objective": "binary",
        # A small learning rate and large leaves: with ~0.5% positives the defaults (0.1, 20)
        # overfit badly on the time holdout (ROC-AUC 0.90 vs 0.99 on generated data).
        "learning_rate": 0.05,
        "num_leaves": num_leaves,
        "min_data_in_leaf": 100,
        "lambda_l2": 1.0,
        # Bounded depth bounds the scoring cost per row (the C engine walks each tree to its
        # leaf); no loss on the holdout was measured (docs/features.md).
        "max_depth": 8,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "seed": seed,
        "verbose": -1,
    }


def train_model(X, y, names, params, rounds):
    ds = lgb.Dataset(X[names].to_numpy(dtype=np.float64), label=y, feature_name=names,
                     free_raw_data=True)
    return lgb.train(params, ds, num_boost_round=rounds)


def evaluate(y, p, threshold):
    flag = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, flag, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = len(set(y.tolist())) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "threshold": threshold,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "rows": int(len(y)),
        "positives": int(y.sum()),
    }


def ablation(Xtr, ytr, Xho, yho, model_names, all_names, params, rounds):
    """Holdout metrics of the original design's features, each analyst feature added to them
    alone, the model's list, the model's list without each of its analyst features or with
    each candidate added, and every feature together."""
    analyst = [n for n in all_names if n not in BASELINE]
    in_model = [n for n in analyst if n in model_names]
    candidates = [n for n in analyst if n not in model_names]
    variants = [("baseline (original design)", BASELINE)]
    variants += [(f"baseline + {a}", BASELINE + [a]) for a in analyst]
    variants.append(("model features", model_names))
    variants += [(f"model - {a}", [n for n in model_names if n != a]) for a in in_model
                 if len(in_model) > 1]
    variants += [(f"model + {a} (candidate)", model_names + [a]) for a in candidates]
    if len(candidates) > 1:
        variants.append(("every feature", all_names))
    rows = []
    for label, names in variants:
        names = [n for n in all_names if n in names]  # keep pipeline order
        b = train_model(Xtr, ytr, names, params, rounds)
        p = b.predict(Xho[names].to_numpy(dtype=np.float64))
        rows.append({"variant": label, "features": len(names),
                     "roc_auc": float(roc_auc_score(yho, p)),
                     "pr_auc": float(average_precision_score(yho, p))})
        print(f"train: ablation {label}: ROC-AUC {rows[-1]['roc_auc']:.5f} "
              f"PR-AUC {rows[-1]['pr_auc']:.5f}", file=sys.stderr)
    return rows


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


def fmt(v):
    return "n/a" if v is None else f"{v:.4f}"


def model_card(path, meta, abl):
    m = meta["metrics"]["holdout"]
    cm = m["confusion_matrix"]
    lines = [
        "# Model card: fraud scoring bundle",
        "",
        f"- Training data: `{meta['training_data']['file']}` "
        f"(sha256 `{meta['training_data']['sha256']}`, {meta['training_data']['rows']} rows)",
        f"- Split: time-based; training part = rows before {meta['split']['cutoff_time']} "
        f"({meta['split']['train_rows']} rows), holdout = the rest "
        f"({meta['split']['holdout_rows']} rows). Statistics and model use the training part"
        " only.",
        f"- Model: LightGBM {meta['lightgbm_version']}, {meta['params']['num_boost_round']} "
        f"trees x {meta['params']['num_leaves']} leaves, seed {meta['params']['seed']}",
        f"- Features ({len(meta['feature_names'])}): {', '.join(meta['feature_names'])}",
        f"- Data source: {meta['training_data']['source'] or 'not recorded'}",
        f"- Command: `{meta['command']}`",
        "",
        "## Holdout metrics",
        "",
        "| metric | value |",
        "|---|---|",
        f"| ROC-AUC | {fmt(m['roc_auc'])} |",
        f"| PR-AUC (average precision) | {fmt(m['pr_auc'])} |",
        f"| precision at {m['threshold']:g} | {fmt(m['precision'])} |",
        f"| recall at {m['threshold']:g} | {fmt(m['recall'])} |",
        f"| F1 at {m['threshold']:g} | {fmt(m['f1'])} |",
        "",
        "For comparison at threshold 0.5: precision {}, recall {}, F1 {}.".format(
            *(fmt(meta["metrics"]["holdout_at_0.5"][k]) for k in ("precision", "recall", "f1"))),
        "",
        f"Confusion matrix at threshold {m['threshold']:g} "
        f"({m['rows']} holdout rows, {m['positives']} fraud):",
        "",
        "| | predicted legitimate | predicted fraud |",
        "|---|---|---|",
        f"| actual legitimate | {cm['tn']} | {cm['fp']} |",
        f"| actual fraud | {cm['fn']} | {cm['tp']} |",
        "",
        "![holdout score histogram](score_histogram.png)",
        "",
    ]
    if abl:
        lines += ["## Ablation of the analyst features (same split, same parameters)", "",
                  "| variant | features | ROC-AUC | PR-AUC |", "|---|---|---|---|"]
        for r in abl:
            lines.append(f"| {r['variant']} | {r['features']} | {r['roc_auc']:.5f} | "
                         f"{r['pr_auc']:.5f} |")
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled transactions CSV (train.csv)")
    ap.add_argument("--out", required=True, help="bundle directory to write")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--holdout", type=float, default=0.2, help="holdout fraction by time")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--leaves", type=int, default=31)
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--ablation", action="store_true",
                    help="also train without each analyst feature and report the holdout")
    ap.add_argument("--fraudctl", default=os.environ.get("FRAUDCTL", "build/src/cli/fraudctl"))
    ap.add_argument("--command", default=None, help="command line recorded in metadata")
    ap.add_argument("--data-source", default=None,
                    help="how the data was made (e.g. the fraudctl generate command), recorded")
    args = ap.parse_args(argv)

    if not os.access(args.fraudctl, os.X_OK):
        raise SystemExit(f"train: {args.fraudctl}: not executable (run scripts/build)")
    command = args.command or shlex.join(["scripts/train"] + (argv or sys.argv[1:]))
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fs_train_")
    try:
        train_csv, hold_csv, cutoff, ntr, nho = split_by_time(args.data, work, args.holdout)
        statsdir = os.path.join(work, "stats")
        run([args.fraudctl, "fit", "--input", train_csv, "--out", statsdir])
        ftr, fho = os.path.join(work, "ftrain.csv"), os.path.join(work, "fholdout.csv")
        extra = ["--candidates"] if args.ablation else []
        run([args.fraudctl, "features", "--model-dir", statsdir, "--input", train_csv,
             "--output", ftr, "--with-target", *extra])
        run([args.fraudctl, "features", "--model-dir", statsdir, "--input", hold_csv,
             "--output", fho, "--with-target", *extra])
        Xtr, ytr = load_matrix(ftr)
        Xho, yho = load_matrix(fho)
        names = run([args.fraudctl, "features", "--names"]).stdout.split()
        assert list(Xtr.columns[:len(names)]) == names

        params = lgb_params(args.seed, args.leaves)
        abl = (ablation(Xtr, ytr, Xho, yho, names, list(Xtr.columns), params, args.trees)
               if args.ablation else None)
        booster = train_model(Xtr, ytr, names, params, args.trees)
        p = booster.predict(Xho[names].to_numpy(dtype=np.float64))
        metrics = {"holdout": evaluate(yho, p, args.threshold),
                   "holdout_at_0.5": evaluate(yho, p, 0.5)}
        metrics["train"] = evaluate(
            ytr, booster.predict(Xtr[names].to_numpy(dtype=np.float64)), args.threshold)

        booster.save_model(os.path.join(args.out, "model.txt"))
        shutil.copyfile(os.path.join(statsdir, "stats.json"),
                        os.path.join(args.out, "stats.json"))
        meta = {
            "format": "fs_bundle/1",
            "feature_names": names,
            "threshold": args.threshold,
            "training_data": {"file": os.path.basename(args.data),
                              "sha256": sha256_file(args.data), "rows": ntr + nho,
                              "source": args.data_source},
            "split": {"method": "time", "holdout_fraction": args.holdout,
                      "cutoff_time": cutoff, "train_rows": ntr, "holdout_rows": nho},
            "final_model": "trained on the training part; statistics fitted on it too",
            "params": dict(params, num_boost_round=args.trees),
            "lightgbm_version": lgb.__version__,
            "metrics": metrics,
            "command": command,
            "created_at": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if abl:
            meta["ablation"] = abl
        with open(os.path.join(args.out, "metadata.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        histogram(os.path.join(args.out, "score_histogram.png"), yho, p, args.threshold)
        model_card(os.path.join(args.out, "model_card.md"), meta, abl)
        h = metrics["holdout"]
        print(f"train: {args.out}: holdout ROC-AUC {fmt(h['roc_auc'])} PR-AUC "
              f"{fmt(h['pr_auc'])} F1@{args.threshold:g} {fmt(h['f1'])}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
