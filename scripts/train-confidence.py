#!/usr/bin/env python3
"""Train the extraction_confidence scorer (src/extract/confidence.rs) on the dev pages, out of fold.

usage: train-confidence.py CORPUS_DIR PRED_DIR [--folds 5] [--good 0.9] [--write src/extract/confidence.weights]

PRED_DIR holds aeb-dev.jsonl and wcxb-dev.jsonl written by scripts/extract-quality.sh (each line carries
"signals", the scorer's inputs). The label of a page is "good" when its word F1 against the truth is at
least --good. A logistic model (plain gradient descent, deterministic, no dependencies) is trained on K-1
folds by site (scripts/folds.py) and applied to the held-out fold, for every fold: the report gives mean
word F1 per confidence band on held-out pages only, so the calibration shown is the one a new site gets.
With --write the model trained on all pages is written as plain data (the file the build embeds).
"""
import argparse
import importlib.util
import math
import sys
from pathlib import Path

NAMES = ["agree_precision", "agree_recall", "length", "sentences", "link_density", "article", "fallback", "whole_story", "coverage", "balance", "agree_both"]


def load_folds():
    path = Path(__file__).with_name("folds.py")
    spec = importlib.util.spec_from_file_location("folds", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rows(folds, sc, corpus, pred_dir, k):
    out = []
    for name in folds.SETS:
        truth = folds.load_truth(corpus, name)
        preds = folds.load_preds(sc, pred_dir, name)
        for t in truth:
            p = preds.get(t["id"]) or {}
            sig = p.get("signals")
            if not sig:  # a page without text: confidence 0 by construction
                continue
            out.append({"x": sig, "f1": sc.word_prf(t["text"], p.get("text") or "")[2], "fold": folds.fold_of(t.get("url"), k)})
    return out


def predict(w, b, x):
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def train(data, good, epochs=3000, lr=0.5, l2=1e-3):
    w = [0.0] * len(NAMES)
    b = 0.0
    n = len(data)
    for _ in range(epochs):
        gw = [0.0] * len(w)
        gb = 0.0
        for r in data:
            y = 1.0 if r["f1"] >= good else 0.0
            e = predict(w, b, r["x"]) - y
            gb += e
            for i, xi in enumerate(r["x"]):
                gw[i] += e * xi
        b -= lr * gb / n
        w = [wi - lr * (g / n + l2 * wi) for wi, g in zip(w, gw)]
    return w, b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("pred_dir")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--good", type=float, default=0.9)
    ap.add_argument("--write")
    a = ap.parse_args()
    folds = load_folds()
    sc = folds.load_scorer(a.corpus)
    data = rows(folds, sc, a.corpus, a.pred_dir, a.folds)
    held_out = []
    for f in range(a.folds):
        w, b = train([r for r in data if r["fold"] != f], a.good)
        held_out += [(round(predict(w, b, r["x"]), 2), r["f1"]) for r in data if r["fold"] == f]
    print(f"out of fold ({a.folds} folds by site, {len(held_out)} pages with text), mean word F1 by confidence band:")
    for b in folds.bands_of(held_out):
        print(f"  {b['band']:>10}  pages {b['pages']:5}  mean word F1 {folds.fmt(b['mean_word_f1'])}")
    w, b = train(data, a.good)
    if a.write:
        with open(a.write, "w", encoding="utf-8") as fh:
            fh.write("# Logistic weights of extraction_confidence (src/extract/confidence.rs): P(word F1 >= %.2f).\n" % a.good)
            fh.write("# Trained on the dev pages by scripts/train-confidence.py; do not edit by hand.\n")
            fh.write(f"bias {b:.4f}\n")
            for name, wi in zip(NAMES, w):
                fh.write(f"{name} {wi:.4f}\n")
        print(f"wrote {a.write}")
    else:
        print("weights (all pages):", f"bias {b:.3f}", " ".join(f"{n} {x:.3f}" for n, x in zip(NAMES, w)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
