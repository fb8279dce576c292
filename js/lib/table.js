// DOM-free logic of the model browser's table: decoding the columnar payload sent by
// tlwidgets/widgets/model_browser.py, search with wildcards, filters, sorting with NaN last,
// the virtual-scrolling window, keyboard moves and the scatter's log scale.
// Kept free of the DOM so `node --test js/lib/table.test.js` covers it.

/** @typedef {{n: number, columns: Object<string, any>}} Payload */

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  int32: Int32Array,
};

/**
 * Turn a DataView / ArrayBuffer / typed array (what ipywidgets puts where Python sent bytes)
 * into a typed array of `dtype`. Copies, because a DataView into a larger message buffer may
 * sit at an offset that Float32Array cannot view directly (it needs 4-byte alignment).
 * @param {DataView|ArrayBuffer|ArrayBufferView} data
 * @param {string} dtype
 */
export function toTyped(data, dtype) {
  const Ctor = TYPED[dtype];
  if (!Ctor) throw new Error(`tlwidgets: unknown dtype ${dtype}`);
  let bytes;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new Error("tlwidgets: expected binary column data");
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer);
}

/**
 * Decode the payload: numbers -> typed arrays, dictionary-encoded strings -> arrays of strings.
 * Every column comes back with exactly `n` entries (`width` per entry for mean/std).
 * @param {Payload} payload
 * @returns {{n: number, cols: Object<string, any>, kinds: Object<string, string>}}
 */
export function decodePayload(payload) {
  const n = payload.n;
  const cols = {};
  const kinds = {};
  for (const [name, col] of Object.entries(payload.columns)) {
    kinds[name] = col.kind;
    if (col.kind === "num" || col.kind === "bool") {
      cols[name] = toTyped(col.data, col.dtype);
    } else if (col.kind === "dict") {
      const codes = toTyped(col.codes, col.dtype);
      const values = col.values;
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = values[codes[i]];
      cols[name] = out;
    } else if (col.kind === "str") {
      cols[name] = col.values;
    } else if (col.kind === "name_ref") {
      // 1 stands for prefix + the row's name (see _name_references in model_browser.py)
      const names = payload.columns.name.values;
      cols[name] = col.values.map((v, i) => (v === 1 ? col.prefix + names[i] : v));
    } else {
      throw new Error(`tlwidgets: unknown column kind ${col.kind}`);
    }
  }
  return { n, cols, kinds };
}

/** The decoded catalog's architecture/tag (sent only when they are not the halves of the
 * name) and the filters' string columns, filled in place. */
export function completeColumns({ n, cols }) {
  if (!cols.architecture || !cols.tag) {
    // the kernel leaves these out when every name is "architecture.tag" (they travel once, in name)
    cols.architecture = new Array(n);
    cols.tag = new Array(n);
    for (let i = 0; i < n; i++) {
      const name = cols.name[i];
      const dot = name.indexOf(".");
      cols.architecture[i] = dot < 0 ? name : name.slice(0, dot);
      cols.tag[i] = dot < 0 ? "" : name.slice(dot + 1);
    }
  }
  for (const key of ["family", "pretrain", "license"]) if (!cols[key]) cols[key] = new Array(n).fill(null);
}

/**
 * A case-insensitive matcher for one search term. Terms with `*` or `?` are shell-style
 * wildcards matched against the whole text (as in `timm.list_models("resnet*")`); other terms
 * match as substrings.
 * @param {string} term
 * @returns {(text: string) => boolean}  text must already be lower case
 */
export function termMatcher(term) {
  const t = term.toLowerCase();
  if (!/[*?]/.test(t)) return (text) => text.includes(t);
  const body = t
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  const re = new RegExp(`^${body}$`);
  return (text) => re.test(text);
}

/**
 * A predicate for a whole search string: whitespace-separated terms must all match, each in
 * the name or the family.
 * @param {string} query
 * @returns {((name: string, family: string) => boolean) | null}  null when the query is empty
 */
export function searchPredicate(query) {
  const terms = query.trim().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return null;
  const matchers = terms.map(termMatcher);
  return (name, family) => matchers.every((m) => m(name) || m(family));
}

/** Filters that show every row. */
export function emptyFilters() {
  return {
    query: "",
    family: "",
    pretrain: "",
    license: "",
    commercial: false,
    paramsMin: NaN,
    paramsMax: NaN,
    imgSize: NaN,
    offline: false,
  };
}

/** True when `filters` hides nothing. */
export function filtersAreEmpty(f) {
  const e = emptyFilters();
  return Object.keys(e).every((k) => (Number.isNaN(e[k]) ? Number.isNaN(f[k]) : f[k] === e[k]));
}

/**
 * Lower-cased search haystacks, computed once per catalog so a keystroke does no allocation
 * per row beyond the match itself.
 */
export function searchIndex(cols, n) {
  const names = new Array(n);
  const families = new Array(n);
  for (let i = 0; i < n; i++) {
    names[i] = String(cols.name[i] ?? "").toLowerCase();
    families[i] = String((cols.family && cols.family[i]) ?? "").toLowerCase();
  }
  return { names, families };
}

/**
 * Indices of the rows that pass every filter, in the order of `within` (all rows already
 * sorted by the current column), or catalog order without it. Filtering a pre-sorted order
 * keeps a keystroke O(n): the sort runs only when the sort column changes.
 * @param {Object<string, any>} cols decoded columns
 * @param {number} n row count
 * @param {ReturnType<typeof emptyFilters>} f
 * @param {ReturnType<typeof searchIndex>} index
 * @param {Int32Array} [within] the rows to consider, in the order wanted
 * @returns {Int32Array}
 */
export function filterRows(cols, n, f, index, within) {
  const search = searchPredicate(f.query || "");
  const out = new Int32Array(n);
  let k = 0;
  const params = cols.params_m;
  const img = cols.img_size;
  const noncommercial = cols.noncommercial;
  const cached = cols.cached;
  const lo = Number.isNaN(f.paramsMin) ? -Infinity : f.paramsMin;
  const hi = Number.isNaN(f.paramsMax) ? Infinity : f.paramsMax;
  const paramsActive = lo !== -Infinity || hi !== Infinity;
  const m = within ? within.length : n;
  for (let j = 0; j < m; j++) {
    const i = within ? within[j] : j;
    if (f.family && (!cols.family || cols.family[i] !== f.family)) continue;
    if (f.pretrain && (!cols.pretrain || cols.pretrain[i] !== f.pretrain)) continue;
    if (f.license && (!cols.license || cols.license[i] !== f.license)) continue;
    // a catalog without the column says nothing about the row, so it cannot pass these filters
    if (f.commercial && (!noncommercial || noncommercial[i] !== 0)) continue;
    if (f.offline && (!cached || cached[i] !== 1)) continue;
    if (paramsActive) {
      const p = params ? params[i] : NaN;
      // a model of unknown size cannot be shown to fit a size range
      if (!(p >= lo && p <= hi)) continue;
    }
    if (!Number.isNaN(f.imgSize) && (!img || img[i] !== f.imgSize)) continue;
    if (search && !search(index.names[i], index.families[i])) continue;
    out[k++] = i;
  }
  return out.slice(0, k);
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/**
 * Sort row indices by a column. Numbers: NaN always last, in either direction. Strings:
 * natural order ("resnet18" before "resnet101"), empty/missing last. Ties keep catalog order.
 * @param {Int32Array|number[]} rows
 * @param {Object<string, any>} cols
 * @param {string} key column name
 * @param {"asc"|"desc"} dir
 * @returns {Int32Array}
 */
export function sortRows(rows, cols, key, dir) {
  const col = cols[key];
  const sign = dir === "desc" ? -1 : 1;
  const out = Int32Array.from(rows);
  if (!col) return out;
  const numeric = ArrayBuffer.isView(col);
  const cmp = numeric
    ? (a, b) => {
        const x = col[a];
        const y = col[b];
        const xn = Number.isNaN(x);
        const yn = Number.isNaN(y);
        if (xn || yn) return xn && yn ? a - b : xn ? 1 : -1;
        return x === y ? a - b : (x < y ? -1 : 1) * sign;
      }
    : (a, b) => {
        const x = col[a] ?? "";
        const y = col[b] ?? "";
        if (x === "" || y === "") return x === y ? a - b : x === "" ? 1 : -1;
        const c = collator.compare(String(x), String(y));
        return c === 0 ? a - b : c * sign;
      };
  out.sort(cmp);
  return out;
}

/**
 * The direction a header click gives: the same column flips, a new column starts ascending.
 * @param {{key: string, dir: "asc"|"desc"}} current
 * @param {string} key
 */
export function nextSort(current, key) {
  if (current.key === key) return { key, dir: current.dir === "asc" ? "desc" : "asc" };
  return { key, dir: "asc" };
}

/**
 * Which rows to put in the DOM for a scroll position: the visible ones plus `overscan` on each
 * side, never more than `maxRows`.
 * @returns {{start: number, end: number}} end exclusive
 */
export function visibleWindow(scrollTop, viewportHeight, rowHeight, total, overscan = 8, maxRows = 100) {
  if (total <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + 1;
  let start = Math.max(0, first - overscan);
  let end = Math.min(total, first + visible + overscan);
  if (end - start > maxRows) end = start + maxRows;
  if (start >= total) start = Math.max(0, total - 1);
  return { start, end: Math.max(start, end) };
}

/**
 * The scrollTop that brings row `pos` fully into view, moving as little as possible.
 */
export function scrollToReveal(pos, scrollTop, viewportHeight, rowHeight) {
  const top = pos * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewportHeight) return Math.max(0, bottom - viewportHeight);
  return scrollTop;
}

/**
 * Where the keyboard cursor goes for a key, as a position in the shown (filtered, sorted) rows.
 * Returns -1 when there are no rows, and `pos` unchanged for keys it does not handle.
 * @param {number} pos current position, -1 when none
 * @param {string} key KeyboardEvent.key
 * @param {number} total rows shown
 * @param {number} pageRows rows per page (PageUp/PageDown)
 */
export function moveCursor(pos, key, total, pageRows = 10) {
  if (total <= 0) return -1;
  const clamp = (p) => Math.min(total - 1, Math.max(0, p));
  switch (key) {
    case "ArrowDown":
      return pos < 0 ? 0 : clamp(pos + 1);
    case "ArrowUp":
      return pos < 0 ? 0 : clamp(pos - 1);
    case "PageDown":
      return clamp((pos < 0 ? 0 : pos) + pageRows);
    case "PageUp":
      return clamp((pos < 0 ? 0 : pos) - pageRows);
    case "Home":
      return 0;
    case "End":
      return total - 1;
    default:
      return pos;
  }
}

/**
 * Position of catalog row `row` among the shown rows, or -1.
 * @param {Int32Array} order
 * @param {number} row
 */
export function positionOf(order, row) {
  if (row < 0) return -1;
  for (let i = 0; i < order.length; i++) if (order[i] === row) return i;
  return -1;
}

/**
 * A log10 scale over the positive, finite values of `values` at `rows`, mapped to [r0, r1].
 * @returns {{scale: (v: number) => number, lo: number, hi: number} | null} null with no data
 */
export function logScale(values, rows, r0, r1) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const i of rows) {
    const v = values[i];
    if (v > 0 && Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) return null;
  let a = Math.log10(lo);
  let b = Math.log10(hi);
  if (a === b) {
    a -= 0.5;
    b += 0.5;
  }
  const pad = (b - a) * 0.04;
  a -= pad;
  b += pad;
  return { scale: (v) => r0 + ((Math.log10(v) - a) / (b - a)) * (r1 - r0), lo: 10 ** a, hi: 10 ** b };
}

/** A linear scale like logScale, padded by 4 %. */
export function linearScale(values, rows, r0, r1) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const i of rows) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) return null;
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.04;
  const a = lo - pad;
  const b = hi + pad;
  return { scale: (v) => r0 + ((v - a) / (b - a)) * (r1 - r0), lo: a, hi: b };
}

/** Powers of ten (1, 10, 100, ...) inside [lo, hi]: the log axis' tick marks. */
export function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) ticks.push(10 ** e);
  if (ticks.length < 2) {
    // a narrow range: add 2x and 5x marks so the axis is still readable
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo && v <= hi) ticks.push(v);
      }
    }
    ticks.sort((x, y) => x - y);
  }
  return ticks;
}

/** About `count` round ticks for a linear axis over [lo, hi]. */
export function linearTicks(lo, hi, count = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

/**
 * The index (into `points`) of the point nearest to (x, y) within `radius`, or -1.
 * @param {Float32Array} xs
 * @param {Float32Array} ys
 * @param {number} count how many of xs/ys are used
 */
export function nearestPoint(xs, ys, count, x, y, radius) {
  let best = -1;
  let bestD = radius * radius;
  for (let i = 0; i < count; i++) {
    const dx = xs[i] - x;
    const dy = ys[i] - y;
    const d = dx * dx + dy * dy;
    if (d <= bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** A number for a table cell: "" for NaN, thousands separators for large speeds. */
export function formatNumber(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return "";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return v.toFixed(digits);
}

/**
 * Distinct values of a string column with their counts, most common first (for the selects).
 * @returns {Array<[string, number]>}
 */
export function valueCounts(values) {
  const counts = new Map();
  for (const v of values) {
    if (v === null || v === undefined || v === "") continue;
    counts.set(v, (counts.get(v) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || collator.compare(a[0], b[0]));
}
