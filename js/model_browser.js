// ModelBrowser view: the timm catalog as one virtual-scrolled table, filters, a details pane and
// a top-1 scatter.
// Kernel -> page: `_catalog` (sent once: columnar, numbers as binary buffers, with a `rank`
// column and `order_note`: the order it opens in and why), `selected`, and `hub` / `hub_detail`
// (whether models without offline weights can be created now; rows that cannot say so);
// `ranking` (the "Rank on my data" state and progress) and `_scores` (a finished ranking: score
// columns for the ranked rows and rows for candidates that are not catalog rows, merged into
// the columns by js/lib/scores.js; the table then shows Rank/LogME/k-NN and sorts by rank).
// Page -> kernel: `selected` (a click, Enter, or a click on a dot), and the messages
// {cmd: "rank"} / {cmd: "cancel"} from the ranking bar.
// Every model-supplied string reaches the page through textContent / fillText / title, never as
// HTML, so a name like `<img src=x onerror=...>` is shown literally.
// Timings (first render, each filter) go to window.__tlwTimings.model_browser for the browser
// tests and benchmarks to read.
import {
  completeColumns,
  decodePayload,
  emptyFilters,
  filterRows,
  filtersAreEmpty,
  formatNumber,
  moveCursor,
  nextSort,
  positionOf,
  scrollToReveal,
  searchIndex,
  sortRows,
  valueCounts,
  visibleWindow,
} from "./lib/table.js";
import { availability, offlineCellText, orderText } from "./lib/availability.js";
import { mergeScores, rankCell, rankOrder, rankedColumns, scoreDetails } from "./lib/scores.js";
import { drawDetails as fillDetails } from "./model_browser/details.js";
import { createRankBar } from "./model_browser/ranking.js";
import { X_AXES, createScatter } from "./model_browser/scatter.js";
import { mountModalities } from "./model_browser/text.js";

const ROW_H = 26; // must match --tlw-mb-row-h in model_browser.css
const VIEW_ROWS = 13; // the viewport's height in rows (css: calc(row-h * 13))
const OVERSCAN = 8;
const MAX_ROWS = 100;

const COLUMNS = [
  { key: "name", label: "Model", title: "timm name (architecture.tag)", cls: "tlw-name" },
  { key: "family", label: "Family", title: "Model family", dim: true },
  { key: "pretrain", label: "Pretrain", title: "Pretraining data", dim: true },
  { key: "params_m", label: "Params", title: "Parameters, millions", num: true, digits: 1 },
  { key: "gmacs", label: "GMACs", title: "Multiply-accumulates per image, billions", num: true, digits: 1 },
  { key: "img_size", label: "Size", title: "Input size, pixels", num: true, digits: 0 },
  { key: "top1", label: "Top-1", title: "ImageNet top-1 accuracy, %", num: true, digits: 2 },
  { key: "gpu_img_s", label: "GPU/s", title: "GPU inference, images per second", num: true, digits: 0 },
  { key: "cpu_img_s", label: "CPU/s", title: "CPU inference, images per second", num: true, digits: 1 },
  { key: "license", label: "Licence", title: "Licence of the weights", dim: true },
  { key: "cached", label: "Offline", title: "Weights on this machine (✓), or “no hub”: not here and the Hugging Face Hub cannot be reached", bool: true },
];

let viewCounter = 0;

function recordTiming(entry) {
  const store = (window.__tlwTimings = window.__tlwTimings || {});
  (store.model_browser = store.model_browser || []).push(entry);
}

function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("aria-") || k === "role" || k === "for" || k === "tabindex") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.appendChild(c);
  return node;
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const t0 = performance.now();
  const viewId = ++viewCounter;
  const payload = model.get("_catalog");
  const base = decodePayload(payload);
  const orderNote = payload.order_note || "";
  // a filter over a column the catalog does not have is not offered
  const present = new Set(Object.keys(base.cols));
  completeColumns(base);
  // the shown columns: the catalog's, with a ranking's merged in (one object: the scatter keeps it)
  const cols = {};
  let n = 0;
  let ranked = false;
  let columns = COLUMNS;
  let index = null;
  const rowOf = new Map();
  function mergeRanking() {
    const merged = mergeScores(base, model.get("_scores"));
    for (const key of Object.keys(cols)) delete cols[key];
    Object.assign(cols, merged.cols);
    n = merged.n;
    ranked = merged.ranked;
    columns = ranked ? rankedColumns(COLUMNS) : COLUMNS;
    index = searchIndex(cols, n);
    rowOf.clear();
    for (let i = 0; i < n; i++) rowOf.set(cols.name[i], i);
  }
  mergeRanking();

  let filters = emptyFilters();
  // the recommended order (the kernel's `rank`: offline first, then light models by top-1)
  const recommended = cols.rank ? { key: "rank", dir: "asc" } : { key: "name", dir: "asc" };
  const byRank = { key: "score_order", dir: "asc" };
  let sort = ranked ? byRank : recommended;
  let hub = model.get("hub") || "unknown";
  let hubDetail = model.get("hub_detail") || "";
  const offlineCount = base.cols.cached ? base.cols.cached.reduce((a, v) => a + (v ? 1 : 0), 0) : 0;
  let order = new Int32Array(0); // shown rows (catalog indices), filtered and sorted
  let cursor = -1; // position in `order` of the keyboard cursor
  let selectedRow = -1; // catalog index of `selected`
  let xAxis = cols.gpu_img_s ? "gpu_img_s" : "params_m";

  // ---- DOM ----------------------------------------------------------------------------------
  const root = h("div", { class: "tlw-mb" });
  root.dataset.view = String(viewId);

  const search = h("input", {
    class: "tlw-mb-search",
    type: "search",
    placeholder: "Search name or family — wildcards: resnet*, *in21k*",
    "aria-label": "Search models",
  });
  search.spellcheck = false;
  search.autocomplete = "off";
  const count = h("span", { class: "tlw-mb-count", role: "status", "aria-live": "polite" });
  const clear = h("button", { type: "button", text: "Clear filters" });
  // "Rank on my data" sits in the toolbar: without data it is one disabled button, no extra line
  const rankBar = createRankBar(model);
  root.appendChild(h("div", { class: "tlw-mb-toolbar" }, [search, count, clear, rankBar.el]));

  function select(label, values, allLabel, format = String) {
    const s = h("select", { "aria-label": label });
    s.appendChild(h("option", { value: "", text: allLabel }));
    for (const [v, c] of values) s.appendChild(h("option", { value: String(v), text: `${format(v)} (${c})` }));
    return s;
  }
  const familySel = select("Family", valueCounts(cols.family), "All families");
  const pretrainSel = select("Pretrained on", valueCounts(cols.pretrain), "Any pretraining");
  const licenseSel = select("Licence", valueCounts(cols.license), "Any licence");
  const sizes = new Map();
  if (cols.img_size) for (const v of cols.img_size) if (!Number.isNaN(v)) sizes.set(v, (sizes.get(v) || 0) + 1);
  const sizeSel = select("Input size", [...sizes.entries()].sort((a, b) => a[0] - b[0]), "Any input size", (v) => `${v} px`);
  const commercial = h("input", { type: "checkbox" });
  const offline = h("input", { type: "checkbox" });
  const pMin = h("input", { type: "number", min: "0", step: "any", placeholder: "min", "aria-label": "Minimum parameters (millions)" });
  const pMax = h("input", { type: "number", min: "0", step: "any", placeholder: "max", "aria-label": "Maximum parameters (millions)" });
  const labelled = (text, ...controls) => h("label", {}, [...controls, document.createTextNode(text)]);
  root.appendChild(
    h(
      "div",
      { class: "tlw-mb-filters" },
      [
        ["family", familySel],
        ["pretrain", pretrainSel],
        ["license", licenseSel],
        ["noncommercial", labelled("commercial use allowed", commercial)],
        ["params_m", h("label", {}, [document.createTextNode("Params (M)"), pMin, document.createTextNode("–"), pMax])],
        ["img_size", sizeSel],
        ["cached", labelled("available offline", offline)],
      ]
        .filter(([key]) => present.has(key))
        .map(([, control]) => control),
    ),
  );
  const note = h("div", { class: "tlw-mb-note", role: "status" });
  root.appendChild(note);
  // why the rows are in this order (and what "no hub" means), with a way back to it
  const orderLine = h("span", { class: "tlw-mb-order-text" });
  const hubLine = h("div", { class: "tlw-mb-hub", role: "status" });
  const resetOrder = h("button", { type: "button", class: "tlw-mb-reset-order", text: "Recommended order" });
  root.appendChild(h("div", { class: "tlw-mb-order" }, [h("div", {}, [orderLine, resetOrder]), hubLine]));

  // table
  const head = h("div", { class: "tlw-mb-head", role: "row" });
  const headButtons = new Map();
  function makeHead() {
    head.replaceChildren();
    headButtons.clear();
    for (const c of columns) {
      const b = h("button", { type: "button", class: `${c.num ? "tlw-num" : ""} tlw-mb-c-${c.key}`, role: "columnheader" });
      b.dataset.key = c.sortKey || c.key;
      b.title = `${c.title} (click to sort)`;
      headButtons.set(c.key, b);
      head.appendChild(b);
    }
    root.classList.toggle("has-scores", ranked);
  }
  const spacer = h("div", { class: "tlw-mb-spacer" });
  const empty = h("div", { class: "tlw-mb-empty", text: "No model matches these filters." });
  const viewport = h("div", {
    class: "tlw-mb-viewport",
    tabindex: "0",
    role: "listbox",
    "aria-label": "Models (arrow keys move, Enter selects)",
  });
  viewport.appendChild(spacer);
  const table = h("div", { class: "tlw-mb-table" }, [h("div", { class: "tlw-mb-inner" }, [head, viewport])]);
  root.appendChild(table);
  makeHead();

  // details and scatter
  const details = h("div", { class: "tlw-mb-details", "aria-live": "polite" });
  const xSel = h("select", { "aria-label": "Scatter x axis" });
  for (const [k, a] of Object.entries(X_AXES)) {
    if (cols[k]) xSel.appendChild(h("option", { value: k, text: a.label.replace(", log", "") }));
  }
  xSel.value = xAxis;
  const canvas = h("canvas", { tabindex: "-1" });
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Top-1 accuracy against speed or size; click a dot to select");
  const caption = h("div", { class: "tlw-mb-plot-caption" });
  const plot = h("div", { class: "tlw-mb-plot" }, [
    h("div", { class: "tlw-mb-plot-bar" }, [h("span", { text: "Top-1 vs" }), xSel]),
    canvas,
    caption,
  ]);
  root.appendChild(h("div", { class: "tlw-mb-lower" }, [details, plot]));
  el.appendChild(root);
  const disposeText = mountModalities({ model, root }); // Images | Text (model_browser/text.js)

  // ---- rows ---------------------------------------------------------------------------------
  const pool = []; // row elements currently in the DOM, in window order
  function makeRow() {
    const row = h("div", { class: "tlw-mb-row", role: "option" });
    for (const c of columns) {
      const cell = h("div", { class: `tlw-mb-cell tlw-mb-c-${c.key} ${c.num ? "tlw-num" : ""} ${c.cls || ""} ${c.dim ? "tlw-mb-dim" : ""}` });
      row.appendChild(cell);
    }
    row._idx = -1;
    return row;
  }
  function fillRow(row, idx) {
    row._idx = idx;
    row.id = `tlw-mb-${viewId}-r${idx}`;
    const cells = row.children;
    for (let j = 0; j < columns.length; j++) {
      const c = columns[j];
      const col = cols[c.key];
      let text = "";
      if (c.key === "score_rank") {
        const cell = rankCell(cols, idx);
        text = cell.text;
        cells[j].title = cell.title;
      } else if (col) {
        if (c.key === "cached") text = offlineCellText(availability(col[idx], hub));
        else if (c.bool) text = col[idx] ? "✓" : "";
        else if (c.num) text = formatNumber(col[idx], c.digits);
        else text = col[idx] ?? "";
      }
      cells[j].textContent = text;
    }
    const kind = availability(cols.cached ? cols.cached[idx] : 0, hub);
    row.classList.toggle("is-unavailable", kind === "needs-hub");
    row.title =
      kind === "needs-hub"
        ? `${cols.name[idx]}: cannot be created with pretrained weights now (not on this machine, no Hugging Face Hub). Select it for the ways out.`
        : cols.name[idx];
  }

  function drawRows() {
    const total = order.length;
    spacer.style.height = `${total * ROW_H}px`;
    if (total === 0) {
      if (!empty.isConnected) viewport.appendChild(empty);
    } else if (empty.isConnected) empty.remove();
    const viewH = viewport.clientHeight || VIEW_ROWS * ROW_H;
    const { start, end } = visibleWindow(viewport.scrollTop, viewH, ROW_H, total, OVERSCAN, MAX_ROWS);
    const need = end - start;
    while (pool.length < need) {
      const row = makeRow();
      pool.push(row);
      spacer.appendChild(row);
    }
    while (pool.length > need) pool.pop().remove();
    for (let k = 0; k < need; k++) {
      const pos = start + k;
      const idx = order[pos];
      const row = pool[k];
      if (row._idx !== idx) fillRow(row, idx);
      row.style.transform = `translateY(${pos * ROW_H}px)`;
      row._pos = pos;
      const isSel = idx === selectedRow;
      row.classList.toggle("is-selected", isSel);
      row.classList.toggle("is-cursor", pos === cursor);
      row.setAttribute("aria-selected", isSel ? "true" : "false");
    }
    if (cursor >= 0 && cursor < total) viewport.setAttribute("aria-activedescendant", `tlw-mb-${viewId}-r${order[cursor]}`);
    else viewport.removeAttribute("aria-activedescendant");
  }

  function drawOrder() {
    const label = (columns.find((c) => (c.sortKey || c.key) === sort.key) || { label: sort.key }).label;
    const t = orderText(sort, orderNote, label, hub, offlineCount);
    orderLine.textContent =
      sort.key === byRank.key && sort.dir === "asc"
        ? "Sorted by the ranking on your data (1 = best); the models not ranked follow in the recommended order."
        : t.order;
    resetOrder.hidden = sort.key === recommended.key || !cols.rank;
    hubLine.textContent = t.hub;
  }

  function drawHead() {
    drawOrder();
    for (const c of columns) {
      const b = headButtons.get(c.key);
      b.textContent = c.label;
      if (sort.key === (c.sortKey || c.key)) {
        b.appendChild(h("span", { class: "tlw-mb-arrow", text: sort.dir === "asc" ? "▲" : "▼" }));
        b.setAttribute("aria-sort", sort.dir === "asc" ? "ascending" : "descending");
      } else b.setAttribute("aria-sort", "none");
    }
  }

  function drawCount() {
    count.replaceChildren(
      h("span", { class: "tlw-mb-count-n", text: order.length.toLocaleString("en-US") }),
      document.createTextNode(` of ${n.toLocaleString("en-US")} models`),
    );
  }

  // ---- details ------------------------------------------------------------------------------
  function drawDetails() {
    const i = selectedRow;
    fillDetails(details, {
      cols,
      i,
      hidden: i >= 0 && positionOf(order, i) < 0,
      kind: i >= 0 ? availability(cols.cached ? cols.cached[i] : 0, hub) : "download",
      hubDetail,
      scores: i >= 0 ? scoreDetails(cols, i, model.get("_scores")) : null,
    });
  }

  // ---- scatter ------------------------------------------------------------------------------
  const scatter = createScatter(canvas, caption, root, cols);
  function drawPlot() {
    scatter.draw(order, xAxis, selectedRow);
  }

  // ---- state changes ------------------------------------------------------------------------
  // all rows in the current sort order; a filter change only walks it (see filterRows)
  let sortedAll = null;
  // Where the last refresh spent its time (ms), reported with each timing entry.
  const phases = { filter: 0, table: 0, plot: 0 };
  function refresh() {
    let t = performance.now();
    if (!sortedAll) {
      sortedAll =
        sort.key === byRank.key
          ? rankOrder(cols, n, sort.dir)
          : sortRows(Int32Array.from({ length: n }, (_, i) => i), cols, sort.key, sort.dir);
    }
    order = filterRows(cols, n, filters, index, sortedAll);
    const selPos = positionOf(order, selectedRow);
    if (cursor >= order.length || cursor < 0) cursor = selPos;
    phases.filter = performance.now() - t;
    t = performance.now();
    drawHead();
    drawCount();
    drawRows();
    drawDetails();
    phases.table = performance.now() - t;
    t = performance.now();
    drawPlot();
    phases.plot = performance.now() - t;
  }

  // Re-runs the filter and forces layout, so the figure includes the browser's style and layout
  // work for the new rows, not only the script.
  function timedRefresh(kind, extra = {}) {
    const t = performance.now();
    refresh();
    void viewport.offsetHeight;
    const ms = performance.now() - t;
    recordTiming({ view: viewId, kind, ms, ...phases, shown: order.length, rowsInDom: pool.length, ...extra });
    root.dataset.lastFilterMs = ms.toFixed(2);
    return ms;
  }

  function reveal(pos) {
    const viewH = viewport.clientHeight || VIEW_ROWS * ROW_H;
    const top = scrollToReveal(pos, viewport.scrollTop, viewH, ROW_H);
    if (top !== viewport.scrollTop) viewport.scrollTop = top;
  }

  function setSelected(row) {
    if (row < 0) return;
    const name = cols.name[row];
    selectedRow = row;
    if (model.get("selected") !== name) {
      model.set("selected", name);
      model.save_changes();
    }
    drawRows();
    drawDetails();
    drawPlot();
  }

  function resetControls() {
    filters = emptyFilters();
    search.value = "";
    familySel.value = pretrainSel.value = licenseSel.value = sizeSel.value = "";
    commercial.checked = offline.checked = false;
    pMin.value = pMax.value = "";
  }

  function onKernelSelected() {
    const name = model.get("selected") || "";
    const row = rowOf.has(name) ? rowOf.get(name) : -1;
    note.textContent = "";
    selectedRow = row;
    if (row < 0) {
      refresh();
      return;
    }
    if (positionOf(order, row) < 0 && !filtersAreEmpty(filters)) {
      resetControls();
      note.textContent = `Filters cleared to show ${name}.`;
    }
    // refresh first: the spacer must have the new list's height before scrollTop can reach the row
    refresh();
    cursor = positionOf(order, row);
    if (cursor >= 0) reveal(cursor);
    drawRows();
  }

  // ---- events -------------------------------------------------------------------------------
  const readFilters = () => {
    filters = {
      query: search.value,
      family: familySel.value,
      pretrain: pretrainSel.value,
      license: licenseSel.value,
      commercial: commercial.checked,
      paramsMin: pMin.value === "" ? NaN : Number(pMin.value),
      paramsMax: pMax.value === "" ? NaN : Number(pMax.value),
      imgSize: sizeSel.value === "" ? NaN : Number(sizeSel.value),
      offline: offline.checked,
    };
  };
  const onFilter = (kind) => () => {
    readFilters();
    note.textContent = "";
    cursor = -1;
    viewport.scrollTop = 0;
    timedRefresh(kind, kind === "search" ? { query: search.value } : {});
  };
  search.addEventListener("input", onFilter("search"));
  for (const c of [familySel, pretrainSel, licenseSel, sizeSel, commercial, offline]) c.addEventListener("change", onFilter("filter"));
  for (const c of [pMin, pMax]) c.addEventListener("input", onFilter("filter"));
  clear.addEventListener("click", () => {
    resetControls();
    note.textContent = "";
    timedRefresh("filter");
    if (selectedRow >= 0) {
      cursor = positionOf(order, selectedRow);
      reveal(cursor);
      drawRows();
    }
  });

  resetOrder.addEventListener("click", () => {
    sort = recommended;
    sortedAll = null;
    const keep = cursor >= 0 ? order[cursor] : selectedRow;
    timedRefresh("sort", { key: sort.key, dir: sort.dir });
    cursor = positionOf(order, keep);
    if (cursor >= 0) reveal(cursor);
    drawRows();
  });

  head.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-key]");
    if (!b) return;
    sort = nextSort(sort, b.dataset.key);
    sortedAll = null;
    const keep = cursor >= 0 ? order[cursor] : selectedRow;
    timedRefresh("sort", { key: sort.key, dir: sort.dir });
    cursor = positionOf(order, keep);
    if (cursor >= 0) reveal(cursor);
    drawRows();
  });

  viewport.addEventListener("scroll", () => drawRows(), { passive: true });
  viewport.addEventListener("click", (ev) => {
    const row = ev.target.closest(".tlw-mb-row");
    if (!row) return;
    cursor = row._pos;
    viewport.focus({ preventScroll: true });
    setSelected(row._idx);
  });
  viewport.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      if (cursor >= 0 && cursor < order.length) setSelected(order[cursor]);
      ev.preventDefault();
      return;
    }
    const pageRows = Math.max(1, Math.floor((viewport.clientHeight || VIEW_ROWS * ROW_H) / ROW_H) - 1);
    const next = moveCursor(cursor, ev.key, order.length, pageRows);
    if (next === cursor && !["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"].includes(ev.key)) return;
    ev.preventDefault();
    cursor = next;
    if (cursor >= 0) reveal(cursor);
    drawRows();
  });

  xSel.addEventListener("change", () => {
    xAxis = xSel.value;
    drawPlot();
  });
  const plotPoint = (ev) => scatter.rowAt(ev.clientX, ev.clientY);
  canvas.addEventListener("click", (ev) => {
    const row = plotPoint(ev);
    if (row < 0) return;
    cursor = positionOf(order, row);
    if (cursor >= 0) reveal(cursor);
    setSelected(row);
  });
  canvas.addEventListener("mousemove", (ev) => {
    const row = plotPoint(ev);
    const title = row < 0 ? "" : `${cols.name[row]}  (top-1 ${formatNumber(cols.top1[row], 2)})`;
    if (canvas.title !== title) canvas.title = title;
  });
  // For tests and scripted demos: where a model's dot is, in client coordinates.
  canvas.tlwPointOf = (name) => scatter.pointOf(rowOf.has(name) ? rowOf.get(name) : -1);

  model.on("change:selected", onKernelSelected);
  function onHub() {
    hub = model.get("hub") || "unknown";
    hubDetail = model.get("hub_detail") || "";
    for (const row of pool) row._idx = -1; // refill: the Offline cells and row titles change
    drawOrder();
    drawRows();
    drawDetails();
  }
  model.on("change:hub", onHub);
  model.on("change:hub_detail", onHub);
  function onScores() {
    // a ranking arrived: new columns (and maybe rows), sorted by rank from the top
    const name = selectedRow >= 0 ? cols.name[selectedRow] : model.get("selected") || "";
    mergeRanking();
    for (const row of pool) row.remove();
    pool.length = 0;
    makeHead();
    sort = ranked ? byRank : recommended;
    sortedAll = null;
    selectedRow = rowOf.has(name) ? rowOf.get(name) : -1;
    cursor = -1;
    viewport.scrollTop = 0;
    timedRefresh("ranked", { ranked: ranked ? model.get("_scores").n : 0 });
  }
  model.on("change:_scores", onScores);
  // JupyterLab switches themes by swapping CSS variables; the canvas must repaint to follow.
  const themeWatch = new MutationObserver(() => {
    // the new theme's stylesheet may apply a frame later
    requestAnimationFrame(() => drawPlot());
  });
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });

  // ---- first render -------------------------------------------------------------------------
  selectedRow = rowOf.has(model.get("selected")) ? rowOf.get(model.get("selected")) : -1;
  refresh();
  if (selectedRow >= 0) {
    cursor = positionOf(order, selectedRow);
    reveal(cursor);
    drawRows();
  }
  void root.offsetHeight;
  const firstMs = performance.now() - t0;
  root.dataset.firstRenderMs = firstMs.toFixed(2);
  recordTiming({ view: viewId, kind: "first-render", ms: firstMs, shown: order.length, rowsInDom: pool.length, total: n });

  // The view may be rendered before it is attached, with no size and no inherited theme
  // variables yet: redraw the row window and the scatter once it is laid out.
  const sizeWatch = new ResizeObserver(() => {
    drawRows();
    drawPlot();
  });
  sizeWatch.observe(viewport);

  return () => {
    model.off("change:selected", onKernelSelected);
    model.off("change:hub", onHub);
    model.off("change:hub_detail", onHub);
    model.off("change:_scores", onScores);
    rankBar.dispose();
    disposeText();
    themeWatch.disconnect();
    sizeWatch.disconnect();
  };
}

export default { render };
