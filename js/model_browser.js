// ModelBrowser view: the timm catalog as one virtual-scrolled table, filters, a details pane and
// a top-1 scatter.
// Kernel -> page: `_catalog` (sent once: columnar, numbers as binary buffers) and `selected`.
// Page -> kernel: only `selected` (a click, Enter, or a click on a dot).
// Every model-supplied string reaches the page through textContent / fillText / title, never as
// HTML, so a name like `<img src=x onerror=...>` is shown literally.
// Timings (first render, each filter) go to window.__tlwTimings.model_browser for the browser
// tests and benchmarks to read.
import {
  decodePayload,
  emptyFilters,
  filterRows,
  filtersAreEmpty,
  formatNumber,
  linearScale,
  linearTicks,
  logScale,
  logTicks,
  moveCursor,
  nearestPoint,
  nextSort,
  positionOf,
  scrollToReveal,
  searchIndex,
  sortRows,
  valueCounts,
  visibleWindow,
} from "./lib/table.js";

const ROW_H = 26; // must match --tlw-mb-row-h in model_browser.css
const VIEW_ROWS = 13; // the viewport's height in rows (css: calc(row-h * 13))
const OVERSCAN = 8;
const MAX_ROWS = 100;
const PLOT_W = 440;
const PLOT_H = 270;
const MARGIN = { left: 46, right: 12, top: 10, bottom: 36 };

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
  { key: "cached", label: "Offline", title: "Weights available without network", bool: true },
];

const X_AXES = {
  gpu_img_s: { label: "GPU speed (img/s, log)", log: true },
  cpu_img_s: { label: "CPU speed (img/s, log)", log: true },
  params_m: { label: "Parameters (M, log)", log: true },
};

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

function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const t0 = performance.now();
  const viewId = ++viewCounter;
  const { n, cols } = decodePayload(model.get("_catalog"));
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
  // a filter over a column the catalog does not have is not offered
  const present = new Set(Object.keys(cols));
  for (const key of ["family", "pretrain", "license"]) if (!cols[key]) cols[key] = new Array(n).fill(null);
  const index = searchIndex(cols, n);
  const rowOf = new Map();
  for (let i = 0; i < n; i++) rowOf.set(cols.name[i], i);

  let filters = emptyFilters();
  let sort = { key: "name", dir: "asc" };
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
  root.appendChild(h("div", { class: "tlw-mb-toolbar" }, [search, count, clear]));

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

  // table
  const head = h("div", { class: "tlw-mb-head", role: "row" });
  const headButtons = new Map();
  for (const c of COLUMNS) {
    const b = h("button", { type: "button", class: c.num ? "tlw-num" : "", role: "columnheader" });
    b.dataset.key = c.key;
    b.title = `${c.title} (click to sort)`;
    headButtons.set(c.key, b);
    head.appendChild(b);
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

  // ---- rows ---------------------------------------------------------------------------------
  const pool = []; // row elements currently in the DOM, in window order
  function makeRow() {
    const row = h("div", { class: "tlw-mb-row", role: "option" });
    for (const c of COLUMNS) {
      const cell = h("div", { class: `tlw-mb-cell ${c.num ? "tlw-num" : ""} ${c.cls || ""} ${c.dim ? "tlw-mb-dim" : ""}` });
      row.appendChild(cell);
    }
    row._idx = -1;
    return row;
  }
  function fillRow(row, idx) {
    row._idx = idx;
    row.id = `tlw-mb-${viewId}-r${idx}`;
    const cells = row.children;
    for (let j = 0; j < COLUMNS.length; j++) {
      const c = COLUMNS[j];
      const col = cols[c.key];
      let text = "";
      if (col) {
        if (c.bool) text = col[idx] ? "✓" : "";
        else if (c.num) text = formatNumber(col[idx], c.digits);
        else text = col[idx] ?? "";
      }
      cells[j].textContent = text;
    }
    cells[0].title = cols.name[idx];
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

  function drawHead() {
    for (const c of COLUMNS) {
      const b = headButtons.get(c.key);
      b.textContent = c.label;
      if (sort.key === c.key) {
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
  function fmtTriple(col, i) {
    if (!col) return "";
    const v = [col[3 * i], col[3 * i + 1], col[3 * i + 2]];
    return v.some(Number.isNaN) ? "" : v.map((x) => x.toFixed(3)).join(", ");
  }
  function drawDetails() {
    details.replaceChildren();
    if (selectedRow < 0) {
      details.appendChild(h("h4", { text: "No model selected" }));
      details.appendChild(
        h("div", { class: "tlw-mb-hint", text: "Click a row or a dot, or use the arrow keys and Enter in the table." }),
      );
      return;
    }
    const i = selectedRow;
    details.appendChild(h("h4", { text: cols.name[i] }));
    if (positionOf(order, i) < 0) {
      details.appendChild(h("div", { class: "tlw-mb-warn", text: "Hidden by the current filters." }));
    }
    const dl = h("dl");
    const num = (key, digits, unit = "") => {
      const v = cols[key] ? cols[key][i] : NaN;
      return Number.isNaN(v) ? "unknown" : `${formatNumber(v, digits)}${unit}`;
    };
    const str = (key) => (cols[key] && cols[key][i]) || "unknown";
    const add = (term, value, cls) => {
      dl.appendChild(h("dt", { text: term }));
      const dd = h("dd", { text: value });
      if (cls) dd.className = cls;
      dl.appendChild(dd);
    };
    add("Architecture", `${cols.architecture[i]}${cols.tag[i] ? `  ·  tag ${cols.tag[i]}` : ""}`);
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
    const cached = cols.cached && cols.cached[i];
    add(
      "Weights",
      cached ? "available offline (no download needed)" : "not cached: needs the Hugging Face Hub",
      cached ? "tlw-mb-yes" : "",
    );
    add("HF Hub id", str("hf_hub_id"));
    if (cols.num_classes && !Number.isNaN(cols.num_classes[i])) add("Classes (pretrained head)", num("num_classes", 0));
    details.appendChild(dl);
  }

  // ---- scatter ------------------------------------------------------------------------------
  const dpr = Math.max(1, window.devicePixelRatio || 1);
  canvas.width = Math.round(PLOT_W * dpr);
  canvas.height = Math.round(PLOT_H * dpr);
  let plotted = { xs: new Float32Array(0), ys: new Float32Array(0), rows: new Int32Array(0), count: 0 };

  // Theme colours for the canvas, from JupyterLab's CSS variables.
  function readTheme() {
    return {
      fg: cssVar(root, "--jp-ui-font-color1", "#222"),
      fg2: cssVar(root, "--jp-ui-font-color2", "#666"),
      grid: cssVar(root, "--jp-border-color2", "#ddd"),
      brand: cssVar(root, "--jp-brand-color1", "#1976d2"),
      accent: cssVar(root, "--jp-warn-color1", "#f57c00"),
      font: cssVar(root, "--jp-ui-font-family", "sans-serif"),
      halo: cssVar(root, "--jp-layout-color1", "#fff"),
    };
  }

  function drawPlot() {
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, PLOT_W, PLOT_H);
    // Read on every draw: a view rendered before it is attached inherits no theme variables,
    // and JupyterLab may swap a theme's stylesheet in at any time.
    const { fg, fg2, grid, brand, accent, font, halo } = readTheme();
    const x0 = MARGIN.left;
    const x1 = PLOT_W - MARGIN.right;
    const y0 = PLOT_H - MARGIN.bottom;
    const y1 = MARGIN.top;
    const xv = cols[xAxis];
    const yv = cols.top1;
    ctx.font = `11px ${font}`;
    if (!xv || !yv) {
      ctx.fillStyle = fg2;
      ctx.fillText("No top-1 or speed data in this catalog.", x0, PLOT_H / 2);
      plotted.count = 0;
      return;
    }
    const usable = [];
    for (const i of order) if (xv[i] > 0 && Number.isFinite(xv[i]) && Number.isFinite(yv[i])) usable.push(i);
    const sx = X_AXES[xAxis].log ? logScale(xv, usable, x0, x1) : linearScale(xv, usable, x0, x1);
    const sy = linearScale(yv, usable, y0, y1);
    // axes and grid
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg2;
    ctx.lineWidth = 1;
    if (sx && sy) {
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const t of X_AXES[xAxis].log ? logTicks(sx.lo, sx.hi) : linearTicks(sx.lo, sx.hi)) {
        const x = Math.round(sx.scale(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, y1);
        ctx.lineTo(x, y0);
        ctx.stroke();
        ctx.fillText(t >= 1 ? t.toLocaleString("en-US") : String(t), x, y0 + 4);
      }
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const t of linearTicks(sy.lo, sy.hi, 5)) {
        const y = Math.round(sy.scale(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x0, y);
        ctx.lineTo(x1, y);
        ctx.stroke();
        ctx.fillText(String(t), x0 - 4, y);
      }
    }
    ctx.strokeStyle = fg2;
    ctx.beginPath();
    ctx.moveTo(x0, y1);
    ctx.lineTo(x0, y0);
    ctx.lineTo(x1, y0);
    ctx.stroke();
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(X_AXES[xAxis].label, (x0 + x1) / 2, PLOT_H - 2);
    ctx.save();
    ctx.translate(11, (y0 + y1) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText("Top-1 (%)", 0, 0);
    ctx.restore();

    const m = usable.length;
    if (plotted.xs.length < m) {
      plotted = { xs: new Float32Array(m), ys: new Float32Array(m), rows: new Int32Array(m), count: 0 };
    }
    plotted.count = m;
    if (!sx || !sy) {
      caption.textContent = "None of the shown models has both top-1 and this x value.";
      return;
    }
    ctx.fillStyle = brand;
    ctx.globalAlpha = 0.45;
    ctx.beginPath();
    for (let k = 0; k < m; k++) {
      const i = usable[k];
      const x = sx.scale(xv[i]);
      const y = sy.scale(yv[i]);
      plotted.xs[k] = x;
      plotted.ys[k] = y;
      plotted.rows[k] = i;
      ctx.moveTo(x + 2.5, y);
      ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.globalAlpha = 1;
    let captionText = `${m.toLocaleString("en-US")} of the ${order.length.toLocaleString("en-US")} shown models have top-1 and ${xAxis === "params_m" ? "size" : "speed"} figures.`;
    if (selectedRow >= 0) {
      const i = selectedRow;
      if (xv[i] > 0 && Number.isFinite(yv[i]) && xv[i] >= sx.lo && xv[i] <= sx.hi && yv[i] >= sy.lo && yv[i] <= sy.hi) {
        const x = sx.scale(xv[i]);
        const y = sy.scale(yv[i]);
        ctx.fillStyle = accent;
        ctx.strokeStyle = fg;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.arc(x, y, 6, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
        ctx.textBaseline = "bottom";
        ctx.textAlign = x > (x0 + x1) / 2 ? "right" : "left";
        const lx = x + (x > (x0 + x1) / 2 ? -8 : 8);
        // a halo in the background colour keeps the label readable over the dots
        ctx.strokeStyle = halo;
        ctx.lineWidth = 3;
        ctx.lineJoin = "round";
        ctx.strokeText(cols.name[i], lx, y - 4);
        ctx.fillStyle = fg;
        ctx.fillText(cols.name[i], lx, y - 4);
      } else {
        captionText += " The selected model is not on the plot (no figures, or filtered out).";
      }
    }
    caption.textContent = captionText;
  }

  // ---- state changes ------------------------------------------------------------------------
  // all rows in the current sort order; a filter change only walks it (see filterRows)
  let sortedAll = null;
  // Where the last refresh spent its time (ms), reported with each timing entry.
  const phases = { filter: 0, table: 0, plot: 0 };
  function refresh() {
    let t = performance.now();
    if (!sortedAll) sortedAll = sortRows(Int32Array.from({ length: n }, (_, i) => i), cols, sort.key, sort.dir);
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
  const plotPoint = (ev) => {
    const r = canvas.getBoundingClientRect();
    const x = ((ev.clientX - r.left) * PLOT_W) / r.width;
    const y = ((ev.clientY - r.top) * PLOT_H) / r.height;
    const k = nearestPoint(plotted.xs, plotted.ys, plotted.count, x, y, 6);
    return k < 0 ? -1 : plotted.rows[k];
  };
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
  canvas.tlwPointOf = (name) => {
    const row = rowOf.has(name) ? rowOf.get(name) : -1;
    for (let k = 0; k < plotted.count; k++) {
      if (plotted.rows[k] === row) {
        const r = canvas.getBoundingClientRect();
        return { x: r.left + (plotted.xs[k] * r.width) / PLOT_W, y: r.top + (plotted.ys[k] * r.height) / PLOT_H };
      }
    }
    return null;
  };

  model.on("change:selected", onKernelSelected);
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
    themeWatch.disconnect();
    sizeWatch.disconnect();
  };
}

export default { render };
