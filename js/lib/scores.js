// DOM-free part of the ModelBrowser's "Rank on my data": merging the kernel's `_scores`
// payload (tlwidgets/widgets/_browser_scores.py, encode_scores) into the catalog's columns,
// the cell texts of the score columns, and the details pane's lines. Unit-tested in
// scores.test.js (`node --test js/lib/`).
import { decodePayload, formatNumber } from "./table.js";

/** The score columns the table shows once a ranking arrived (after the Model column). */
export const SCORE_COLUMNS = [
  { key: "score_rank", sortKey: "score_order", label: "Rank", num: true, digits: 0, cls: "tlw-mb-score",
    title: "Rank on your data (1 = best); failed candidates say why in their tooltip" },
  { key: "logme", label: "LogME", num: true, digits: 3,
    title: "LogME on your data: how well a linear classifier on the frozen features explains your labels (higher is better)" },
  { key: "knn_pct", label: "k-NN %", num: true, digits: 1,
    title: "Leave-one-out 5-nearest-neighbour accuracy on your images, %" },
];

function emptyLike(col, count) {
  if (ArrayBuffer.isView(col)) {
    const out = new col.constructor(count);
    if (col instanceof Float32Array || col instanceof Float64Array) out.fill(NaN);
    return out;
  }
  return new Array(count).fill(null);
}

function concat(a, b) {
  if (ArrayBuffer.isView(a)) {
    const out = new a.constructor(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  }
  return a.concat(Array.from(b));
}

/**
 * The catalog's columns with a ranking merged in: the extra rows (candidates that are not
 * catalog rows) appended to every column, and each score column spread over all rows (NaN or
 * null where a row was not ranked). `base` is never changed, so a second ranking starts from
 * the plain catalog again. Without a payload (or with an empty one) `base` comes back as is.
 * @param {{n: number, cols: Object<string, any>}} base decoded catalog
 * @param {any} payload the kernel's `_scores`
 * @returns {{n: number, cols: Object<string, any>, ranked: boolean, order: Int32Array}}
 *   order: the ranked rows in rank order (failures last)
 */
export function mergeScores(base, payload) {
  if (!payload || !payload.n) return { n: base.n, cols: base.cols, ranked: false, order: new Int32Array(0) };
  const extra = payload.extra && payload.extra.n ? decodePayload(payload.extra) : { n: 0, cols: {} };
  const n = base.n + extra.n;
  const cols = {};
  for (const [key, col] of Object.entries(base.cols)) {
    const width = base.n ? Math.round(col.length / base.n) : 1;
    const add = extra.cols[key];
    cols[key] = concat(col, add && add.length === extra.n * width ? add : emptyLike(col, extra.n * width));
  }
  for (const [key, add] of Object.entries(extra.cols)) {
    if (!(key in cols)) cols[key] = concat(emptyLike(add, base.n * Math.round(add.length / extra.n)), add);
  }
  const scores = decodePayload({ n: payload.n, columns: payload.columns });
  const index = payload.index;
  for (const [key, values] of Object.entries(scores.cols)) {
    const out = ArrayBuffer.isView(values) ? new Float32Array(n).fill(NaN) : new Array(n).fill(null);
    for (let j = 0; j < payload.n; j++) out[index[j]] = values[j];
    cols[key] = out;
  }
  return { n, cols, ranked: true, order: Int32Array.from(index) };
}

/** The columns the table shows with a ranking: the score columns after the model's name, and
 * Family and GPU/s left out (they stay in the details pane), so the table keeps its width. */
export function rankedColumns(columns) {
  const keep = columns.filter((c) => c.key !== "family" && c.key !== "gpu_img_s");
  return [keep[0], ...SCORE_COLUMNS, ...keep.slice(1)];
}

/**
 * The rows in rank order: the ranked ones by `score_order` (`dir` "desc" reverses them), then
 * every other row in the catalog's recommended order (`rank`), whichever the direction.
 * @returns {Int32Array}
 */
export function rankOrder(cols, n, dir = "asc") {
  const order = cols.score_order;
  const rec = cols.rank;
  const sign = dir === "desc" ? -1 : 1;
  const rows = Array.from({ length: n }, (_, i) => i);
  rows.sort((a, b) => {
    const x = order ? order[a] : NaN;
    const y = order ? order[b] : NaN;
    const xn = Number.isNaN(x);
    const yn = Number.isNaN(y);
    if (!xn && !yn) return (x - y) * sign;
    if (xn !== yn) return xn ? 1 : -1;
    const u = rec ? rec[a] : NaN;
    const v = rec ? rec[b] : NaN;
    if (Number.isNaN(u) || Number.isNaN(v)) return Number.isNaN(u) === Number.isNaN(v) ? a - b : Number.isNaN(u) ? 1 : -1;
    return u - v || a - b;
  });
  return Int32Array.from(rows);
}

/** What the Rank cell shows: the rank, "failed" (reason in the tooltip), "–" when the ranking
 * was cancelled before it (the narrow cell cut "cancelled"; the tooltip says it), or "" when
 * unranked. */
export function rankCell(cols, i) {
  const rank = cols.score_rank ? cols.score_rank[i] : NaN;
  const error = cols.rank_error ? cols.rank_error[i] : null;
  if (!Number.isNaN(rank)) return { text: formatNumber(rank, 0), title: "" };
  if (error === "cancelled") return { text: "–", title: "not scored: the ranking was cancelled" };
  if (error) return { text: "failed", title: error };
  return { text: "", title: "" };
}

/**
 * The details pane's "On your data" lines for row `i`, or null when it was not ranked.
 * @returns {null | {rank: string, lines: Array<{term: string, value: string, explain?: string}>,
 *   error: string, card: null | {looks: string, maxProb: string, entropy: string}}}
 */
export function scoreDetails(cols, i, payload) {
  const order = cols.score_order ? cols.score_order[i] : NaN;
  if (!payload || Number.isNaN(order)) return null;
  const explain = payload.explain || {};
  const by = payload.by === "knn_accuracy" ? "k-NN accuracy" : "LogME";
  const rank = cols.score_rank[i];
  const error = (cols.rank_error && cols.rank_error[i]) || "";
  const num = (key, digits, unit = "") => {
    const v = cols[key] ? cols[key][i] : NaN;
    return Number.isNaN(v) ? "unknown" : `${formatNumber(v, digits)}${unit}`;
  };
  const lines = [];
  if (!error) {
    lines.push({ term: "LogME", value: num("logme", 3), explain: explain.logme });
    lines.push({ term: "k-NN accuracy", value: num("knn_pct", 1, " %"), explain: explain.knn_accuracy });
    lines.push({ term: "ImageNet top-1", value: num("top1", 2, " %"), explain: explain.top1 });
    lines.push({
      term: "Features",
      value: `${num("feature_dim", 0)} numbers per image · ${num("n_images", 0)} images · ${num("rank_seconds", 1, " s")}`,
    });
  }
  let card = null;
  const sim = payload.similarity && payload.similarity[cols.name[i]];
  if (sim) {
    const looks = (sim.looks_like || [])
      .slice(0, 5)
      .map((c) => `${c.imagenet_class} (${Math.round(100 * c.share)}%)`)
      .join(", ");
    card = {
      looks: `Your images look most like: ${looks}`,
      maxProb: formatNumber(sim.mean_max_prob, 2),
      entropy: formatNumber(sim.normalised_entropy, 2),
      explain: explain.similarity || "",
    };
  }
  const total = payload.n;
  const rankText = Number.isNaN(rank)
    ? error === "cancelled" ? "not scored: the ranking was cancelled" : "could not be scored"
    : `${formatNumber(rank, 0)} of ${total} on your data (by ${by})`;
  return { rank: rankText, lines, error, card };
}
