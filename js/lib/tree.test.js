import { test } from "node:test";
import assert from "node:assert/strict";
import {
  carryExpanded,
  checkboxState,
  column,
  decodeTree,
  formatCount,
  formatExact,
  freezePoint,
  keyAction,
  nodeKeys,
  nodePath,
  rowOf,
  scrollIntoView,
  toggleTarget,
  totals,
  triState,
  visibleRows,
  windowRange,
} from "./tree.js";

// A small model as the kernel encodes it (pre-order):
//  0 stem (group)           params 30
//  1   conv_stem            params 20
//  2   bn1                  params 10
//  3 blocks.0 (group)       params 100
//  4   blocks.0             params 100
//  5     conv               params 60
//  6     bn                 params 40
//  7 head (group)           params 5
//  8   fc                   params 5
//  9 pool (group, empty)    params 0
function rawModel() {
  const parent = [-1, 0, 0, -1, 3, 4, 4, -1, 7, -1];
  const depth = [0, 1, 1, 0, 1, 2, 2, 0, 1, 0];
  const params = [30, 20, 10, 100, 100, 60, 40, 5, 5, 0];
  const typeIndex = [0, 1, 2, 0, 3, 1, 2, 0, 4, 0];
  // Columns come off the websocket as DataViews at odd byte offsets.
  const view = (Type, values) => {
    const body = new Type(values);
    const buf = new Uint8Array(body.byteLength + 3);
    buf.set(new Uint8Array(body.buffer), 3);
    return new DataView(buf.buffer, 3, body.byteLength);
  };
  return {
    n: 10,
    parent: view(Int32Array, parent),
    depth: view(Uint16Array, depth),
    params: view(Float64Array, params),
    type_index: view(Uint32Array, typeIndex),
    names: ["stem", "conv_stem", "bn1", "blocks.0", "blocks.0", "conv", "bn", "head", "fc", "pool"],
    type_names: ["layer group", "Conv2d", "BatchNorm2d", "Sequential", "Linear"],
  };
}

const tree = decodeTree(rawModel());
const collapsed = () => new Uint8Array(tree.n);

test("decodeTree reads unaligned binary columns and derives subtree ends and groups", () => {
  assert.deepEqual([...tree.params], [30, 20, 10, 100, 100, 60, 40, 5, 5, 0]);
  assert.deepEqual([...tree.parent], [-1, 0, 0, -1, 3, 4, 4, -1, 7, -1]);
  assert.deepEqual([...tree.end], [3, 2, 3, 7, 7, 6, 7, 9, 9, 10]);
  assert.deepEqual([...tree.groups], [0, 3, 7, 9]);
  assert.deepEqual([...tree.groupOf], [0, 0, 0, 1, 1, 1, 1, 2, 2, 3]);
  assert.equal(tree.typeNames[tree.typeIndex[8]], "Linear");
});

test("decodeTree rejects columns of the wrong length", () => {
  const raw = rawModel();
  raw.n = 11;
  assert.throws(() => decodeTree(raw), /expected 11/);
  assert.throws(() => column(Float64Array, new Uint8Array(7)), /whole number/);
});

test("nodePath joins names below the group level", () => {
  assert.equal(nodePath(tree, 5), "blocks.0.conv");
  assert.equal(nodePath(tree, 1), "conv_stem");
  assert.equal(nodePath(tree, 3), "");
});

test("triState follows the trainable count", () => {
  assert.equal(triState(100, 100), "trainable");
  assert.equal(triState(100, 0), "frozen");
  assert.equal(triState(100, 40), "partial");
  assert.equal(triState(0, 0), "empty");
  assert.deepEqual(checkboxState("partial"), { checked: false, indeterminate: true, disabled: false });
  assert.deepEqual(checkboxState("trainable"), { checked: true, indeterminate: false, disabled: false });
  assert.deepEqual(checkboxState("empty"), { checked: false, indeterminate: false, disabled: true });
});

test("a click freezes a trainable node and unfreezes a frozen or partial one", () => {
  assert.equal(toggleTarget("trainable"), false);
  assert.equal(toggleTarget("frozen"), true);
  assert.equal(toggleTarget("partial"), true);
  assert.equal(toggleTarget("empty"), null);
});

test("visibleRows shows groups only until one is expanded, and skips collapsed subtrees", () => {
  const exp = collapsed();
  assert.deepEqual([...visibleRows(tree, exp)], [0, 3, 7, 9]);
  exp[3] = 1;
  assert.deepEqual([...visibleRows(tree, exp)], [0, 3, 4, 7, 9]);
  exp[4] = 1;
  assert.deepEqual([...visibleRows(tree, exp)], [0, 3, 4, 5, 6, 7, 9]);
  // Collapsing the group hides its expanded descendants too, and keeps them expanded for later.
  exp[3] = 0;
  assert.deepEqual([...visibleRows(tree, exp)], [0, 3, 7, 9]);
  exp[3] = 1;
  assert.deepEqual([...visibleRows(tree, exp)], [0, 3, 4, 5, 6, 7, 9]);
});

test("windowRange keeps the DOM to the rows in view plus overscan", () => {
  assert.deepEqual(windowRange(0, 100, 20, 1000, 4), { start: 0, end: 9 });
  assert.deepEqual(windowRange(2000, 100, 20, 1000, 4), { start: 96, end: 109 });
  // Bottom of the list: clamped.
  assert.deepEqual(windowRange(19900, 100, 20, 1000, 4), { start: 991, end: 1000 });
  // Scrolled past the end (list shrank after a collapse): still shows the last row.
  assert.deepEqual(windowRange(50000, 100, 20, 10, 4), { start: 9, end: 10 });
  assert.deepEqual(windowRange(0, 100, 20, 0), { start: 0, end: 0 });
  // However long the list, the window stays bounded.
  const { start, end } = windowRange(123456, 480, 24, 100000, 8);
  assert.ok(end - start <= 480 / 24 + 2 * 8 + 1);
});

test("scrollIntoView moves the least needed", () => {
  assert.equal(scrollIntoView(5, 0, 100, 20), 20); // row 5 spans 100..120
  assert.equal(scrollIntoView(1, 100, 100, 20), 20);
  assert.equal(scrollIntoView(6, 100, 100, 20), 100);
});

test("arrow keys move, expand, collapse and go to the parent; Enter and Space toggle", () => {
  const exp = collapsed();
  let rows = visibleRows(tree, exp);
  assert.equal(keyAction("ArrowDown", tree, rows, 0, exp).focus, 1);
  assert.equal(keyAction("ArrowDown", tree, rows, 3, exp).focus, 3);
  assert.equal(keyAction("ArrowUp", tree, rows, 0, exp).focus, 0);
  assert.equal(keyAction("End", tree, rows, 0, exp).focus, 3);
  // Right on a collapsed group expands it, focus stays.
  let a = keyAction("ArrowRight", tree, rows, 1, exp);
  assert.deepEqual(a, { focus: 1, expand: 3, collapse: -1, toggle: -1 });
  exp[3] = 1;
  rows = visibleRows(tree, exp); // [0, 3, 4, 7, 9]
  // Right on an expanded one moves to its first child.
  assert.equal(keyAction("ArrowRight", tree, rows, 1, exp).focus, 2);
  // Left on a collapsed child goes to its parent.
  assert.deepEqual(keyAction("ArrowLeft", tree, rows, 2, exp), { focus: 1, expand: -1, collapse: -1, toggle: -1 });
  // Left on an expanded node collapses it.
  assert.equal(keyAction("ArrowLeft", tree, rows, 1, exp).collapse, 3);
  // Right on a leaf does nothing; Left on a top-level collapsed group does nothing.
  assert.deepEqual(keyAction("ArrowRight", tree, rows, 4, exp), { focus: 4, expand: -1, collapse: -1, toggle: -1 });
  assert.deepEqual(keyAction("ArrowLeft", tree, rows, 0, exp), { focus: 0, expand: -1, collapse: -1, toggle: -1 });
  assert.equal(keyAction("Enter", tree, rows, 2, exp).toggle, 4);
  assert.equal(keyAction(" ", tree, rows, 3, exp).toggle, 7);
  assert.equal(keyAction("x", tree, rows, 3, exp), null);
});

test("rowOf finds a visible node and reports hidden ones", () => {
  const rows = Int32Array.from([0, 3, 4, 7, 9]);
  assert.equal(rowOf(rows, 7), 3);
  assert.equal(rowOf(rows, 5), -1);
});

test("freezePoint places the slider after the leading frozen groups", () => {
  // stem frozen, rest trainable: freeze_to(1)
  let tr = Float64Array.from([0, 0, 0, 100, 100, 60, 40, 5, 5, 0]);
  assert.deepEqual(freezePoint(tree, tr), { n: 1, exact: true });
  // all but the head frozen; the trailing empty group does not count as a frozen group
  tr = Float64Array.from([0, 0, 0, 0, 0, 0, 0, 5, 5, 0]);
  assert.deepEqual(freezePoint(tree, tr), { n: 2, exact: true });
  // nothing frozen
  tr = Float64Array.from([30, 20, 10, 100, 100, 60, 40, 5, 5, 0]);
  assert.deepEqual(freezePoint(tree, tr), { n: 0, exact: true });
  // a partial group after the frozen run: not what freeze_to gives
  tr = Float64Array.from([0, 0, 0, 40, 40, 0, 40, 5, 5, 0]);
  assert.deepEqual(freezePoint(tree, tr), { n: 1, exact: false });
  // everything frozen
  tr = new Float64Array(10);
  assert.deepEqual(freezePoint(tree, tr), { n: 3, exact: true });
});

test("totals sum the groups", () => {
  const tr = Float64Array.from([0, 0, 0, 100, 100, 60, 40, 5, 5, 0]);
  assert.deepEqual(totals(tree, tr), { params: 135, trainable: 105, fraction: 105 / 135 });
});

test("counts are formatted short in cells and exact in the footer", () => {
  assert.equal(formatCount(0), "0");
  assert.equal(formatCount(999), "999");
  assert.equal(formatCount(1234), "1.23k");
  assert.equal(formatCount(66347960), "66.3M");
  assert.equal(formatCount(304326632), "304M");
  assert.equal(formatCount(1.5e9), "1.50B");
  assert.equal(formatExact(66347960), "66,347,960");
  assert.equal(formatExact(12), "12");
});

test("expansion survives a re-sent tree whose nodes moved", () => {
  assert.deepEqual(nodeKeys(tree).slice(3, 7), ["group:blocks.0", "1:blocks.0", "1:blocks.0.conv", "1:blocks.0.bn"]);
  const exp = collapsed();
  exp[3] = 1;
  exp[4] = 1;
  // The kernel re-sends the tree with one more module in the stem (indices shift by one).
  const raw = rawModel();
  const grown = decodeTree({
    n: 11,
    parent: Int32Array.from([-1, 0, 0, 0, -1, 4, 5, 5, -1, 8, -1]),
    depth: Uint16Array.from([0, 1, 1, 1, 0, 1, 2, 2, 0, 1, 0]),
    params: Float64Array.from([30, 20, 10, 0, 100, 100, 60, 40, 5, 5, 0]),
    type_index: Uint32Array.from([0, 1, 2, 2, 0, 3, 1, 2, 0, 4, 0]),
    names: ["stem", "conv_stem", "bn1", "act1", "blocks.0", "blocks.0", "conv", "bn", "head", "fc", "pool"],
    type_names: raw.type_names,
  });
  const carried = carryExpanded(tree, exp, grown);
  assert.deepEqual([...visibleRows(grown, carried)], [0, 4, 5, 6, 7, 8, 10]);
});
