// The ModelBrowser's details pane for one catalog row (DOM; the text rules are in
// js/lib/availability.js). Every model-supplied string goes in through textContent.
import { weightsText } from "../lib/availability.js";
import { formatNumber } from "../lib/table.js";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtTriple(col, i) {
  if (!col) return "";
  const v = [col[3 * i], col[3 * i + 1], col[3 * i + 2]];
  return v.some(Number.isNaN) ? "" : v.map((x) => x.toFixed(3)).join(", ");
}

/**
 * Fill `details` for catalog row `i` (or the empty state when i < 0).
 * @param {HTMLElement} details
 * @param {{cols: Record<string, any>, i: number, hidden: boolean, kind: string, hubDetail: string,
 *   scores: ReturnType<typeof import("../lib/scores.js").scoreDetails>}} ctx
 */
export function drawDetails(details, { cols, i, hidden, kind, hubDetail, scores }) {
  details.replaceChildren();
  if (i < 0) {
    details.appendChild(el("h4", "", "No model selected"));
    details.appendChild(el("div", "tlw-mb-hint", "Click a row or a dot, or use the arrow keys and Enter in the table."));
    return;
  }
  details.appendChild(el("h4", "", cols.name[i]));
  if (hidden) details.appendChild(el("div", "tlw-mb-warn", "Hidden by the current filters."));
  if (scores) details.appendChild(drawScores(scores));
  const dl = el("dl");
  const num = (key, digits, unit = "") => {
    const v = cols[key] ? cols[key][i] : NaN;
    return Number.isNaN(v) ? "unknown" : `${formatNumber(v, digits)}${unit}`;
  };
  const str = (key) => (cols[key] && cols[key][i]) || "unknown";
  const add = (term, value, cls) => {
    dl.appendChild(el("dt", "", term));
    const dd = el("dd", cls || "", value);
    dl.appendChild(dd);
    return dd;
  };
  add("Architecture", `${str("architecture")}${cols.tag[i] ? `  ·  tag ${cols.tag[i]}` : ""}`);
  add("Family", str("family"));
  add("Pretrained on", str("pretrain"));
  add("Parameters", `${num("params_m", 2, " M")}   ·   ${num("gmacs", 2, " GMACs")}`);
  add("Input size", `${num("img_size", 0, " px")}   ·   crop ${num("crop_pct", 3)}   ·   ${str("interpolation")}`);
  add("Mean", fmtTriple(cols.mean, i) || "unknown");
  add("Std", fmtTriple(cols.std, i) || "unknown");
  add("Top-1 / top-5", `${num("top1", 2, " %")}  /  ${num("top5", 2, " %")}`);
  add("Speed", `GPU ${num("gpu_img_s", 0, " img/s")}   ·   CPU ${num("cpu_img_s", 1, " img/s")}`);
  const nc = cols.noncommercial && cols.noncommercial[i];
  add("Licence", `${str("license")}${nc ? " — non-commercial only" : ""}`, nc ? "tlw-mb-warn" : "");
  add("Papers", (cols.paper_ids && cols.paper_ids[i]) || "none listed in timm's cfg");
  const w = weightsText(kind, cols.name[i], hubDetail);
  const dd = add("Weights", w.text, w.cls);
  dd.classList.add("tlw-mb-weights");
  dd.dataset.availability = kind;
  if (w.waysOut.length) {
    const ways = el("ul", "tlw-mb-ways");
    ways.setAttribute("aria-label", "Ways out");
    for (const text of w.waysOut) ways.appendChild(el("li", "", text));
    dd.appendChild(el("div", "tlw-mb-hint", "Ways out:"));
    dd.appendChild(ways);
  }
  add("HF Hub id", str("hf_hub_id"));
  if (cols.num_classes && !Number.isNaN(cols.num_classes[i])) add("Classes (pretrained head)", num("num_classes", 0));
  details.appendChild(dl);
}

/** The "On your data" section of a ranked model: rank, scores with one sentence each, the
 * ImageNet-similarity card, or why it could not be scored. */
function drawScores(scores) {
  const box = el("section", "tlw-mb-scores");
  box.setAttribute("aria-label", "Scores on your data");
  box.appendChild(el("div", "tlw-mb-scores-rank", `Rank ${scores.rank}`));
  if (scores.error) box.appendChild(el("div", "tlw-mb-warn tlw-mb-scores-error", scores.error));
  const dl = el("dl");
  for (const line of scores.lines) {
    dl.appendChild(el("dt", "", line.term));
    const dd = el("dd", "", line.value);
    dd.dataset.score = line.term;
    if (line.explain) dd.appendChild(el("div", "tlw-mb-hint", line.explain));
    dl.appendChild(dd);
  }
  box.appendChild(dl);
  if (scores.card) {
    const card = el("div", "tlw-mb-similarity");
    card.appendChild(el("div", "tlw-mb-similarity-looks", scores.card.looks));
    card.appendChild(
      el("div", "", `Mean max-softmax ${scores.card.maxProb} · normalised entropy ${scores.card.entropy}`),
    );
    if (scores.card.explain) card.appendChild(el("div", "tlw-mb-hint", scores.card.explain));
    box.appendChild(card);
  }
  return box;
}
