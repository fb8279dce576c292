// The FreezePanel's "Score layers" bar (DOM): the button, progress with Cancel, the status line,
// the one-click "Apply" of the suggested freeze point and what the Score column means. It shows
// the kernel's `scoring` and `layer_scores` traits; the scoring runs in a kernel thread
// (tlwidgets/widgets/_layer_scores.py). Commands go through the panel's `send`, so the
// kernel's answer (the new freeze state) is acknowledged like any other command.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {any} model the widget model
 * @param {(cmd: string, extra?: object) => void} send the panel's command sender
 * @param {() => {n: number, exact: boolean}} currentPoint the freeze point shown now
 * @returns {{button: HTMLElement, el: HTMLElement, draw: () => void}} the button goes with the
 *   panel's controls; `el` (progress, status, Apply, the Score column's meaning) is empty and
 *   hidden until there is data
 */
export function createScoreBar(model, send, currentPoint) {
  const box = el("div", "tlw-fp-scores");
  const line = el("div", "tlw-fp-scores-line");
  const button = el("button", "tlw-fp-score-button", "Score layers");
  button.type = "button";
  const progress = el("progress", "tlw-fp-score-progress");
  const cancel = el("button", "tlw-fp-score-cancel", "Cancel");
  cancel.type = "button";
  const text = el("span", "tlw-fp-score-text");
  text.setAttribute("role", "status");
  text.setAttribute("aria-live", "polite");
  const apply = el("button", "tlw-fp-apply-suggested");
  apply.type = "button";
  line.append(progress, cancel, text, apply);
  const explain = el("div", "tlw-fp-score-explain");
  box.append(line, explain);

  function draw() {
    const s = model.get("scoring") || {};
    const scores = model.get("layer_scores") || {};
    const state = s.state || "unavailable";
    box.dataset.state = state;
    box.hidden = state === "unavailable" && !(scores.rows && scores.rows.length);
    const running = state === "running";
    button.disabled = running || state === "unavailable";
    button.textContent = scores.rows && scores.rows.length ? "Score again" : "Score layers";
    button.title =
      state === "unavailable"
        ? "Give the panel your images first: tlw.FreezePanel(model, data=data) or panel.data = data"
        : "Score each layer group's output on your images (LogME, k-NN), in the kernel's background";
    progress.hidden = cancel.hidden = !running;
    if (running) {
      progress.max = Math.max(1, s.total || 1);
      progress.value = Math.min(progress.max, s.done || 0);
    }
    text.textContent = state === "unavailable" ? "" : s.text || "";
    const n = scores.suggested_freeze_to;
    const has = Number.isInteger(n) && scores.rows && scores.rows.length > 0;
    apply.hidden = !has;
    if (has) {
      const now = currentPoint();
      const applied = now.exact && now.n === n;
      apply.disabled = applied || running;
      apply.dataset.n = String(n);
      apply.textContent = applied
        ? `✓ Suggested freeze point applied (up to ${scores.suggested_name})`
        : `Apply suggested: freeze up to ${scores.suggested_name}`;
      apply.title = `tlw.freeze_to(model, ${n}): ${scores.suggested_name} and every group before it stay frozen; ${scores.trains_from || "the head"} onwards trains`;
    }
    explain.textContent = has ? scores.explain || "" : "";
    explain.hidden = !has;
  }

  button.addEventListener("click", () => {
    button.disabled = true; // until the kernel says it runs (or why not)
    send("score_layers");
  });
  cancel.addEventListener("click", () => send("cancel_scoring"));
  apply.addEventListener("click", () => {
    apply.disabled = true;
    send("apply_suggested");
  });
  draw();
  return { button, el: box, draw };
}
