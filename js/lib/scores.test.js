import { test } from "node:test";
import assert from "node:assert/strict";

import { decodePayload, sortRows } from "./table.js";
import { mergeScores, rankCell, rankOrder, rankedColumns, scoreDetails } from "./scores.js";

const f32 = (values) => new DataView(Float32Array.from(values).buffer);
const u8 = (values) => new DataView(Uint8Array.from(values).buffer);

// a three-row catalog as model_browser.py sends it
function catalog() {
  return decodePayload({
    n: 3,
    columns: {
      name: { kind: "str", values: ["a.x", "b.y", "c.z"] },
      top1: { kind: "num", dtype: "float32", data: f32([70, 80, 75]) },
      mean: { kind: "num", dtype: "float32", width: 3, data: f32([1, 2, 3, 4, 5, 6, 7, 8, 9]) },
      cached: { kind: "bool", dtype: "uint8", data: u8([1, 0, 1]) },
      family: { kind: "dict", dtype: "uint8", codes: u8([0, 0, 1]), values: ["res", "vit"] },
    },
  });
}

// what encode_scores sends for: c.z ranked 1, a random-init model (an extra row) 2, b.y failed
function scores() {
  return {
    n: 3,
    index: [2, 3, 1],
    extra: {
      n: 1,
      columns: {
        name: { kind: "str", values: ["a (random init)"] },
        top1: { kind: "num", dtype: "float32", data: f32([NaN]) },
        cached: { kind: "bool", dtype: "uint8", data: u8([1]) },
        pretrain: { kind: "dict", dtype: "uint8", codes: u8([0]), values: ["random init"] },
      },
    },
    columns: {
      score_order: { kind: "num", dtype: "float32", data: f32([1, 2, 3]) },
      score_rank: { kind: "num", dtype: "float32", data: f32([1, 2, NaN]) },
      logme: { kind: "num", dtype: "float32", data: f32([0.5, -0.2, NaN]) },
      knn_pct: { kind: "num", dtype: "float32", data: f32([95, 40, NaN]) },
      rank_error: { kind: "str", values: ["", "", "OSError: no weights"] },
    },
    by: "logme",
    similarity: {
      "c.z": { mean_max_prob: 0.693, normalised_entropy: 0.156,
        looks_like: [{ imagenet_class: "stone wall", share: 0.15 }, { imagenet_class: "honeycomb", share: 0.125 }] },
    },
    explain: { logme: "LogME: ...", knn_accuracy: "k-NN: ...", top1: "prior", similarity: "card" },
  };
}

test("a ranking appends its extra rows to every column and spreads the scores over all rows", () => {
  const base = catalog();
  const merged = mergeScores(base, scores());
  assert.equal(merged.n, 4);
  assert.deepEqual(merged.cols.name, ["a.x", "b.y", "c.z", "a (random init)"]);
  assert.deepEqual(Array.from(merged.cols.top1).slice(0, 3), [70, 80, 75]);
  assert.ok(Number.isNaN(merged.cols.top1[3]));
  assert.equal(merged.cols.mean.length, 12); // width 3, NaN for the extra row
  assert.ok(Number.isNaN(merged.cols.mean[9]));
  assert.deepEqual(Array.from(merged.cols.cached), [1, 0, 1, 1]);
  assert.deepEqual(merged.cols.family, ["res", "res", "vit", null]);
  assert.deepEqual(merged.cols.pretrain, [null, null, null, "random init"]); // not in the catalog
  assert.deepEqual(Array.from(merged.cols.score_rank).map((v) => (Number.isNaN(v) ? null : v)), [null, null, 1, 2]);
  assert.deepEqual(Array.from(merged.order), [2, 3, 1]);
  // the catalog itself is untouched, so the next ranking starts from it
  assert.equal(base.cols.name.length, 3);
  assert.equal(base.cols.score_rank, undefined);
});

test("sorting by score_order puts the ranked rows first, in rank order, failures after", () => {
  const merged = mergeScores(catalog(), scores());
  const all = Int32Array.from({ length: merged.n }, (_, i) => i);
  assert.deepEqual(Array.from(sortRows(all, merged.cols, "score_order", "asc")), [2, 3, 1, 0]);
});

test("rank order: ranked rows by rank, then the rest in the recommended order, either way", () => {
  const base = catalog();
  base.cols.rank = Float32Array.from([1, 0, 2]); // the catalog's recommended order: b.y, a.x, c.z
  const merged = mergeScores(base, scores());
  assert.deepEqual(Array.from(rankOrder(merged.cols, merged.n, "asc")), [2, 3, 1, 0]);
  assert.deepEqual(Array.from(rankOrder(merged.cols, merged.n, "desc")), [1, 3, 2, 0]);
  const noScores = mergeScores(base, null);
  assert.deepEqual(Array.from(rankOrder(noScores.cols, noScores.n)), [1, 0, 2]);
});

test("the ranked table puts the scores after the name and leaves out Family and GPU/s", () => {
  const cols = ["name", "family", "pretrain", "top1", "gpu_img_s", "cached"].map((key) => ({ key }));
  assert.deepEqual(rankedColumns(cols).map((c) => c.key),
    ["name", "score_rank", "logme", "knn_pct", "pretrain", "top1", "cached"]);
});

test("no payload leaves the catalog as it is", () => {
  const base = catalog();
  assert.equal(mergeScores(base, {}).cols, base.cols);
  assert.equal(mergeScores(base, { n: 0 }).ranked, false);
});

test("rank cells: the rank, 'failed' with the reason, nothing for unranked rows", () => {
  const { cols } = mergeScores(catalog(), scores());
  assert.deepEqual(rankCell(cols, 2), { text: "1", title: "" });
  assert.deepEqual(rankCell(cols, 1), { text: "failed", title: "OSError: no weights" });
  assert.deepEqual(rankCell(cols, 0), { text: "", title: "" });
  const cancelled = { ...cols, rank_error: cols.rank_error.map((e, i) => (i === 0 ? "cancelled" : e)) };
  assert.deepEqual(rankCell(cancelled, 0), { text: "–", title: "not scored: the ranking was cancelled" });
});

test("details: the scores with their sentences, the similarity card, and why a model failed", () => {
  const payload = scores();
  const { cols } = mergeScores(catalog(), payload);
  const top = scoreDetails(cols, 2, payload);
  assert.equal(top.rank, "1 of 3 on your data (by LogME)");
  assert.deepEqual(top.lines.map((l) => [l.term, l.value]).slice(0, 2), [["LogME", "0.500"], ["k-NN accuracy", "95.0 %"]]);
  assert.equal(top.lines[0].explain, "LogME: ...");
  assert.equal(top.card.looks, "Your images look most like: stone wall (15%), honeycomb (13%)");
  assert.equal(top.card.maxProb, "0.69");
  const scratch = scoreDetails(cols, 3, payload);
  assert.equal(scratch.card, null); // a random-init model has no ImageNet head to ask
  const failed = scoreDetails(cols, 1, payload);
  assert.equal(failed.rank, "could not be scored");
  assert.equal(failed.error, "OSError: no weights");
  assert.equal(scoreDetails(cols, 0, payload), null);
});
