"""The features suite: the C feature pipeline checked against an independent reference
computed here with pandas from the raw CSV (statistics re-derived from the training CSV),
train/serve parity (`fraudctl score` == LightGBM's Python predict on the matrix `fraudctl
features` wrote, bit for bit, every row), bundle mismatch refusal, validation errors with
line and column, and training determinism. Ends with "N passed, M failed".

Environment: FRAUDCTL (default build/src/cli/fraudctl), MODEL_DIR (default models/default).
"""

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import zlib

import numpy as np
import pandas as pd

import lightgbm as lgb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FRAUDCTL = os.path.abspath(os.environ.get("FRAUDCTL", os.path.join(ROOT, "build/src/cli/fraudctl")))
MODEL_DIR = os.environ.get("MODEL_DIR", os.path.join(ROOT, "models/default"))
PY = sys.executable

STATELESS = ["amount", "lat", "lon", "population_city", "hour", "log1p_amount",
             "log1p_population_city", "high_amount", "cat_id_risk", "freq_merch",
             "freq_name_1", "freq_name_2", "freq_jobs", "freq_us_state", "freq_street",
             "freq_one_city", "amount_to_cat_median"]
# The customer's behaviour (fs_profile.c), computed here per customer in file order.
CUST = ["cust_secs_since_prev", "cust_cnt_1h", "cust_amt_1h", "cust_cnt_24h", "cust_amt_24h",
        "cust_night_24h", "cust_big_24h", "cust_amount_z", "cust_hour_dist", "cust_cat_share",
        "cust_amount_to_max", "cust_spend24_to_daily", "cust_n_prev"]
NAMES = STATELESS + CUST
CANDIDATES = ["night", "day_of_week", "distance_km"]
ALL = NAMES + CANDIDATES
FREQ_COLS = ["merch", "name_1", "name_2", "jobs", "us_state", "street", "one_city"]
COLUMNS = ["transaction_time", "merch", "cat_id", "amount", "name_1", "name_2", "gender",
           "street", "one_city", "us_state", "post_code", "lat", "lon", "population_city",
           "jobs", "merchant_lat", "merchant_lon"]

results = []


def case(fn):
    results.append(fn)
    return fn


def fraudctl(*args, check=True):
    p = subprocess.run([FRAUDCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"fraudctl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def read_matrix(path):
    return pd.read_csv(path, float_precision="round_trip")


# ---- the independent reference -------------------------------------------------------


def num(series):
    """Text -> float as the schema says: empty or "nan" (any case) is missing."""
    return series.map(lambda v: np.nan if v.strip() == "" or v.lower() == "nan" else float(v))


def read_raw(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def reference_stats(train_csv):
    df = read_raw(train_csv)
    n = len(df)
    st = {"rows": n, "fill": {}, "freq": {}}
    for c in ["amount", "lat", "lon", "population_city", "merchant_lat", "merchant_lon"]:
        v = num(df[c]).dropna().to_numpy()
        st["fill"][c] = float(np.median(v)) if len(v) else 0.0
    amount = num(df["amount"])
    st["p99"] = float(np.quantile(amount.dropna().to_numpy(), 0.99))
    t = pd.to_datetime(df["transaction_time"], format="ISO8601")
    st["hour_mode"] = int(t.dt.hour.value_counts().sort_index().idxmax())
    st["dow_mode"] = int(t.dt.dayofweek.value_counts().sort_index().idxmax())
    ok = (df["cat_id"] != "") & amount.notna()
    st["cat_median"] = amount[ok].groupby(df["cat_id"][ok]).median().to_dict()
    for c in FREQ_COLS:
        vc = df[c][df[c] != ""].value_counts()
        st["freq"][c] = {k: v / n for k, v in vc.items()}
    return st


def reference_features(st, csv):
    df = read_raw(csv)
    f = {}
    fill = lambda c: num(df[c]).fillna(st["fill"][c]).to_numpy()
    amount, lat, lon = fill("amount"), fill("lat"), fill("lon")
    pop, mlat, mlon = fill("population_city"), fill("merchant_lat"), fill("merchant_lon")
    t = pd.to_datetime(df["transaction_time"], format="ISO8601")
    hour = t.dt.hour.to_numpy().astype(float)
    f["amount"], f["lat"], f["lon"], f["population_city"] = amount, lat, lon, pop
    f["hour"] = hour
    f["log1p_amount"] = np.log1p(np.maximum(amount, 0))
    f["log1p_population_city"] = np.log1p(np.maximum(pop, 0))
    f["high_amount"] = (amount > st["p99"]).astype(float)
    risk = {"shopping_net": 2, "misc_net": 2, "grocery_pos": 2, "shopping_pos": 1,
            "gas_transport": 1}
    f["cat_id_risk"] = df["cat_id"].map(lambda c: risk.get(c, 0)).to_numpy().astype(float)
    for c in FREQ_COLS:
        f["freq_" + c] = df[c].map(lambda v: st["freq"][c].get(v, 0.0)).to_numpy()
    f["night"] = ((hour >= 22) | (hour < 4)).astype(float)
    f["day_of_week"] = t.dt.dayofweek.to_numpy().astype(float)
    p1, p2 = np.radians(lat), np.radians(mlat)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(mlon - lon) / 2) ** 2)
    f["distance_km"] = 2 * 6371.0 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    typical = df["cat_id"].map(lambda c: st["cat_median"].get(c, st["fill"]["amount"]))
    f["amount_to_cat_median"] = amount / np.maximum(typical.to_numpy().astype(float), 0.01)
    secs = t.to_numpy().astype("datetime64[s]").astype(np.int64)
    f.update(reference_profiles(st, df, amount, secs))
    return pd.DataFrame(f)[ALL]


# The behaviour features: fs_profile.c's record and arithmetic, operation for operation
# (Python's math functions are the C library's, so the values are the same bits).
TWO_PI, PI = 2.0 * math.pi, math.pi
EXPIRY = 90 * 86400  # FS_PROFILE_EXPIRY_DEFAULT


def customer_key(df):
    """name_1|name_2|street|post_code, the post code as an integer when it is one."""
    def post(v):
        x = np.nan if v.strip() == "" or v.lower() == "nan" else float(v)
        if not math.isfinite(x):
            return ""
        return "%.0f" % x if x == math.floor(x) and abs(x) < 1e15 else "%.17g" % x
    return (df["name_1"] + "|" + df["name_2"] + "|" + df["street"] + "|"
            + df["post_code"].map(post)).tolist()


def new_profile():
    return {"last": 0, "first_day": 0, "n": 0, "c1": 0.0, "a1": 0.0, "c24": 0.0, "a24": 0.0,
            "night": 0.0, "big": 0.0, "mean": 0.0, "m2": 0.0, "sum": 0.0, "max": 0.0,
            "sin": 0.0, "cos": 0.0, "cat": [0] * 16}


def profile_step(p, time, amount, cat):
    """fs_profile_step: the 13 features of the event, then the event added to p."""
    n, have = p["n"], p["n"] > 0
    te = p["last"] if have and time < p["last"] else time
    dt = float(te - p["last"]) if have else 0.0
    d1, d24 = math.exp(-dt / 3600.0), math.exp(-dt / 86400.0)
    a = 0.0 if not amount > 0.0 else (amount if amount < 1e12 else 1e12)
    la = math.log1p(a)
    sod = time % 86400
    hour = sod // 3600
    night = 1.0 if hour >= 22 or hour < 4 else 0.0
    angle = TWO_PI * float(sod) / 86400.0
    big = 1.0 if have and a > 3.0 * (p["sum"] / float(n)) else 0.0
    x = [dt if have else -1.0, p["c1"] * d1 + 1.0, p["a1"] * d1 + a, p["c24"] * d24 + 1.0,
         p["a24"] * d24 + a, p["night"] * d24 + night, p["big"] * d24 + big]
    x.append((la - p["mean"]) / math.sqrt(p["m2"] / (float(n) - 1.0) + 0.01) if n >= 2 else 0.0)
    if have:
        mean = math.atan2(p["sin"], p["cos"])
        diff = abs(angle - (mean + TWO_PI if mean < 0.0 else mean))
        if diff > PI:
            diff = TWO_PI - diff
        x.append(diff * 24.0 / TWO_PI)
    else:
        x.append(-1.0)
    total = sum(p["cat"])
    x.append(float(p["cat"][cat]) / float(total) if total else 0.0)
    x.append(a / max(p["max"], 0.01) if have else -1.0)
    if have:
        days = float(te - p["first_day"] * 86400) / 86400.0
        daily = p["sum"] / max(days, 1.0)
        x.append(x[4] / max(daily, 0.01))
    else:
        x.append(-1.0)
    x.append(min(float(n), 1000.0))
    if n == 0:
        p["first_day"] = time // 86400
    p["last"] = te
    p["c1"], p["a1"], p["c24"], p["a24"], p["night"], p["big"] = x[1:7]
    delta = la - p["mean"]
    p["mean"] += delta / (float(n) + 1.0)
    p["m2"] += delta * (la - p["mean"])
    p["sum"] += a
    p["max"] = max(p["max"], a)
    p["sin"] += math.sin(angle)
    p["cos"] += math.cos(angle)
    if p["cat"][cat] == 255:
        p["cat"] = [c >> 1 for c in p["cat"]]
    p["cat"][cat] += 1
    p["n"] = n + 1
    return x


def reference_profiles(st, df, amount, secs):
    """The cust_* columns: every row stepped into its customer's record in file order, a
    record idle longer than the expiry emptied first; the category slot is the rank of the
    training category in byte order (15 for the 16th on, unseen or empty)."""
    ranks = {c: min(i, 15) for i, c in enumerate(sorted(st["cat_median"], key=str.encode))}
    profiles, out = {}, []
    for key, time, a, c in zip(customer_key(df), secs.tolist(), amount.tolist(),
                               df["cat_id"].tolist()):
        p = profiles.get(key)
        if p is None or (p["n"] > 0 and time > p["last"] and time - p["last"] > EXPIRY):
            p = profiles[key] = new_profile()
        out.append(profile_step(p, time, a, ranks.get(c, 15)))
    cols = np.array(out, dtype=np.float64).reshape(len(out), len(CUST))
    return {name: cols[:, i] for i, name in enumerate(CUST)}


EXACT = {"amount", "lat", "lon", "population_city", "hour", "high_amount", "cat_id_risk",
         "night", "day_of_week"} | {"freq_" + c for c in FREQ_COLS}


def compare(got, want, where):
    names = list(want.columns)
    assert list(got.columns) == names, f"{where}: header {list(got.columns)}"
    assert len(got) == len(want), f"{where}: {len(got)} rows, reference {len(want)}"
    for name in names:
        g, w = got[name].to_numpy(), want[name].to_numpy()
        if name in CUST:  # the same arithmetic: the same bits
            bad = np.nonzero(g.astype(np.float64).view(np.int64)
                             != w.astype(np.float64).view(np.int64))[0]
        elif name in EXACT:
            bad = np.nonzero(g != w)[0]
        else:
            bad = np.nonzero(~np.isclose(g, w, rtol=1e-12, atol=1e-9))[0]
        assert len(bad) == 0, (f"{where}: feature {name} differs in {len(bad)} rows, first row "
                               f"{bad[0]}: C {g[bad[0]]!r} vs reference {w[bad[0]]!r}")


# ---- fixtures ---------------------------------------------------------------------------

W = tempfile.mkdtemp(prefix="fs_features_")
TRAIN = os.path.join(W, "train.csv")
TEST = os.path.join(W, "test.csv")
EDGE = os.path.join(W, "edge.csv")
SHUFFLED = os.path.join(W, "shuffled.csv")
HOLES = os.path.join(W, "holes.csv")
STATS = os.path.join(W, "stats")
BUNDLE = os.path.join(W, "bundle")


def setup():
    fraudctl("generate", "--rows", "20000", "--seed", "11", "--output", TRAIN)
    fraudctl("generate", "--rows", "5000", "--seed", "12", "--start", "2020-07-01",
             "--output", TEST)
    fraudctl("fit", "--input", TRAIN, "--out", STATS)
    # Edge cases: other column order, an extra column, transaction_id, quoted commas and a
    # newline, missing numbers, unseen and empty strings, CRLF line ends and a BOM.
    train = read_raw(TRAIN)
    r = train.iloc[0].to_dict()
    rows = []
    def row(**kw):
        d = dict(r)
        d.update(kw)
        rows.append(d)
    row()
    row(amount="", lat="nan", lon="", population_city="", merchant_lat="", merchant_lon="")
    row(merch="never seen, merchant", name_1="Zebulon", street="1 \"Quoted\"\nStreet",
        one_city="", jobs="", cat_id="no_such_category")
    row(transaction_time="2020-02-29 22:00:59", cat_id="shopping_net", amount="99999.5")
    row(transaction_time="2019-12-31 03:59", cat_id="gas_transport", amount="0")
    row(transaction_time="2019-06-15 04:00", cat_id="misc_net", amount="1e2", lat="-90",
        lon="180", merchant_lat="90", merchant_lon="-180")
    df = pd.DataFrame(rows)
    df["extra"] = "ignored"
    df["transaction_id"] = [f"id-{i}" for i in range(len(df))]
    cols = list(reversed(COLUMNS)) + ["extra", "transaction_id"]
    text = df[cols].to_csv(index=False, lineterminator="\r\n")
    with open(EDGE, "w", encoding="utf-8-sig", newline="") as f:
        f.write(text)
    # The customers' order: the test rows shuffled (each customer's events out of time
    # order); and in file order with missing amounts, missing, unseen and rare categories,
    # and some customers' later rows 100 days on (their records expire).
    test = read_raw(TEST)
    test.sample(frac=1.0, random_state=5).to_csv(SHUFFLED, index=False)
    rng = np.random.default_rng(6)
    h = test.copy()
    pick = lambda frac: rng.random(len(h)) < frac
    h.loc[pick(0.08), "amount"] = ""
    h.loc[pick(0.05), "cat_id"] = ""
    h.loc[pick(0.03), "cat_id"] = "never_seen_category"
    h.loc[pick(0.02), "amount"] = "0"
    key = pd.Series(customer_key(h))
    late = (np.arange(len(h)) > len(h) // 2) & (key.map(lambda k: zlib.crc32(k.encode())) % 3 == 0).to_numpy()
    shifted = pd.to_datetime(h["transaction_time"], format="ISO8601") + pd.Timedelta(days=100)
    h.loc[late, "transaction_time"] = shifted[late].dt.strftime("%Y-%m-%d %H:%M:%S")
    h.to_csv(HOLES, index=False)


# ---- cases ------------------------------------------------------------------------------


@case
def features_match_reference_on_generated_data():
    st = reference_stats(TRAIN)
    for csv in (TRAIN, TEST):
        out = os.path.join(W, "m.csv")
        fraudctl("features", "--model-dir", STATS, "--input", csv, "--output", out,
                 "--candidates")
        ref = reference_features(st, csv)
        got = read_matrix(out)
        compare(got, ref, os.path.basename(csv) + " (with candidates)")
        assert (got["cust_n_prev"] > 0).mean() > 0.5, "no repeat customers"
        fraudctl("features", "--model-dir", STATS, "--input", csv, "--output", out)
        compare(read_matrix(out), ref[NAMES], os.path.basename(csv))


@case
def behaviour_features_bit_for_bit_out_of_order_and_missing():
    # Every cust_* column equal to the reference's bits (compare), on rows whose customers
    # come back out of time order, and on rows with missing amounts and categories and
    # records that expire; the cases must really occur.
    st = reference_stats(TRAIN)
    for csv in (SHUFFLED, HOLES):
        out = os.path.join(W, "b.csv")
        fraudctl("features", "--model-dir", STATS, "--input", csv, "--output", out,
                 "--candidates")
        got = read_matrix(out)
        compare(got, reference_features(st, csv), os.path.basename(csv))
        n_prev = got["cust_n_prev"].to_numpy()
        assert (n_prev >= 5).sum() > 100, "too few repeat customers"
    shuffled = read_matrix_of(SHUFFLED)
    raw = read_raw(SHUFFLED)
    t = pd.to_datetime(raw["transaction_time"], format="ISO8601")
    older = t < t.groupby(pd.Series(customer_key(raw))).cummax()
    assert older.sum() > 100, "the shuffled file has no out-of-order events"
    assert (shuffled["cust_secs_since_prev"][older.to_numpy()] == 0).all(), "older event aged"
    holes = read_matrix_of(HOLES)
    raw = read_raw(HOLES)
    assert (raw["amount"] == "").sum() > 100 and (raw["cat_id"] == "").sum() > 50
    first = holes["cust_n_prev"] == 0
    assert first.sum() > pd.Series(customer_key(raw)).nunique(), "no record expired"


@case
def unseen_and_empty_values_get_frequency_zero():
    # Counted independently: every value not in the training data (or empty) must map to 0,
    # and there must be such values for this to mean anything (edge.csv has some).
    st = reference_stats(TRAIN)
    unseen = zeros = 0
    for csv in (TEST, EDGE):
        raw = read_raw(csv)
        unseen += sum((~raw[c].isin(st["freq"][c].keys())).sum() for c in FREQ_COLS)
        m = read_matrix_of(csv)
        zeros += sum((m["freq_" + c] == 0).sum() for c in FREQ_COLS)
    assert unseen > 0, "no unseen values in the test inputs"
    assert zeros == unseen, f"{zeros} zero frequencies, {unseen} unseen values"


@case
def features_match_reference_on_edge_cases():
    st = reference_stats(TRAIN)
    out = os.path.join(W, "edge_m.csv")
    fraudctl("features", "--model-dir", STATS, "--input", EDGE, "--output", out, "--candidates")
    got = read_matrix(out)
    compare(got, reference_features(st, EDGE), "edge.csv")
    assert got["amount"][1] == st["fill"]["amount"], "missing amount not the training median"
    assert got["freq_merch"][2] == 0.0 and got["freq_one_city"][2] == 0.0


@case
def stats_are_never_fitted_from_the_scored_rows():
    # One row scored alone gets the same features as inside a file: nothing is recomputed
    # from the input (a single-row "frequency" would be 1.0).
    full = read_matrix_of(TEST)
    test = read_raw(TEST)
    one = os.path.join(W, "one.csv")
    test.iloc[[7]].to_csv(one, index=False)
    single = read_matrix_of(one)
    assert (single[STATELESS].iloc[0].to_numpy() == full[STATELESS].iloc[7].to_numpy()).all()
    assert (single[[c for c in NAMES if c.startswith("freq_")]] < 1.0).all().all()
    # Alone, the row is its customer's first: the no-history values.
    assert single["cust_n_prev"][0] == 0 and single["cust_secs_since_prev"][0] == -1


def read_matrix_of(csv):
    out = csv + ".features"
    fraudctl("features", "--model-dir", STATS, "--input", csv, "--output", out)
    return read_matrix(out)


def train_bundle(out, data=TRAIN, seed="3"):
    p = subprocess.run([os.path.join(ROOT, "scripts/train"), "--data", data, "--out", out,
                        "--seed", seed, "--trees", "30"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, FRAUDCTL=FRAUDCTL))
    assert p.returncode == 0, f"scripts/train failed: {p.stderr}"


def parity(bundle, csv):
    feats = os.path.join(W, "parity_features.csv")
    scores = os.path.join(W, "parity_scores.csv")
    fraudctl("features", "--model-dir", bundle, "--input", csv, "--output", feats)
    fraudctl("score", "--model-dir", bundle, "--input", csv, "--output", scores)
    X = read_matrix(feats)
    booster = lgb.Booster(model_file=os.path.join(bundle, "model.txt"))
    assert booster.feature_name() == NAMES
    want = booster.predict(X.to_numpy(dtype=np.float64))
    s = pd.read_csv(scores, float_precision="round_trip", keep_default_na=False)
    assert list(s.columns) == ["row", "transaction_id", "score", "fraud_flag"]
    assert (s["row"].to_numpy() == np.arange(len(X))).all(), "row column"
    got = s["score"].to_numpy(dtype=np.float64)
    same = got.view(np.int64) == want.view(np.int64)
    bad = np.nonzero(~same)[0]
    assert len(bad) == 0, (f"{len(bad)} of {len(got)} scores differ, first row {bad[0]}: "
                           f"{got[bad[0]]!r} vs LightGBM {want[bad[0]]!r}")
    threshold = json.load(open(os.path.join(bundle, "metadata.json")))["threshold"]
    assert (s["fraud_flag"].to_numpy() == (want >= threshold)).all(), "fraud_flag"
    return s


@case
def parity_trained_bundle_bit_for_bit():
    train_bundle(BUNDLE)
    parity(BUNDLE, TEST)
    s = parity(BUNDLE, EDGE)
    assert list(s["transaction_id"]) == [f"id-{i}" for i in range(len(s))]


@case
def parity_default_bundle_bit_for_bit():
    assert os.path.exists(os.path.join(MODEL_DIR, "model.txt")), f"{MODEL_DIR}: no bundle"
    # The shipped bundle must be of the pipeline's feature list: one of another list (not
    # retrained after a feature change) is a failure, not a skip.
    with open(os.path.join(MODEL_DIR, "metadata.json")) as f:
        names = json.load(f)["feature_names"]
    assert names == NAMES, f"{MODEL_DIR} has {len(names)} features, the pipeline {len(NAMES)}"
    parity(MODEL_DIR, TEST)


@case
def training_is_deterministic():
    # The same command twice (same --out, so the recorded command is the same too).
    first = os.path.join(W, "bundle_first")
    shutil.copytree(BUNDLE, first)
    train_bundle(BUNDLE)
    for f in ["model.txt", "stats.json", "model_card.md", "score_histogram.png"]:
        a = open(os.path.join(first, f), "rb").read()
        b = open(os.path.join(BUNDLE, f), "rb").read()
        assert a == b, f"{f} differs between two runs"
    ma = json.load(open(os.path.join(first, "metadata.json")))
    mb = json.load(open(os.path.join(BUNDLE, "metadata.json")))
    ma.pop("created_at")
    mb.pop("created_at")
    assert ma == mb, "metadata.json differs beyond created_at"


@case
def training_metadata_is_complete():
    m = json.load(open(os.path.join(BUNDLE, "metadata.json")))
    assert m["feature_names"] == NAMES
    assert m["threshold"] == 0.95
    import hashlib
    assert m["training_data"]["sha256"] == hashlib.sha256(open(TRAIN, "rb").read()).hexdigest()
    h = m["metrics"]["holdout"]
    for k in ["roc_auc", "pr_auc", "f1", "precision", "recall", "confusion_matrix"]:
        assert k in h, k
    # Time split: every holdout row is at or after every training row.
    df = read_raw(TRAIN)
    cut = m["split"]["cutoff_time"]
    assert m["split"]["holdout_rows"] == int((df["transaction_time"] >= cut).sum())
    assert 0.15 < m["split"]["holdout_rows"] / len(df) < 0.3


def mismatched_bundle(edit_model=None, edit_meta=None):
    d = os.path.join(W, "mismatch")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(BUNDLE, d)
    if edit_model:
        p = os.path.join(d, "model.txt")
        text = open(p).read()
        open(p, "w").write(edit_model(text))
    if edit_meta:
        p = os.path.join(d, "metadata.json")
        m = json.load(open(p))
        edit_meta(m)
        json.dump(m, open(p, "w"))
    return d


@case
def bundle_with_renamed_model_feature_is_refused():
    d = mismatched_bundle(edit_model=lambda t: t.replace(" log1p_amount ", " log_amount ", 1))
    p = fraudctl("score", "--model-dir", d, "--input", TEST, check=False)
    assert p.returncode != 0, "a mismatched bundle was accepted"
    assert ("model.txt" in p.stderr and "'log_amount' != 'log1p_amount'" in p.stderr
            and "missing: log1p_amount" in p.stderr), p.stderr


@case
def bundle_with_reordered_metadata_is_refused():
    def swap(m):
        m["feature_names"][0], m["feature_names"][1] = m["feature_names"][1], m["feature_names"][0]
    d = mismatched_bundle(edit_meta=swap)
    p = fraudctl("score", "--model-dir", d, "--input", TEST, check=False)
    assert p.returncode != 0
    assert "metadata.json" in p.stderr and "'lat' != 'amount'" in p.stderr, p.stderr


def bad_input(mutate):
    """A small valid CSV (header + 3 rows of the training data) changed by mutate(lines)."""
    lines = open(TRAIN, encoding="utf-8").read().split("\n")[:4]
    lines = mutate(lines)
    path = os.path.join(W, "bad.csv")
    open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    return path


def set_field(lines, lineno, column, value):
    """Sets one cell of data line `lineno` (1-based, header = line 1; the data has no quoted
    newlines). Returns the lines and the 1-based column number."""
    df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    df.loc[lineno - 2, column] = value
    return df.to_csv(index=False).rstrip("\n").split("\n"), list(df.columns).index(column) + 1


def expect_error(cmd_args, path, pattern):
    for cmd in cmd_args:
        p = fraudctl(*cmd, "--input", path, check=False)
        assert p.returncode != 0, f"{cmd[0]} accepted bad input"
        assert re.search(pattern, p.stderr), f"{cmd[0]}: expected /{pattern}/ in: {p.stderr}"


CMDS = [["fit", "--out", os.path.join(W, "fitbad")], ["features", "--model-dir", STATS],
        ["score", "--model-dir", BUNDLE]]


@case
def missing_column_is_an_error():
    def drop(lines):
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
        return df.drop(columns=["amount"]).to_csv(index=False).rstrip("\n").split("\n")
    path = bad_input(drop)
    expect_error(CMDS, path, r'bad\.csv:1: missing column "amount"')


def field_error_case(column, value, lineno, what):
    holder = {}
    def mutate(lines):
        lines, col = set_field(lines, lineno, column, value)
        holder["col"] = col
        return lines
    path = bad_input(mutate)
    expect_error(CMDS, path, rf"bad\.csv:{lineno}:{holder['col']}: {column}: {what}")


@case
def bad_number_is_an_error_with_line_and_column():
    field_error_case("amount", "12,5x", 3, ".*")


@case
def bad_time_is_an_error_with_line_and_column():
    field_error_case("transaction_time", "2019-02-30 10:00", 2, ".*")


@case
def out_of_range_coordinate_is_an_error_with_line_and_column():
    field_error_case("merchant_lat", "91.5", 4, ".*")


def with_ids(bad_id):
    """bad_input with a last column transaction_id: id-1, bad_id, id-3. Returns the path and
    the 1-based column of transaction_id."""
    holder = {}
    def mutate(lines):
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
        df["transaction_id"] = ["id-1", "PLACEHOLDER", "id-3"]
        holder["col"] = len(df.columns)
        text = df.to_csv(index=False).replace("PLACEHOLDER", bad_id)
        return text.rstrip("\n").split("\n")
    return bad_input(mutate), holder["col"]


@case
def transaction_id_with_a_nul_byte_is_rejected_not_cut():
    # The id "ab<NUL>cd" must not become "ab": fit and features stop, score skips the row.
    path, col = with_ids("ab\x00cd")
    expect_error(CMDS[:2], path, rf"bad\.csv:3:{col}: transaction_id: ")
    out = os.path.join(W, "nul.csv")
    p = fraudctl("score", "--model-dir", BUNDLE, "--input", path, "--output", out, check=False)
    assert p.returncode == 1, p.returncode
    assert re.search(rf"row 1 skipped: .*bad\.csv:3:{col}: transaction_id: ", p.stderr), p.stderr
    assert "2 rows scored, 1 invalid rows skipped" in p.stderr, p.stderr
    s = pd.read_csv(out, dtype=str)
    assert list(s["row"]) == ["0", "2"] and list(s["transaction_id"]) == ["id-1", "id-3"], s


@case
def score_skips_and_reports_invalid_rows():
    def mutate(lines):
        lines, _ = set_field(lines, 3, "lon", "-181")
        return lines
    path = bad_input(mutate)
    out = os.path.join(W, "skip.csv")
    p = fraudctl("score", "--model-dir", BUNDLE, "--input", path, "--output", out, check=False)
    assert p.returncode == 1, p.returncode
    assert re.search(r"row 1 skipped: .*bad\.csv:3:\d+: lon", p.stderr), p.stderr
    assert "2 rows scored, 1 invalid rows skipped" in p.stderr, p.stderr
    s = pd.read_csv(out)
    assert list(s["row"]) == [0, 2], list(s["row"])


@case
def a_full_disk_is_an_error_for_every_writer():
    # Every subcommand that writes must notice a lost write (here /dev/full), on stdout as
    # well as on --output, and say so once: a short file that looks complete is data lost.
    src = os.path.join(W, "full_src.csv")
    fraudctl("generate", "--rows", "200", "--seed", "5", "--no-target", "--output", src)
    runs = [
        ("generate", "--rows", "200", "--seed", "5"),
        ("features", "--model-dir", BUNDLE, "--input", src),
        ("score", "--model-dir", BUNDLE, "--input", src),
        ("predict", "--model", os.path.join(BUNDLE, "model.txt"), "--input",
         os.path.join(W, "full_matrix.csv")),
    ]
    fraudctl("features", "--model-dir", BUNDLE, "--input", src, "--output",
             os.path.join(W, "full_matrix.csv"))
    for args in runs:
        for target in (None, "/dev/full"):
            cmd = [FRAUDCTL, *args] + (["--output", target] if target else [])
            with open("/dev/full", "wb") as full:
                p = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True)
            assert p.returncode == 1, (args[0], target, p.returncode, p.stderr)
            assert p.stderr.count("write error") == 1, (args[0], target, p.stderr)


def main():
    passed = failed = 0
    try:
        setup()
    except Exception:
        traceback.print_exc()
        print("setup failed")
        print(f"0 passed, {len(results)} failed")
        return 1
    try:
        for fn in results:
            try:
                fn()
                passed += 1
                print(f"PASS {fn.__name__}", flush=True)
            except Exception as e:
                failed += 1
                print(f"FAIL {fn.__name__}: {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
    finally:
        shutil.rmtree(W, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
