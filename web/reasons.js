// Human wording of the model's reasons: each feature of docs/features.md with its value, in
// the page's language ("7 transactions in the last hour", "first purchase in this category").
// The texts live in i18n.js under "f.<feature>" keys; this file only picks the key and
// formats the value. Everything returned is plain text (the caller uses textContent).
"use strict";

window.Reasons = (function () {
  // Plural form index: en one/other; ru one/few/many (1 транзакция, 2 транзакции, 5 транзакций).
  function pluralIndex(lang, n) {
    const k = Math.abs(Math.round(n));
    if (lang === "ru") {
      if (k % 10 === 1 && k % 100 !== 11) return 0;
      if (k % 10 >= 2 && k % 10 <= 4 && (k % 100 < 12 || k % 100 > 14)) return 1;
      return 2;
    }
    return k === 1 ? 0 : 1;
  }

  function locale(lang) { return lang === "ru" ? "ru-RU" : "en-US"; }

  function num(lang, v, digits) {
    return Number(v).toLocaleString(locale(lang), { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }

  function money(lang, v) {
    return Number(v).toLocaleString(locale(lang), { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function pct(lang, v) {
    const p = v * 100;
    const digits = p >= 10 ? 0 : p >= 1 ? 1 : p >= 0.01 ? 2 : 4;
    return num(lang, p, digits) + "%";
  }

  // A ratio: 12, 2.9, 0.25 (two digits below 1, so a small one does not read as 0).
  function ratio(lang, v) {
    return num(lang, v, v >= 10 ? 0 : v >= 1 ? 1 : 2);
  }

  // A duration in seconds as "45 s", "12 min", "3.5 h", "2 d" (units from i18n).
  function duration(t, lang, s) {
    if (s < 90) return t("u.sec", num(lang, s, 0));
    if (s < 5400) return t("u.min", num(lang, s / 60, 0));
    if (s < 172800) return t("u.hour", num(lang, s / 3600, 1));
    return t("u.day", num(lang, s / 86400, 1));
  }

  // "HH:MM" of a "YYYY-MM-DD HH:MM:SS" transaction_time, or null.
  function clock(tx) {
    const m = tx && typeof tx.transaction_time === "string" ? /\s(\d\d:\d\d)/.exec(tx.transaction_time) : null;
    return m ? m[1] : null;
  }

  // A count with the right word form: t("f.cust_cnt_1h", n, forms) picks forms by plural.
  function counted(t, lang, key, n) {
    const forms = t(key + ".forms").split("|");
    const form = forms[Math.min(pluralIndex(lang, n), forms.length - 1)];
    return t(key, num(lang, Math.round(n), 0), form);
  }

  // text(feature, value, tx, t, lang): the sentence for one reason. value is the feature's
  // value as the model saw it (null = missing); tx the stored transaction details (or null).
  function text(feature, value, tx, t, lang) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) {
      return t("f.missing", t("fn." + feature) !== "fn." + feature ? t("fn." + feature) : feature);
    }
    const v = Number(value);
    switch (feature) {
      case "amount": return t("f.amount", money(lang, v));
      case "log1p_amount": return t("f.amount", money(lang, Math.expm1(v)));
      case "lat": return t("f.lat", num(lang, v, 4));
      case "lon": return t("f.lon", num(lang, v, 4));
      case "population_city": return t("f.population_city", num(lang, v, 0));
      case "log1p_population_city": return t("f.population_city", num(lang, Math.expm1(v), 0));
      case "hour": {
        const c = clock(tx);
        return c ? t("f.hour.at", c) : t("f.hour", String(Math.round(v)).padStart(2, "0"));
      }
      case "high_amount": return v >= 0.5 ? t("f.high_amount.1") : t("f.high_amount.0");
      case "cat_id_risk": return t("f.cat_id_risk." + Math.max(0, Math.min(2, Math.round(v))));
      case "freq_merch": case "freq_name_1": case "freq_name_2": case "freq_jobs":
      case "freq_us_state": case "freq_street": case "freq_one_city":
        return v === 0 ? t("f.freq.never", t("fn." + feature)) : t("f.freq", t("fn." + feature), pct(lang, v));
      case "amount_to_cat_median": return t(v < 1 ? "f.amount_to_cat_median.low" : "f.amount_to_cat_median", ratio(lang, v));
      case "cust_secs_since_prev":
        return v < 0 ? t("f.first") : t("f.cust_secs_since_prev", duration(t, lang, v));
      case "cust_cnt_1h": return counted(t, lang, "f.cust_cnt_1h", v);
      case "cust_cnt_24h": return counted(t, lang, "f.cust_cnt_24h", v);
      case "cust_night_24h": return counted(t, lang, "f.cust_night_24h", v);
      case "cust_big_24h": return counted(t, lang, "f.cust_big_24h", v);
      case "cust_n_prev": return counted(t, lang, "f.cust_n_prev", v);
      case "cust_amt_1h": return t("f.cust_amt_1h", money(lang, v));
      case "cust_amt_24h": return t("f.cust_amt_24h", money(lang, v));
      case "cust_amount_z":
        if (v === 0) return t("f.cust_amount_z.0");
        return t(v > 0 ? "f.cust_amount_z.up" : "f.cust_amount_z.down", num(lang, Math.abs(v), 1));
      case "cust_hour_dist": {
        if (v < 0) return t("f.first");
        const c = clock(tx);
        return c ? t("f.cust_hour_dist.at", c, num(lang, v, 1)) : t("f.cust_hour_dist", num(lang, v, 1));
      }
      case "cust_cat_share": return v === 0 ? t("f.cust_cat_share.0") : t("f.cust_cat_share", pct(lang, v));
      case "cust_amount_to_max":
        if (v < 0) return t("f.first");
        return t(v < 1 ? "f.cust_amount_to_max.low" : "f.cust_amount_to_max", ratio(lang, v));
      case "cust_spend24_to_daily":
        if (v < 0) return t("f.first");
        return t(v < 1 ? "f.cust_spend24_to_daily.low" : "f.cust_spend24_to_daily", ratio(lang, v));
      default: return t("f.other", feature, num(lang, v, 4));
    }
  }

  // The features the wording covers (the tests check every model feature is among them).
  const FEATURES = ["amount", "lat", "lon", "population_city", "hour", "log1p_amount",
    "log1p_population_city", "high_amount", "cat_id_risk", "freq_merch", "freq_name_1",
    "freq_name_2", "freq_jobs", "freq_us_state", "freq_street", "freq_one_city",
    "amount_to_cat_median", "cust_secs_since_prev", "cust_cnt_1h", "cust_amt_1h",
    "cust_cnt_24h", "cust_amt_24h", "cust_night_24h", "cust_big_24h", "cust_amount_z",
    "cust_hour_dist", "cust_cat_share", "cust_amount_to_max", "cust_spend24_to_daily",
    "cust_n_prev"];

  return { text: text, FEATURES: FEATURES, pluralIndex: pluralIndex };
})();
