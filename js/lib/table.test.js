import { test } from "node:test";
import assert from "node:assert/strict";

import {
  completeColumns,
  decodePayload,
  emptyFilters,
  filterRows,
  filtersAreEmpty,
  formatNumber,
  linearTicks,
  logScale,
  logTicks,
  moveCursor,
  nearestPoint,
  nextSort,
  positionOf,
  scrollToReveal,
  searchIndex,
  searchPredicate,
  sortRows,
  termMatcher,
  toTyped,
  valueCounts,
  visibleWindow,
} from "./table.js";

// A small catalog in the payload format model_browser.py sends (binary parts as DataViews,
// which is what ipywidgets hands to the view).
function dv(typed) {
  // put the bytes at an odd offset inside a larger buffer, as a message buffer may
  const raw = new Uint8Array(typed.byteLength + 3);
  raw.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), 3);
  return new DataView(raw.buffer, 3, typed.byteLength);
}

function payload() {
  const names = ["resnet18.a1_in1k", "resnet101.a1h_in1k", "vit_base_patch16_224.augreg_in21k", "convnext_tiny.fb_in22k", "resnet50.tv_in1k"];
  const fam = ["resnet", "vit", "convnext"];
  return {
    n: 5,
    columns: {
      name: { kind: "str", values: names },
      family: { kind: "dict", dtype: "uint8", codes: dv(Uint8Array.from([0, 0, 1, 2, 0])), values: fam },
      pretrain: { kind: "dict", dtype: "uint8", codes: dv(Uint8Array.from([0, 0, 1, 2, 0])), values: ["in1k", "in21k", "in22k"] },
      license: { kind: "dict", dtype: "uint8", codes: dv(Uint8Array.from([0, 0, 0, 1, 2])), values: ["apache-2.0", "cc-by-nc-4.0", null] },
      noncommercial: { kind: "bool", dtype: "uint8", data: dv(Uint8Array.from([0, 0, 0, 1, 0])) },
      cached: { kind: "bool", dtype: "uint8", data: dv(Uint8Array.from([1, 0, 0, 0, 1])) },
      params_m: { kind: "num", dtype: "float32", data: dv(Float32Array.from([11.7, 44.5, 86.6, 28.6, NaN])) },
      img_size: { kind: "num", dtype: "float32", data: dv(Float32Array.from([224, 224, 224, 288, 224])) },
      top1: { kind: "num", dtype: "float32", data: dv(Float32Array.from([71.5, 82.8, NaN, 82.1, 76.1])) },
      hf_hub_id: { kind: "name_ref", prefix: "timm/", values: [1, 1, "google/vit", null, 1] },
    },
  };
}

function decoded() {
  const { n, cols } = decodePayload(payload());
  return { n, cols, index: searchIndex(cols, n) };
}

function names(cols, rows) {
  return Array.from(rows, (i) => cols.name[i]);
}

test("toTyped copies unaligned DataViews into the right typed array", () => {
  const a = toTyped(dv(Float32Array.from([1.5, NaN, -2])), "float32");
  assert.ok(a instanceof Float32Array);
  assert.equal(a[0], 1.5);
  assert.ok(Number.isNaN(a[1]));
  assert.equal(a[2], -2);
  assert.throws(() => toTyped(dv(Uint8Array.from([1])), "complex64"), /unknown dtype/);
});

test("decodePayload expands dictionary-encoded strings and keeps missing values", () => {
  const { n, cols } = decoded();
  assert.equal(n, 5);
  assert.deepEqual(cols.family, ["resnet", "resnet", "vit", "convnext", "resnet"]);
  assert.equal(cols.license[4], null);
  assert.equal(cols.cached[0], 1);
  assert.deepEqual(cols.hf_hub_id, ["timm/resnet18.a1_in1k", "timm/resnet101.a1h_in1k", "google/vit", null, "timm/resnet50.tv_in1k"]);
  assert.ok(Math.abs(cols.params_m[1] - 44.5) < 1e-5);
});

test("wildcards match the whole name, case-insensitively; plain terms are substrings", () => {
  assert.equal(termMatcher("resnet*")("resnet50.a1_in1k"), true);
  assert.equal(termMatcher("resnet*")("seresnet50.a1_in1k"), false);
  assert.equal(termMatcher("*in21k*")("vit_base_patch16_224.augreg_in21k"), true);
  assert.equal(termMatcher("*IN21K")("vit_base_patch16_224.augreg_in21k"), true);
  assert.equal(termMatcher("resnet?0.*")("resnet50.tv_in1k"), true);
  assert.equal(termMatcher("resnet?0.*")("resnet101.a1h_in1k"), false);
  // regex metacharacters in the query are literal
  assert.equal(termMatcher("a+b*")("aab"), false);
  assert.equal(termMatcher("a+b*")("a+bc"), true);
  assert.equal(termMatcher("Net5")("resnet50.tv_in1k"), true);
});

test("a search matches name or family and every term must match", () => {
  const p = searchPredicate("  resnet  tv ");
  assert.equal(p("resnet50.tv_in1k", "resnet"), true);
  assert.equal(p("resnet18.a1_in1k", "resnet"), false);
  assert.equal(searchPredicate("   "), null);
  assert.equal(searchPredicate("convnext")("x.y", "convnext"), true);
});

test("filterRows applies search, selects, the commercial switch, ranges and offline", () => {
  const { n, cols, index } = decoded();
  const f = emptyFilters();
  assert.equal(filterRows(cols, n, f, index).length, 5);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, query: "resnet*" }, index)), [
    "resnet18.a1_in1k",
    "resnet101.a1h_in1k",
    "resnet50.tv_in1k",
  ]);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, query: "*IN21K*" }, index)), ["vit_base_patch16_224.augreg_in21k"]);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, family: "vit" }, index)), ["vit_base_patch16_224.augreg_in21k"]);
  assert.equal(filterRows(cols, n, { ...f, commercial: true }, index).length, 4);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, license: "cc-by-nc-4.0" }, index)), ["convnext_tiny.fb_in22k"]);
  // NaN params never pass a range
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, paramsMin: 20 }, index)), [
    "resnet101.a1h_in1k",
    "vit_base_patch16_224.augreg_in21k",
    "convnext_tiny.fb_in22k",
  ]);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, paramsMax: 30 }, index)), ["resnet18.a1_in1k", "convnext_tiny.fb_in22k"]);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, imgSize: 288 }, index)), ["convnext_tiny.fb_in22k"]);
  assert.deepEqual(names(cols, filterRows(cols, n, { ...f, offline: true }, index)), ["resnet18.a1_in1k", "resnet50.tv_in1k"]);
  assert.equal(filterRows(cols, n, { ...f, query: "nothing-like-this" }, index).length, 0);
});

test("filterRows keeps the order of a pre-sorted row list", () => {
  const { n, cols, index } = decoded();
  const byTop1 = sortRows(Int32Array.from({ length: n }, (_, i) => i), cols, "top1", "desc");
  const rows = filterRows(cols, n, { ...emptyFilters(), query: "resnet" }, index, byTop1);
  assert.deepEqual(names(cols, rows), ["resnet101.a1h_in1k", "resnet50.tv_in1k", "resnet18.a1_in1k"]);
});

test("a catalog without a filter's column passes no row through that filter", () => {
  const { n, cols } = decodePayload({ n: 2, columns: { name: { kind: "str", values: ["a.x", "b.y"] } } });
  const index = searchIndex(cols, n);
  const f = emptyFilters();
  assert.equal(filterRows(cols, n, f, index).length, 2);
  assert.equal(filterRows(cols, n, { ...f, query: "a" }, index).length, 1);
  for (const extra of [{ commercial: true }, { offline: true }, { paramsMin: 1 }, { imgSize: 224 }, { family: "vit" }]) {
    assert.equal(filterRows(cols, n, { ...f, ...extra }, index).length, 0, JSON.stringify(extra));
  }
});

test("filtersAreEmpty tells default filters from active ones", () => {
  assert.equal(filtersAreEmpty(emptyFilters()), true);
  assert.equal(filtersAreEmpty({ ...emptyFilters(), paramsMin: 3 }), false);
  assert.equal(filtersAreEmpty({ ...emptyFilters(), query: "vit" }), false);
});

test("numeric sort puts NaN last in both directions", () => {
  const { n, cols } = decoded();
  const all = Int32Array.from({ length: n }, (_, i) => i);
  assert.deepEqual(names(cols, sortRows(all, cols, "top1", "asc")), [
    "resnet18.a1_in1k",
    "resnet50.tv_in1k",
    "convnext_tiny.fb_in22k",
    "resnet101.a1h_in1k",
    "vit_base_patch16_224.augreg_in21k",
  ]);
  assert.deepEqual(names(cols, sortRows(all, cols, "top1", "desc")), [
    "resnet101.a1h_in1k",
    "convnext_tiny.fb_in22k",
    "resnet50.tv_in1k",
    "resnet18.a1_in1k",
    "vit_base_patch16_224.augreg_in21k",
  ]);
});

test("string sort is natural and puts missing values last", () => {
  const { n, cols } = decoded();
  const all = Int32Array.from({ length: n }, (_, i) => i);
  assert.deepEqual(names(cols, sortRows(all, cols, "name", "asc")).slice(0, 3), [
    "convnext_tiny.fb_in22k",
    "resnet18.a1_in1k",
    "resnet50.tv_in1k",
  ]);
  const byLicenseDesc = names(cols, sortRows(all, cols, "license", "desc"));
  assert.equal(byLicenseDesc[0], "convnext_tiny.fb_in22k");
  assert.equal(byLicenseDesc[4], "resnet50.tv_in1k"); // null licence stays last
});

test("header clicks toggle the direction; a new column starts ascending", () => {
  assert.deepEqual(nextSort({ key: "name", dir: "asc" }, "name"), { key: "name", dir: "desc" });
  assert.deepEqual(nextSort({ key: "name", dir: "desc" }, "name"), { key: "name", dir: "asc" });
  assert.deepEqual(nextSort({ key: "name", dir: "desc" }, "top1"), { key: "top1", dir: "asc" });
});

test("the virtual window covers the viewport plus overscan and never exceeds the cap", () => {
  assert.deepEqual(visibleWindow(0, 300, 30, 1826, 5), { start: 0, end: 16 });
  assert.deepEqual(visibleWindow(3000, 300, 30, 1826, 5), { start: 95, end: 116 });
  assert.deepEqual(visibleWindow(1826 * 30, 300, 30, 1826, 5), { start: 1821, end: 1826 });
  assert.deepEqual(visibleWindow(0, 300, 30, 0), { start: 0, end: 0 });
  const huge = visibleWindow(0, 100000, 10, 1826, 8, 100);
  assert.equal(huge.end - huge.start, 100);
});

test("scrollToReveal moves only as far as needed", () => {
  assert.equal(scrollToReveal(5, 0, 300, 30), 0); // already visible
  assert.equal(scrollToReveal(20, 0, 300, 30), 330); // below: bottom-aligned
  assert.equal(scrollToReveal(2, 300, 300, 30), 60); // above: top-aligned
});

test("keyboard moves clamp at the ends and start from the top", () => {
  assert.equal(moveCursor(-1, "ArrowDown", 10), 0);
  assert.equal(moveCursor(3, "ArrowDown", 10), 4);
  assert.equal(moveCursor(9, "ArrowDown", 10), 9);
  assert.equal(moveCursor(0, "ArrowUp", 10), 0);
  assert.equal(moveCursor(5, "PageDown", 10, 4), 9);
  assert.equal(moveCursor(5, "PageUp", 10, 4), 1);
  assert.equal(moveCursor(5, "Home", 10), 0);
  assert.equal(moveCursor(5, "End", 10), 9);
  assert.equal(moveCursor(5, "x", 10), 5);
  assert.equal(moveCursor(5, "ArrowDown", 0), -1);
});

test("positionOf finds a row among the shown rows", () => {
  const order = Int32Array.from([4, 2, 7]);
  assert.equal(positionOf(order, 7), 2);
  assert.equal(positionOf(order, 3), -1);
  assert.equal(positionOf(order, -1), -1);
});

test("the log scale spans positive values only and its ticks are powers of ten", () => {
  const v = Float32Array.from([10, 1000, NaN, 0, 100000]);
  const s = logScale(v, [0, 1, 2, 3, 4], 0, 100);
  assert.ok(s.scale(10) > 0 && s.scale(10) < 10);
  assert.ok(Math.abs(s.scale(1000) - 50) < 1e-6); // middle of 10..100000 on a log axis
  assert.deepEqual(logTicks(s.lo, s.hi), [10, 100, 1000, 10000, 100000]);
  assert.equal(logScale(v, [2, 3], 0, 100), null);
  assert.deepEqual(logTicks(30, 80), [50]);
});

test("linear ticks are round numbers inside the range", () => {
  assert.deepEqual(linearTicks(62, 91, 5), [70, 80, 90]);
  assert.deepEqual(linearTicks(62, 91, 8), [65, 70, 75, 80, 85, 90]);
  assert.deepEqual(linearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test("nearestPoint picks the closest dot within the radius", () => {
  const xs = Float32Array.from([10, 20, 30]);
  const ys = Float32Array.from([10, 10, 10]);
  assert.equal(nearestPoint(xs, ys, 3, 19, 11, 5), 1);
  assert.equal(nearestPoint(xs, ys, 3, 50, 50, 5), -1);
  assert.equal(nearestPoint(xs, ys, 2, 30, 10, 1), -1); // only the first two count
});

test("formatNumber and valueCounts", () => {
  assert.equal(formatNumber(NaN), "");
  assert.equal(formatNumber(12.345, 2), "12.35");
  assert.equal(formatNumber(12345.6), "12,346");
  assert.deepEqual(valueCounts(["a", "b", "a", null, "", "c", "b", "a"]), [
    ["a", 3],
    ["b", 2],
    ["c", 1],
  ]);
});

test("completeColumns splits names into architecture and tag and fills the filters' columns", () => {
  const decoded = decodePayload({ n: 2, columns: { name: { kind: "str", values: ["resnet18.a1_in1k", "plain"] } } });
  completeColumns(decoded);
  assert.deepEqual(decoded.cols.architecture, ["resnet18", "plain"]);
  assert.deepEqual(decoded.cols.tag, ["a1_in1k", ""]);
  assert.deepEqual(decoded.cols.family, [null, null]);
});
