// Checks of the page's texts without a browser: English and Russian have the same keys, every
// data-i18n of index.html and every t("...") key of app.js exists, every model feature
// (fraudctl features --names, and the bundle's metadata) has a wording in web/reasons.js that
// fills every placeholder in both languages for typical and edge values, Russian plural forms.
// Ends with "N passed, M failed".
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const FRAUDCTL = process.env.FRAUDCTL || path.join(ROOT, "build", "src", "cli", "fraudctl");
const MODEL_DIR = path.resolve(ROOT, process.env.MODEL_DIR || "models/default");
let passed = 0, failed = 0;
function check(name, cond, detail = "") {
  if (cond) { passed++; console.log(`ok   ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail ? ": " + detail : ""}`); }
}

const ctx = { window: {} };
vm.createContext(ctx);
for (const f of ["i18n.js", "reasons.js"]) vm.runInContext(fs.readFileSync(path.join(ROOT, "web", f), "utf8"), ctx);
const { I18N, Reasons } = ctx.window;
const en = Object.keys(I18N.en), ru = Object.keys(I18N.ru);
check("English and Russian have the same keys",
  en.length === ru.length && en.every((k) => k in I18N.ru),
  JSON.stringify([en.filter((k) => !(k in I18N.ru)), ru.filter((k) => !(k in I18N.en))]));
const html = fs.readFileSync(path.join(ROOT, "web", "index.html"), "utf8");
const htmlKeys = [...html.matchAll(/data-i18n="([^"]+)"/g)].map((m) => m[1]);
check("every data-i18n of the page has a text", htmlKeys.every((k) => k in I18N.en), htmlKeys.filter((k) => !(k in I18N.en)).join(" "));
const app = fs.readFileSync(path.join(ROOT, "web", "app.js"), "utf8");
const appKeys = [...app.matchAll(/\bt\("([a-zA-Z0-9_.]+)"/g)].map((m) => m[1]);
check("every t(\"...\") key of app.js has a text", appKeys.every((k) => k in I18N.en), appKeys.filter((k) => !(k in I18N.en)).join(" "));

let features = [];
try {
  features = execFileSync(FRAUDCTL, ["features", "--names"], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
} catch (e) {
  console.log(`note: ${FRAUDCTL} features --names failed: ${e.message.split("\n")[0]}`);
}
try {
  const meta = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, "metadata.json"), "utf8"));
  features.push(...(meta.feature_names || []));
} catch (e) {
  console.log(`note: no ${MODEL_DIR}/metadata.json`);
}
features = [...new Set(features)];
check("the model's features are known", features.length >= 30, String(features.length));
const missing = features.filter((f) => !Reasons.FEATURES.includes(f));
check("every model feature has a wording", missing.length === 0, missing.join(" "));

const tx = { transaction_time: "2019-01-01 02:13:00" };
for (const lang of ["en", "ru"]) {
  const t = (k, ...a) => {
    let s = I18N[lang][k] !== undefined ? I18N[lang][k] : k;
    a.forEach((x, i) => { s = s.split("{" + i + "}").join(String(x)); });
    return s;
  };
  const bad = [];
  for (const f of Reasons.FEATURES) {
    for (const v of [0, 1, 0.25, 7, 12.2, -1, 3600, null]) {
      for (const x of [tx, null]) {
        const s = Reasons.text(f, v, x, t, lang);
        if (typeof s !== "string" || s === "" || /\{\d\}|(^|\s)(f|fn|u)\.[a-z]/.test(s)) bad.push(`${f}=${v}: ${s}`);
      }
    }
  }
  check(`${lang}: every feature's wording is complete`, bad.length === 0, bad.slice(0, 3).join("; "));
}
const ruT = (k, ...a) => { let s = I18N.ru[k]; a.forEach((x, i) => { s = s.split("{" + i + "}").join(String(x)); }); return s; };
const enT = (k, ...a) => { let s = I18N.en[k]; a.forEach((x, i) => { s = s.split("{" + i + "}").join(String(x)); }); return s; };
check("English wording", Reasons.text("cust_cnt_1h", 7, tx, enT, "en") === "7 transactions in the last hour" &&
  Reasons.text("cust_cnt_1h", 1, tx, enT, "en") === "1 transaction in the last hour" &&
  Reasons.text("cust_cat_share", 0, tx, enT, "en") === "first purchase in this category" &&
  Reasons.text("cust_amount_to_max", 12.2, tx, enT, "en") === "amount 12x the customer's largest so far" &&
  Reasons.text("cust_hour_dist", 10.5, tx, enT, "en") === "at 02:13, 10.5 h away from the customer's usual time of day",
  Reasons.text("cust_amount_to_max", 12.2, tx, enT, "en"));
const forms = [1, 2, 5, 11, 21, 22, 25].map((n) => Reasons.text("cust_cnt_1h", n, tx, ruT, "ru"));
check("Russian plural forms", JSON.stringify(forms) === JSON.stringify([
  "1 транзакция за последний час", "2 транзакции за последний час", "5 транзакций за последний час",
  "11 транзакций за последний час", "21 транзакция за последний час", "22 транзакции за последний час",
  "25 транзакций за последний час"]), JSON.stringify(forms));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
