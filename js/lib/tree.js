// DOM-free logic of the freeze panel's tree: decoding the columnar tree the kernel sends,
// tri-state from parameter counts, which rows are visible under the current expansion,
// the window of rows to put in the DOM, and what each key does.
//
// The tree arrives in pre-order (a node's subtree is the contiguous range [i, end[i])),
// so expanding, collapsing and flattening never need child lists: skipping a collapsed
// subtree is one jump.

/**
 * @typedef {Object} Tree
 * @property {number} n            number of nodes
 * @property {Int32Array} parent   parent index, -1 for the top-level rows (layer groups)
 * @property {Uint16Array} depth   0 for groups
 * @property {Float64Array} params parameters in the node's subtree
 * @property {Uint32Array} typeIndex index into typeNames
 * @property {string[]} names
 * @property {string[]} typeNames
 * @property {Int32Array} end      one past the last node of the subtree (pre-order)
 * @property {Int32Array} groups   node index of each layer group, stem to head
 * @property {Int32Array} groupOf  the group each node belongs to
 */

/**
 * Copies a binary column (DataView, ArrayBuffer or typed array) into an aligned typed array.
 * Buffers that come off the websocket are DataViews at arbitrary byte offsets, which typed
 * arrays of 4- or 8-byte elements cannot view in place.
 * @template {Int32ArrayConstructor|Uint16ArrayConstructor|Uint32ArrayConstructor|Float64ArrayConstructor} T
 * @param {T} Type
 * @param {DataView|ArrayBuffer|ArrayBufferView} data
 * @returns {InstanceType<T>}
 */
export function column(Type, data) {
  if (data instanceof Type) return /** @type {any} */ (data);
  let bytes;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new TypeError(`expected binary data for a ${Type.name} column, got ${typeof data}`);
  if (bytes.byteLength % Type.BYTES_PER_ELEMENT !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${Type.name} elements`);
  }
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  return /** @type {any} */ (new Type(aligned.buffer));
}

/**
 * Turns the `tree` trait (columns as binary buffers, names as JSON lists) into a Tree.
 * @param {{n: number, parent: any, depth: any, params: any, type_index: any,
 *          names: string[], type_names: string[]}} raw
 * @returns {Tree}
 */
export function decodeTree(raw) {
  const n = raw.n;
  const parent = column(Int32Array, raw.parent);
  const depth = column(Uint16Array, raw.depth);
  const params = column(Float64Array, raw.params);
  const typeIndex = column(Uint32Array, raw.type_index);
  for (const [label, col] of [["parent", parent], ["depth", depth], ["params", params], ["type_index", typeIndex]]) {
    if (col.length !== n) throw new RangeError(`tree column ${label} has ${col.length} entries, expected ${n}`);
  }
  if (raw.names.length !== n) throw new RangeError(`tree has ${raw.names.length} names, expected ${n}`);
  return finishTree({ n, parent, depth, params, typeIndex, names: raw.names, typeNames: raw.type_names });
}

/**
 * Adds the derived columns (subtree ends, group list, group of each node) to the raw columns.
 * @param {{n:number, parent:Int32Array, depth:Uint16Array, params:Float64Array,
 *          typeIndex:Uint32Array, names:string[], typeNames:string[]}} t
 * @returns {Tree}
 */
export function finishTree(t) {
  const { n, parent, depth } = t;
  const end = new Int32Array(n);
  const groupOf = new Int32Array(n);
  const groups = [];
  // A node's subtree ends where the next node of the same or a shallower depth starts.
  const stack = [];
  for (let i = 0; i < n; i++) {
    while (stack.length && depth[stack[stack.length - 1]] >= depth[i]) end[stack.pop()] = i;
    stack.push(i);
    if (parent[i] < 0) groups.push(i);
    groupOf[i] = groups.length - 1;
  }
  while (stack.length) end[stack.pop()] = n;
  return { ...t, end, groups: Int32Array.from(groups), groupOf };
}

/** @param {Tree} tree @param {number} i */
export function hasChildren(tree, i) {
  return tree.end[i] > i + 1;
}

/**
 * The dotted module path of a node (groups have none: their name is the group's name).
 * Depth-1 nodes carry their full path as name; deeper nodes their last component.
 * @param {Tree} tree @param {number} i @returns {string}
 */
export function nodePath(tree, i) {
  if (tree.depth[i] === 0) return "";
  const parts = [];
  for (let k = i; k >= 0 && tree.depth[k] > 0; k = tree.parent[k]) parts.push(tree.names[k]);
  return parts.reverse().join(".");
}

/**
 * A key per node that survives a re-sent tree (the kernel re-sends it when the module
 * structure changes, e.g. BatchNorm layers swapped by the "frozen" policy): the group name for
 * groups, the dotted path below them. Used to keep what was expanded expanded.
 * @param {Tree} tree @returns {string[]}
 */
export function nodeKeys(tree) {
  const keys = new Array(tree.n);
  for (let i = 0; i < tree.n; i++) {
    const d = tree.depth[i];
    if (d === 0) keys[i] = `group:${tree.names[i]}`;
    else if (d === 1) keys[i] = `${tree.groupOf[i]}:${tree.names[i]}`;
    else keys[i] = `${keys[tree.parent[i]]}.${tree.names[i]}`;
  }
  return keys;
}

/**
 * Carries the expanded set over to a new tree by node key.
 * @param {Tree} oldTree @param {Uint8Array} oldExpanded @param {Tree} newTree
 * @returns {Uint8Array}
 */
export function carryExpanded(oldTree, oldExpanded, newTree) {
  const oldKeys = nodeKeys(oldTree);
  const open = new Set();
  for (let i = 0; i < oldTree.n; i++) if (oldExpanded[i]) open.add(oldKeys[i]);
  const out = new Uint8Array(newTree.n);
  if (open.size === 0) return out;
  const newKeys = nodeKeys(newTree);
  for (let i = 0; i < newTree.n; i++) if (open.has(newKeys[i])) out[i] = 1;
  return out;
}

/**
 * Freeze state of a node from its parameter counts.
 * @param {number} params @param {number} trainable
 * @returns {"trainable"|"frozen"|"partial"|"empty"}
 */
export function triState(params, trainable) {
  if (params === 0) return "empty";
  if (trainable >= params) return "trainable";
  if (trainable <= 0) return "frozen";
  return "partial";
}

/**
 * What the checkbox shows: checked means trainable; partial uses `indeterminate`.
 * @param {"trainable"|"frozen"|"partial"|"empty"} state
 */
export function checkboxState(state) {
  return {
    checked: state === "trainable",
    indeterminate: state === "partial",
    disabled: state === "empty",
  };
}

/**
 * What a click (or Enter/Space) on a node asks for: `true` to make it trainable, `false` to
 * freeze it, `null` when it has no parameters. A partial node becomes trainable, as a native
 * indeterminate checkbox becomes checked when clicked.
 * @param {"trainable"|"frozen"|"partial"|"empty"} state
 * @returns {boolean|null}
 */
export function toggleTarget(state) {
  if (state === "empty") return null;
  return state !== "trainable";
}

/**
 * The rows shown under the current expansion, in display order.
 * @param {Tree} tree @param {Uint8Array} expanded 1 where a node is expanded
 * @returns {Int32Array} node index of each visible row
 */
export function visibleRows(tree, expanded) {
  const rows = new Int32Array(tree.n);
  let count = 0;
  let i = 0;
  while (i < tree.n) {
    rows[count++] = i;
    i = expanded[i] ? i + 1 : tree.end[i];
  }
  return rows.subarray(0, count);
}

/**
 * Which rows to put in the DOM for a scroll position: the rows in view plus `overscan` on
 * each side, clamped to [0, rowCount).
 * @param {number} scrollTop @param {number} viewportHeight @param {number} rowHeight
 * @param {number} rowCount @param {number} [overscan]
 * @returns {{start: number, end: number}} rows start .. end-1
 */
export function windowRange(scrollTop, viewportHeight, rowHeight, rowCount, overscan = 4) {
  if (rowCount <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  const start = Math.max(0, Math.min(rowCount - 1, first - overscan));
  const end = Math.min(rowCount, Math.max(start + 1, last + overscan));
  return { start, end };
}

/**
 * The scrollTop that brings `row` fully into view, changing the current one as little as
 * possible.
 * @param {number} row @param {number} scrollTop @param {number} viewportHeight @param {number} rowHeight
 */
export function scrollIntoView(row, scrollTop, viewportHeight, rowHeight) {
  const top = row * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewportHeight) return Math.max(0, bottom - viewportHeight);
  return scrollTop;
}

/**
 * What a key does in the tree (WAI-ARIA tree view pattern): the new focused row, and at most
 * one node to expand, collapse or toggle. Unknown keys return null so the page keeps them.
 * @param {string} key KeyboardEvent.key
 * @param {Tree} tree @param {Int32Array} rows visible rows @param {number} focus focused row
 * @param {Uint8Array} expanded @param {number} [pageRows] rows per page for PageUp/PageDown
 * @returns {null|{focus: number, expand: number, collapse: number, toggle: number}}
 *   expand/collapse/toggle are node indices, -1 for none
 */
export function keyAction(key, tree, rows, focus, expanded, pageRows = 10) {
  const last = rows.length - 1;
  if (last < 0) return null;
  const row = Math.max(0, Math.min(last, focus));
  const node = rows[row];
  const out = { focus: row, expand: -1, collapse: -1, toggle: -1 };
  switch (key) {
    case "ArrowDown": out.focus = Math.min(last, row + 1); break;
    case "ArrowUp": out.focus = Math.max(0, row - 1); break;
    case "Home": out.focus = 0; break;
    case "End": out.focus = last; break;
    case "PageDown": out.focus = Math.min(last, row + pageRows); break;
    case "PageUp": out.focus = Math.max(0, row - pageRows); break;
    case "ArrowRight":
      if (hasChildren(tree, node)) {
        if (!expanded[node]) out.expand = node;
        else out.focus = row + 1; // the first child is the next visible row
      }
      break;
    case "ArrowLeft":
      if (hasChildren(tree, node) && expanded[node]) out.collapse = node;
      else if (tree.parent[node] >= 0) out.focus = rowOf(rows, tree.parent[node], row);
      break;
    case "Enter":
    case " ":
      out.toggle = node;
      break;
    default:
      return null;
  }
  return out;
}

/**
 * Row index of a visible node, searching backwards from `before` (a parent precedes its
 * children); -1 when not visible.
 * @param {Int32Array} rows @param {number} node @param {number} [before]
 */
export function rowOf(rows, node, before = rows.length - 1) {
  // rows are increasing node indices, so a binary search finds it
  let lo = 0;
  let hi = Math.min(before, rows.length - 1);
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid] === node) return mid;
    if (rows[mid] < node) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Where the "freeze up to" slider stands: the number of leading groups that are fully frozen
 * (groups without parameters do not interrupt the run), and whether the whole state is exactly
 * what `freeze_to(model, n)` would give (groups from n on all trainable).
 * @param {Tree} tree @param {Float64Array} trainable per node
 * @returns {{n: number, exact: boolean}}
 */
export function freezePoint(tree, trainable) {
  const g = tree.groups;
  let n = 0;
  while (n < g.length && trainable[g[n]] === 0) n++;
  let exact = true;
  for (let k = n; k < g.length; k++) {
    if (trainable[g[k]] < tree.params[g[k]]) { exact = false; break; }
  }
  // A parameterless group is both frozen and trainable; stop the run at the last group that
  // really is frozen, so the slider does not claim more than was done.
  while (n > 0 && tree.params[g[n - 1]] === 0) n--;
  return { n, exact };
}

/**
 * Total and trainable parameters of the whole model (the sum over groups).
 * @param {Tree} tree @param {Float64Array} trainable
 */
export function totals(tree, trainable) {
  let params = 0;
  let train = 0;
  for (const g of tree.groups) {
    params += tree.params[g];
    train += trainable[g];
  }
  return { params, trainable: train, fraction: params > 0 ? train / params : 0 };
}

/**
 * A parameter count in a short form for the table: 512, 12.3k, 4.56M, 1.2B.
 * @param {number} n
 */
export function formatCount(n) {
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n));
  const [div, unit] = a >= 1e9 ? [1e9, "B"] : a >= 1e6 ? [1e6, "M"] : [1e3, "k"];
  const v = n / div;
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit}`;
}

/** A count with thousands separators, for tooltips and the footer: 66,347,960. */
export function formatExact(n) {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
