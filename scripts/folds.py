#!/usr/bin/env python3
"""Out-of-fold scoring of extractor predictions on the dev corpora.

Every page is put in one of K folds by its *site* (the host without a leading "www."), through a stable
hash, so the same site is never on both sides of a split. A rule or constant is judged on the folds it was
not tuned on: a change that lifts the folds it was developed on but not the others is over-fitting.

usage:
  folds.py CORPUS_DIR PRED_DIR [--folds 5] [--tune 0,1] [--base BASE_DIR] [--worst N] [--json]

CORPUS_DIR holds aeb-dev/ and wcxb-dev/ (truth.jsonl each); PRED_DIR holds aeb-dev.jsonl and wcxb-dev.jsonl
as scripts/extract-quality.sh writes them (bench-out/). The scorer is ../bench/score_extraction.py next to
the corpus (override with SCORER=path).

  --tune 0,1     folds a change was developed on ("in fold"); the others are "out of fold". The report gives
                 both means side by side. Without --tune every fold is reported and the mean over folds.
  --base DIR     predictions of the build before the change: deltas per fold, in and out of fold.
  --worst N      list the N worst article pages (word F1), only from the tuning folds (so the pages you look
                 at never leak into the folds you measure on).
  --json         one JSON object instead of the table.

Reported per fold: aeb-dev shingle F1; wcxb-dev word F1 on articles and on all pages; the tail (share of
article pages, both sets, with word F1 < 0.5); title / author / date accuracy on wcxb-dev (all pages).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

SETS = ("aeb-dev", "wcxb-dev")


def load_scorer(corpus):
    path = os.environ.get("SCORER") or str(Path(corpus).parent / "bench" / "score_extraction.py")
    if not Path(path).exists():
        sys.exit(f"folds: no scorer at {path} (set SCORER=path/to/score_extraction.py)")
    spec = importlib.util.spec_from_file_location("score_extraction", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def site(url):
    host = (urlparse(url or "").hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def fold_of(url, k):
    """The fold of a page: a stable hash of its site, so one site never spans two folds."""
    return int(hashlib.sha1(site(url).encode()).hexdigest()[:8], 16) % k


def load_truth(corpus, name):
    with open(Path(corpus) / name / "truth.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def page_rows(sc, truth, preds, k):
    """Per-page measures: fold, type, shingle counts, word F1, metadata hits."""
    rows = []
    for t in truth:
        p = preds.get(t["id"]) or {}
        text = p.get("text") or ""
        r = {
            "id": t["id"],
            "url": t.get("url"),
            "fold": fold_of(t.get("url"), k),
            "type": t.get("page_type") or "article",
            "sh": sc.shingle_counts(t["text"], text),
            "wf1": sc.word_prf(t["text"], text)[2],
            "conf": p.get("extraction_confidence"),
        }
        if t.get("title"):
            r["title"] = sc.fold(p.get("title") or "") == sc.fold(t["title"])
        if t.get("author"):
            names = p.get("authors") or ([p["author"]] if p.get("author") else [])
            r["author"] = sc.fold(", ".join(names)) == sc.fold(t["author"]) or any(
                sc.fold(n) == sc.fold(t["author"]) for n in names
            )
        if t.get("published"):
            r["date"] = str(p.get("published_at") or "")[:10] == str(t["published"])[:10]
        rows.append(r)
    return rows


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def measures(sc, aeb, wcxb):
    """The headline figures over a set of page rows."""
    arts = [r for r in wcxb if r["type"] == "article"]
    tail_pages = [r for r in aeb + arts]
    out = {
        "aeb_shingle_f1": sc.shingle_prf([r["sh"] for r in aeb])[2] if aeb else None,
        "wcxb_article_word_f1": mean(r["wf1"] for r in arts),
        "wcxb_all_word_f1": mean(r["wf1"] for r in wcxb),
        "tail_share": mean(1.0 if r["wf1"] < 0.5 else 0.0 for r in tail_pages),
        "title": mean(1.0 if r["title"] else 0.0 for r in wcxb if "title" in r),
        "author": mean(1.0 if r["author"] else 0.0 for r in wcxb if "author" in r),
        "date": mean(1.0 if r["date"] else 0.0 for r in wcxb if "date" in r),
        "pages": len(aeb) + len(wcxb),
    }
    return out


COLS = [
    ("aeb_shingle_f1", "aeb sh-F1"),
    ("wcxb_article_word_f1", "art wF1"),
    ("wcxb_all_word_f1", "all wF1"),
    ("tail_share", "tail<0.5"),
    ("title", "title"),
    ("author", "author"),
    ("date", "date"),
    ("pages", "pages"),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}"


def table(lines):
    head = f"{'':14}" + "".join(f"{name:>11}" for _, name in COLS)
    print(head)
    for label, m in lines:
        print(f"{label:14}" + "".join(f"{fmt(m.get(key)):>11}" for key, _ in COLS))


def delta(a, b):
    return {k: (None if a.get(k) is None or b.get(k) is None or k == "pages" else a[k] - b[k]) for k, _ in COLS}


def load_preds(sc, pred_dir, name):
    path = Path(pred_dir) / f"{name}.jsonl"
    if not path.exists():
        sys.exit(f"folds: no predictions at {path} (run scripts/extract-quality.sh first)")
    return sc.load_predictions(path)


BANDS = [(0.0, 0.5), (0.5, 0.8), (0.8, 1.0001)]


def bands_of(pairs):
    """Mean word F1 per confidence band over (confidence, word F1) pairs."""
    out = []
    for lo, hi in BANDS:
        sel = [f1 for c, f1 in pairs if lo <= c < hi]
        out.append({"band": f"[{lo:.1f},{min(hi, 1.0):.1f}{']' if hi > 1 else ')'}", "pages": len(sel), "mean_word_f1": mean(sel)})
    return out


def confidence_bands(rows):
    """Mean word F1 per extraction_confidence band, when the predictions carry it."""
    pages = [r for name in SETS for r in rows[name] if r["conf"] is not None]
    return bands_of([(r["conf"], r["wf1"]) for r in pages]) if pages else []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("pred_dir")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--tune", default="", help="comma-separated folds the change was tuned on")
    ap.add_argument("--base", help="predictions directory of the build before the change")
    ap.add_argument("--worst", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    sc = load_scorer(a.corpus)
    k = a.folds
    tune = {int(x) for x in a.tune.split(",") if x.strip()}

    def all_rows(pred_dir):
        return {
            name: page_rows(sc, load_truth(a.corpus, name), load_preds(sc, pred_dir, name), k) for name in SETS
        }

    rows = all_rows(a.pred_dir)
    base = all_rows(a.base) if a.base else None

    def pick(rs, folds):
        return measures(sc, [r for r in rs["aeb-dev"] if r["fold"] in folds], [r for r in rs["wcxb-dev"] if r["fold"] in folds])

    per_fold = [(f"fold {f}", pick(rows, {f})) for f in range(k)]
    lines = list(per_fold)
    result = {"folds": k, "per_fold": {f"{f}": m for f, (_, m) in enumerate(per_fold)}}
    # Mean over folds (each fold weighs the same: the figure a held-out fold would give on average).
    fold_mean = {key: mean(m[key] for _, m in per_fold if m[key] is not None) for key, _ in COLS}
    lines.append(("mean of folds", fold_mean))
    lines.append(("all pages", pick(rows, set(range(k)))))
    result["mean_of_folds"] = fold_mean
    if tune:
        out = set(range(k)) - tune
        m_in, m_out = pick(rows, tune), pick(rows, out)
        lines.append(("in fold", m_in))
        lines.append(("out of fold", m_out))
        result["in_fold"], result["out_of_fold"] = m_in, m_out
        if base:
            d_in, d_out = delta(m_in, pick(base, tune)), delta(m_out, pick(base, out))
            lines.append(("Δ in fold", d_in))
            lines.append(("Δ out of fold", d_out))
            result["delta_in_fold"], result["delta_out_of_fold"] = d_in, d_out
    elif base:
        for f in range(k):
            lines.append((f"Δ fold {f}", delta(pick(rows, {f}), pick(base, {f}))))
        lines.append(("Δ all", delta(pick(rows, set(range(k))), pick(base, set(range(k))))))
    if a.json:
        print(json.dumps(result))
    else:
        table(lines)
    bands = confidence_bands(rows)
    if bands:
        result["confidence_bands"] = bands
        if not a.json:
            print("\nextraction_confidence bands (all pages of both sets; word F1 per page):")
            for b in bands:
                print(f"  {b['band']:>10}  pages {b['pages']:5}  mean word F1 {fmt(b['mean_word_f1'])}")
    if a.worst:
        pool = [r for name in SETS for r in rows[name] if r["type"] == "article" and (not tune or r["fold"] in tune)]
        pool.sort(key=lambda r: r["wf1"])
        print(f"\nworst {a.worst} article pages" + (f" of folds {sorted(tune)}" if tune else "") + ":")
        for r in pool[: a.worst]:
            print(f"  {r['wf1']:.3f}  fold {r['fold']}  {r['id'][:16]}  {r['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
