// Whether a catalog row's pretrained weights can be had now, from the row's `cached` flag and
// the kernel's `hub` trait ("unknown", "checking", "reachable", "unreachable"). DOM-free, so
// the rules are unit-tested (availability.test.js).

/**
 * @param {number|boolean} cached the row's weights are on this machine
 * @param {string} hub the kernel's hub status
 * @returns {"offline"|"needs-hub"|"download"}
 */
export function availability(cached, hub) {
  if (cached) return "offline";
  return hub === "unreachable" ? "needs-hub" : "download";
}

/** What the Offline cell shows for an availability. */
export function offlineCellText(kind) {
  return kind === "offline" ? "✓" : kind === "needs-hub" ? "no hub" : "";
}

/**
 * The details pane's Weights line and, for a row that cannot be used now, the ways out.
 * @param {string} kind availability()
 * @param {string} name the model's name
 * @param {string} detail why the hub is unreachable
 * @returns {{text: string, cls: string, waysOut: string[]}}
 */
export function weightsText(kind, name, detail) {
  if (kind === "offline") return { text: "available offline (no download needed)", cls: "tlw-mb-yes", waysOut: [] };
  if (kind === "download") {
    return { text: "not on this machine: downloaded from the Hugging Face Hub on first use", cls: "", waysOut: [] };
  }
  const arch = name.includes(".") ? name.slice(0, name.indexOf(".")) : name;
  return {
    text:
      "cannot be created with pretrained weights now: not on this machine, and the " +
      `Hugging Face Hub cannot be reached${detail ? ` (${detail})` : ""}.`,
    cls: "tlw-mb-unavailable",
    waysOut: [
      "pick a model marked ✓ in the Offline column (tick “available offline”);",
      `go online once: tlw.create_model("${name}", n) then caches them for offline use;`,
      `tlw.register_weights("${name}", "/path/to/weights.safetensors") for a file you have;`,
      `or tlw.create_model("${arch}", n, weights="none") to train it from scratch.`,
    ],
  };
}

/**
 * The line under the filters: why the table is in this order, and what the hub status means.
 * @param {{key: string, dir: string}} sort
 * @param {string} note the kernel's explanation of the recommended order
 * @param {string} label the sorted column's heading
 * @param {string} hub
 * @param {number} offlineCount rows with weights on this machine
 */
export function orderText(sort, note, label, hub, offlineCount) {
  const order =
    sort.key === "rank"
      ? note
      : `Sorted by ${label}, ${sort.dir === "asc" ? "ascending" : "descending"} (click again to reverse).`;
  const hubLine =
    hub === "unreachable"
      ? `No Hugging Face Hub from here: only the ${offlineCount} model${offlineCount === 1 ? "" : "s"} ` +
        "marked ✓ can be created with pretrained weights now; the rows marked “no hub” say why in the details."
      : "";
  return { order, hub: hubLine };
}
