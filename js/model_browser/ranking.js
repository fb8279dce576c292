// The ModelBrowser's "Rank on my data" bar (DOM): the button, a progress bar with its line, and
// Cancel. It shows the kernel's `ranking` trait ({state, done, total, message, text}) and sends
// {cmd: "rank"} / {cmd: "cancel"}; the ranking itself runs in a kernel thread
// (tlwidgets/widgets/_rank_job.py), so the page only ever shows state the kernel set.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {any} model the widget model
 * @returns {{el: HTMLElement, dispose: () => void}}
 */
export function createRankBar(model) {
  const bar = el("div", "tlw-mb-rank");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Rank the models on your data");
  const button = el("button", "tlw-mb-rank-button", "Rank on my data");
  button.type = "button";
  const progress = el("progress", "tlw-mb-rank-progress");
  progress.max = 1;
  progress.value = 0;
  const text = el("span", "tlw-mb-rank-text");
  text.setAttribute("role", "status");
  text.setAttribute("aria-live", "polite");
  const cancel = el("button", "tlw-mb-rank-cancel", "Cancel");
  cancel.type = "button";
  bar.append(button, progress, text, cancel);

  let cancelling = false;
  function draw() {
    const r = model.get("ranking") || {};
    const state = r.state || "unavailable";
    if (state !== "running") cancelling = false;
    bar.dataset.state = state;
    const running = state === "running";
    button.disabled = running || state === "unavailable";
    button.textContent = state === "done" || state === "cancelled" ? "Rank again" : "Rank on my data";
    button.title =
      state === "unavailable"
        ? "Give the browser your images first: tlw.ModelBrowser(data=data) or browser.data = data"
        : "Score the candidate models on your images (LogME, k-NN accuracy), in the kernel's background";
    cancel.hidden = !running;
    cancel.disabled = cancelling;
    progress.hidden = !running;
    if (running) {
      progress.max = Math.max(1, r.total || 1);
      progress.value = Math.min(progress.max, r.done || 0);
      progress.setAttribute("aria-label", `${r.done || 0} of ${r.total || 0} images scored`);
    }
    // without data the line would only repeat the button's tooltip: it stays empty (no height)
    text.textContent = cancelling
      ? "Cancelling after the current batch…"
      : state === "unavailable" ? "" : r.text || "";
  }

  button.addEventListener("click", () => {
    model.send({ cmd: "rank" });
    button.disabled = true; // until the kernel says it runs (or why not)
  });
  cancel.addEventListener("click", () => {
    model.send({ cmd: "cancel" });
    cancelling = true;
    draw();
  });
  model.on("change:ranking", draw);
  draw();
  return { el: bar, dispose: () => model.off("change:ranking", draw) };
}
