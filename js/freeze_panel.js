// FreezePanel view: the model's layer groups as an expandable, virtually scrolled tree with a
// three-state "trainable" checkbox per row, a "freeze up to" slider, presets, the BatchNorm
// policy, per-group learning-rate multipliers and a trainable/total footer.
//
// Kernel -> page: `tree` once (columnar, binary), then `trainable` (one Float64 per node) and
// `warnings`/`error`/`ack` whenever the freeze state changes, in one update message.
// Page -> kernel: commands as custom messages {cmd, req, ...}; the kernel answers each by
// setting `ack` to its `req` together with the new state, so the page can time a round trip.
// `bn` and `lr_multipliers` are plain synced traits. "Score layers" (js/freeze_panel/scores.js)
// shows `scoring`/`layer_scores`: a Score column per group and the suggested freeze point,
// applied by the command {cmd: "apply_suggested"} (tlw.freeze_to in the kernel).
// Every model-supplied string goes through textContent: names are data, never markup.
import {
  carryExpanded,
  checkboxState,
  decodeTree,
  column,
  formatCount,
  formatExact,
  freezePoint,
  hasChildren,
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
} from "./lib/tree.js";
import { createScoreBar } from "./freeze_panel/scores.js";

const ROW_HEIGHT = 26;
const MAX_VISIBLE_ROWS = 15;
const OVERSCAN = 5;
const INDENT = 16;
const BN_POLICIES = [
  ["eval", "eval", "Frozen BatchNorm layers stay in eval mode: their statistics do not move."],
  ["train", "train", "Frozen BatchNorm layers still update their running statistics in train mode."],
  ["frozen", "frozen", "Frozen BatchNorm layers are converted to fixed affine layers (like timm's freeze)."],
];

/** Timing records the browser tests read (performance.now() differences, in ms). */
function recordTiming(entry) {
  const all = (globalThis.__tlwTimings ||= {});
  (all.freeze_panel ||= []).push(entry);
}

/** Resolves after the browser has painted the current DOM. */
function afterPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const t0 = performance.now();
  const viewId = Math.random().toString(36).slice(2, 10);
  let reqCounter = 0;
  /** @type {Map<string, {t0: number, cmd: string, node: number, params: number}>} */
  const pending = new Map();

  // ---- state ------------------------------------------------------------------------------
  let tree = decodeTree(model.get("tree"));
  let trainable = readTrainable();
  let expanded = new Uint8Array(tree.n);
  let rows = visibleRows(tree, expanded);
  let focusRow = 0;

  function readTrainable() {
    const raw = model.get("trainable");
    const col = raw ? column(Float64Array, raw) : new Float64Array(0);
    // Until the counts for a new tree arrive, show everything as trainable.
    return col.length === tree.n ? col : Float64Array.from(tree.params);
  }

  // ---- DOM skeleton -------------------------------------------------------------------------
  const root = h("div", "tlw-freeze-panel");
  root.dataset.viewId = viewId;
  // Arrow keys, Space and Enter belong to the tree, not to JupyterLab's notebook shortcuts.
  root.dataset.lmSuppressShortcuts = "true";

  const controls = h("div", "tlw-fp-controls");
  const sliderBox = h("label", "tlw-fp-slider");
  sliderBox.append(h("span", "tlw-fp-label", "Freeze up to"));
  const slider = h("input");
  slider.type = "range";
  slider.min = "0";
  slider.step = "1";
  slider.setAttribute("aria-label", "Freeze the layer groups before this one");
  const sliderText = h("span", "tlw-fp-slider-text");
  sliderBox.append(slider, sliderText);

  const presetBox = h("div", "tlw-fp-presets");
  presetBox.setAttribute("role", "group");
  presetBox.setAttribute("aria-label", "Presets");
  presetBox.append(h("span", "tlw-fp-label", "Presets"));

  const bnBox = h("label", "tlw-fp-bn");
  bnBox.append(h("span", "tlw-fp-label", "BatchNorm"));
  const bnSelect = h("select");
  for (const [value, label, title] of BN_POLICIES) {
    const opt = h("option", "", label);
    opt.value = value;
    opt.title = title;
    bnSelect.append(opt);
  }
  bnSelect.title = "What happens to BatchNorm layers in frozen parts";
  bnBox.append(bnSelect);
  controls.append(sliderBox, presetBox, bnBox);
  // the bar needs `send` and the tree's state, defined below: it is made once they exist
  let scoreBar = null;

  const messages = h("div", "tlw-fp-messages");
  messages.setAttribute("aria-live", "polite");

  const viewport = h("div", "tlw-fp-viewport");
  viewport.tabIndex = 0;
  viewport.setAttribute("role", "tree");
  viewport.setAttribute("aria-label", "Layer groups and modules; checked means trainable");
  const header = h("div", "tlw-fp-row tlw-fp-header");
  for (const [cls, text] of [
    ["tlw-fp-name", "Layer group / module (☑ trains)"],
    ["tlw-fp-type", "Type"],
    ["tlw-fp-num", "Params"],
    ["tlw-fp-num", "Trainable"],
    ["tlw-fp-score", "Score"],
    ["tlw-fp-lr", "LR ×"],
  ]) header.append(h("div", cls, text));
  const spacer = h("div", "tlw-fp-spacer");
  viewport.append(header, spacer);

  const footer = h("div", "tlw-fp-footer");
  const footerText = h("div", "tlw-fp-footer-text");
  const bar = h("div", "tlw-fp-bar");
  bar.setAttribute("role", "meter");
  bar.setAttribute("aria-label", "Share of parameters that are trainable");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const barFill = h("div", "tlw-fp-bar-fill");
  bar.append(barFill);
  footer.append(footerText, bar);

  root.append(controls, messages, viewport, footer);

  // ---- rows (a small pool, reused as the window moves) -------------------------------------
  /** @type {Array<{el: HTMLElement, indent: HTMLElement, toggle: HTMLElement, box: HTMLInputElement,
   *   name: HTMLElement, type: HTMLElement, params: HTMLElement, trainable: HTMLElement,
   *   lr: HTMLInputElement, lrCell: HTMLElement}>} */
  const pool = [];
  function makeRow() {
    const el = h("div", "tlw-fp-row tlw-fp-item");
    el.setAttribute("role", "treeitem");
    const nameCell = h("div", "tlw-fp-name");
    const indent = h("span", "tlw-fp-indent");
    const toggle = h("span", "tlw-fp-toggle");
    toggle.setAttribute("aria-hidden", "true");
    const box = /** @type {HTMLInputElement} */ (h("input", "tlw-fp-check"));
    box.type = "checkbox";
    box.tabIndex = -1; // the tree holds the keyboard focus; Space/Enter toggle the focused row
    const name = h("span", "tlw-fp-text");
    nameCell.append(indent, toggle, box, name);
    const type = h("div", "tlw-fp-type");
    const params = h("div", "tlw-fp-num");
    const train = h("div", "tlw-fp-num");
    const score = h("div", "tlw-fp-score");
    const lrCell = h("div", "tlw-fp-lr");
    const lr = /** @type {HTMLInputElement} */ (h("input", "tlw-fp-lr-input"));
    lr.type = "number";
    lr.min = "0";
    lr.step = "0.1";
    lrCell.append(lr);
    el.append(nameCell, type, params, train, score, lrCell);
    spacer.append(el);
    const row = { el, indent, toggle, box, name, type, params, trainable: train, score, lr, lrCell };
    pool.push(row);
    return row;
  }

  // ---- drawing ----------------------------------------------------------------------------
  function viewportRowsHeight() {
    return Math.min(MAX_VISIBLE_ROWS, Math.max(1, rows.length)) * ROW_HEIGHT;
  }

  function drawRows() {
    const showLr = model.get("show_lr");
    root.classList.toggle("tlw-fp-show-lr", !!showLr);
    const lrs = model.get("lr_multipliers") || {};
    const scores = model.get("layer_scores") || {};
    const scoreOf = new Map((scores.rows || []).map((r) => [r.name, r]));
    root.classList.toggle("tlw-fp-show-score", scoreOf.size > 0);
    const pending_nodes = new Set([...pending.values()].map((p) => p.node));
    spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    const bodyHeight = viewportRowsHeight();
    viewport.style.height = `${bodyHeight + ROW_HEIGHT}px`; // the sticky header is one row high
    const { start, end } = windowRange(viewport.scrollTop, bodyHeight, ROW_HEIGHT, rows.length, OVERSCAN);
    while (pool.length < end - start) makeRow();
    for (let k = 0; k < pool.length; k++) {
      const row = pool[k];
      const r = start + k;
      if (r >= end) {
        row.el.hidden = true;
        delete row.el.dataset.node;
        delete row.lr.dataset.group;
        continue;
      }
      const i = rows[r];
      row.el.hidden = false;
      row.el.dataset.node = String(i);
      row.el.dataset.row = String(r);
      row.el.id = `tlw-fp-${viewId}-r${r}`;
      row.el.style.transform = `translateY(${r * ROW_HEIGHT}px)`;
      const depth = tree.depth[i];
      const isGroup = depth === 0;
      row.el.classList.toggle("tlw-fp-group", isGroup);
      row.el.classList.toggle("tlw-fp-focus", r === focusRow);
      row.el.classList.toggle("tlw-fp-pending", pending_nodes.has(i));
      row.el.setAttribute("aria-level", String(depth + 1));
      row.el.setAttribute("aria-selected", r === focusRow ? "true" : "false");
      row.indent.style.width = `${depth * INDENT}px`;
      if (hasChildren(tree, i)) {
        row.toggle.textContent = expanded[i] ? "▾" : "▸";
        row.el.setAttribute("aria-expanded", expanded[i] ? "true" : "false");
      } else {
        row.toggle.textContent = "";
        row.el.removeAttribute("aria-expanded");
      }
      const state = triState(tree.params[i], trainable[i]);
      const cb = checkboxState(state);
      row.box.checked = cb.checked;
      row.box.indeterminate = cb.indeterminate;
      row.box.disabled = cb.disabled;
      row.box.title = state === "empty" ? "No parameters" : state;
      row.box.setAttribute("aria-label", `${tree.names[i]}: ${state}`);
      row.el.dataset.state = state;
      row.name.textContent = tree.names[i];
      row.name.title = isGroup ? `layer group ${tree.groupOf[i]}: ${tree.names[i]}` : nodePath(tree, i);
      row.type.textContent = tree.typeNames[tree.typeIndex[i]];
      row.params.textContent = formatCount(tree.params[i]);
      row.params.title = formatExact(tree.params[i]);
      row.trainable.textContent = formatCount(trainable[i]);
      row.trainable.title = formatExact(trainable[i]);
      const sc = isGroup ? scoreOf.get(tree.names[i]) : undefined;
      row.el.classList.toggle("tlw-fp-suggested", !!(sc && sc.suggested));
      // the score that picks the suggested group: held-out k-NN accuracy (LogME breaks ties)
      row.score.textContent = sc && sc.knn_pct !== null ? `${sc.suggested ? "★ " : ""}${sc.knn_pct.toFixed(1)} %` : "";
      row.score.title = sc
        ? `k-NN ${sc.knn_pct === null ? "n/a" : `${sc.knn_pct.toFixed(1)} %`} · LogME ${sc.logme === null ? "n/a" : sc.logme.toFixed(4)} · ${sc.feature_dim} features${sc.suggested ? " · the suggested freeze point" : ""}`
        : "";
      if (isGroup && showLr) {
        row.lr.hidden = false;
        const name = tree.names[i];
        const value = lrs[name] ?? 1;
        if (document.activeElement !== row.lr) row.lr.value = String(value);
        row.lr.dataset.group = name;
        row.lr.setAttribute("aria-label", `learning-rate multiplier of ${name}`);
      } else {
        row.lr.hidden = true;
        delete row.lr.dataset.group;
      }
    }
    if (rows.length) viewport.setAttribute("aria-activedescendant", `tlw-fp-${viewId}-r${focusRow}`);
  }

  function drawSummary() {
    const g = tree.groups.length;
    slider.max = String(g);
    const point = freezePoint(tree, trainable);
    if (document.activeElement !== slider) slider.value = String(point.n);
    drawSliderText(Number(slider.value), point.exact || Number(slider.value) !== point.n);

    const t = totals(tree, trainable);
    footerText.textContent =
      `Trainable: ${formatExact(t.trainable)} of ${formatExact(t.params)} parameters ` +
      `(${(100 * t.fraction).toFixed(t.fraction > 0 && t.fraction < 0.001 ? 3 : 1)}%)`;
    barFill.style.width = `${(100 * t.fraction).toFixed(2)}%`;
    bar.setAttribute("aria-valuenow", (100 * t.fraction).toFixed(1));
    root.dataset.trainable = String(t.trainable);
    root.dataset.total = String(t.params);
    root.dataset.version = String(model.get("version"));

    messages.replaceChildren();
    for (const text of model.get("warnings") || []) {
      const w = h("div", "tlw-fp-warning", text);
      w.setAttribute("role", "alert");
      messages.append(w);
    }
    const error = model.get("error");
    if (error) {
      const e = h("div", "tlw-fp-error", error);
      e.setAttribute("role", "alert");
      messages.append(e);
    }
    bnSelect.value = model.get("bn");
    if (scoreBar) scoreBar.draw();
  }

  function drawSliderText(n, exact) {
    const g = tree.groups;
    let text;
    if (n <= 0) text = "nothing frozen";
    else if (n >= g.length) text = "everything frozen";
    else text = `${n} of ${g.length} groups frozen; trains from ${tree.names[g[n]]}`;
    sliderText.textContent = exact ? text : `${text} (custom state)`;
  }

  function drawPresets() {
    presetBox.querySelectorAll("button").forEach((b) => b.remove());
    for (const [name, label, title] of model.get("presets") || []) {
      const b = h("button", "tlw-fp-preset", label);
      b.type = "button";
      b.dataset.preset = name;
      b.title = title;
      presetBox.append(b);
    }
  }

  function drawAll() {
    drawSummary();
    drawRows();
  }

  // ---- commands -----------------------------------------------------------------------------
  function send(cmd, extra, node = -1) {
    const req = `${viewId}:${++reqCounter}`;
    pending.set(req, { t0: performance.now(), cmd, node, params: node >= 0 ? tree.params[node] : 0 });
    model.send({ cmd, req, ...extra });
    if (node >= 0) drawRows();
  }

  scoreBar = createScoreBar(model, (cmd) => send(cmd, {}), () => freezePoint(tree, trainable));
  controls.append(scoreBar.button);
  root.insertBefore(scoreBar.el, messages);

  function toggleNode(i) {
    const want = toggleTarget(triState(tree.params[i], trainable[i]));
    if (want === null) return;
    send("set", { node: i, trainable: want }, i);
  }

  function setExpanded(i, open) {
    const t = performance.now();
    const before = rows.length;
    expanded[i] = open ? 1 : 0;
    const focusNode = rows[focusRow];
    rows = visibleRows(tree, expanded);
    const r = rowOf(rows, focusNode);
    focusRow = r >= 0 ? r : Math.min(focusRow, rows.length - 1);
    drawRows();
    void root.offsetHeight; // include style and layout in the figure
    const entry = { event: open ? "expand" : "collapse", node: i, rows: rows.length - before,
      ms: performance.now() - t };
    afterPaint().then(() => {
      entry.paint_ms = performance.now() - t;
      recordTiming(entry);
    });
  }

  function moveFocus(r) {
    focusRow = Math.max(0, Math.min(rows.length - 1, r));
    const bodyHeight = viewportRowsHeight();
    viewport.scrollTop = scrollIntoView(focusRow, viewport.scrollTop, bodyHeight, ROW_HEIGHT);
    drawRows();
  }

  // ---- events -------------------------------------------------------------------------------
  let scrollQueued = false;
  viewport.addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      drawRows();
    });
  });

  viewport.addEventListener("click", (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    const rowEl = target.closest(".tlw-fp-item");
    if (!rowEl) return;
    const i = Number(rowEl.dataset.node);
    focusRow = Number(rowEl.dataset.row);
    if (target.classList.contains("tlw-fp-check")) {
      // The checkbox shows the kernel's state, not the click: it changes when the answer comes.
      ev.preventDefault();
      toggleNode(i);
    } else if (target.classList.contains("tlw-fp-toggle") && hasChildren(tree, i)) {
      setExpanded(i, !expanded[i]);
    } else if (target.classList.contains("tlw-fp-lr-input")) {
      return;
    }
    drawRows();
    viewport.focus({ preventScroll: true });
  });

  viewport.addEventListener("dblclick", (ev) => {
    const rowEl = /** @type {HTMLElement} */ (ev.target).closest(".tlw-fp-item");
    if (!rowEl || /** @type {HTMLElement} */ (ev.target).closest("input")) return;
    const i = Number(rowEl.dataset.node);
    if (hasChildren(tree, i)) setExpanded(i, !expanded[i]);
  });

  viewport.addEventListener("keydown", (ev) => {
    if (/** @type {HTMLElement} */ (ev.target).closest("input")) return; // typing an LR value
    const pageRows = Math.max(1, MAX_VISIBLE_ROWS - 1);
    const action = keyAction(ev.key, tree, rows, focusRow, expanded, pageRows);
    if (!action) return;
    ev.preventDefault();
    ev.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the tree
    if (action.expand >= 0) setExpanded(action.expand, true);
    else if (action.collapse >= 0) setExpanded(action.collapse, false);
    if (action.toggle >= 0) toggleNode(action.toggle);
    moveFocus(action.focus);
  });

  viewport.addEventListener("change", (ev) => {
    const input = /** @type {HTMLInputElement} */ (ev.target);
    if (!input.classList.contains("tlw-fp-lr-input")) return;
    const value = Number(input.value);
    if (input.value === "" || !Number.isFinite(value) || value < 0) {
      input.setCustomValidity("Enter a number ≥ 0");
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    model.set("lr_multipliers", { ...(model.get("lr_multipliers") || {}), [input.dataset.group]: value });
    model.save_changes();
  });

  slider.addEventListener("input", () => {
    const n = Number(slider.value);
    drawSliderText(n, true);
  });
  slider.addEventListener("change", () => {
    send("freeze_to", { n: Number(slider.value) });
  });

  presetBox.addEventListener("click", (ev) => {
    const b = /** @type {HTMLElement} */ (ev.target).closest("button");
    if (b) send("preset", { name: b.dataset.preset });
  });

  bnSelect.addEventListener("change", () => {
    model.set("bn", bnSelect.value);
    model.save_changes();
  });

  // ---- kernel updates -----------------------------------------------------------------------
  let updateQueued = false;
  function onState() {
    // One kernel update sets several traits; redraw once, after all of them have landed.
    if (updateQueued) return;
    updateQueued = true;
    queueMicrotask(() => {
      updateQueued = false;
      trainable = readTrainable();
      const ack = model.get("ack");
      const done = pending.get(ack);
      pending.delete(ack);
      drawAll();
      if (done) {
        void root.offsetHeight;
        const entry = { event: "roundtrip", cmd: done.cmd, node: done.node, params: done.params,
          ms: performance.now() - done.t0 };
        afterPaint().then(() => {
          entry.paint_ms = performance.now() - done.t0;
          recordTiming(entry);
        });
      }
    });
  }

  function onTree() {
    // The structure changed under the same model (say, BatchNorm layers swapped): keep what
    // was open and where the focus was.
    const focusKey = rows.length ? nodeKeys(tree)[rows[focusRow]] : "";
    const next = decodeTree(model.get("tree"));
    expanded = carryExpanded(tree, expanded, next);
    tree = next;
    trainable = readTrainable();
    rows = visibleRows(tree, expanded);
    const keys = nodeKeys(tree);
    const r = rows.findIndex((i) => keys[i] === focusKey);
    focusRow = r >= 0 ? r : 0;
    drawAll();
  }

  const stateKeys = ["trainable", "warnings", "error", "ack", "version", "bn", "lr_multipliers", "show_lr",
    "layer_scores", "scoring"];
  for (const key of stateKeys) model.on(`change:${key}`, onState);
  model.on("change:tree", onTree);
  model.on("change:presets", drawPresets);

  // ---- first render -------------------------------------------------------------------------
  el.append(root);
  drawPresets();
  drawAll();
  void root.offsetHeight;
  const first = { event: "render", nodes: tree.n, ms: performance.now() - t0 };
  root.dataset.renderMs = first.ms.toFixed(1);
  afterPaint().then(() => {
    first.paint_ms = performance.now() - t0;
    first.painted_at = performance.timeOrigin + performance.now(); // epoch ms, vs the kernel's clock
    recordTiming(first);
  });

  return () => {
    for (const key of stateKeys) model.off(`change:${key}`, onState);
    model.off("change:tree", onTree);
    model.off("change:presets", drawPresets);
  };
}

export default { render };
