// RunControls view: Start / Pause / Resume / Stop and a state badge.
// Kernel -> page: `state` and `disabled` redraw the badge and buttons.
// Page -> kernel: a press sets `action` and bumps `action_id` (state in traits, so a press is
// never lost to a comm message arriving before the kernel listens).
// Styles live in js/run_controls.css, loaded by anywidget through `_css`.
import { pressChanges, viewState } from "./lib/run_controls_state.js";

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "tlw-run-controls";
  root.setAttribute("role", "group");
  root.setAttribute("aria-label", "Run controls");

  const buttons = new Map();
  for (const { action, label } of viewState({ state: "idle" }).buttons) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = label;
    button.addEventListener("click", () => {
      if (button.disabled) return;
      model.set(pressChanges(action, model.get("action_id")));
      model.save_changes();
    });
    buttons.set(action, button);
    root.appendChild(button);
  }

  const badge = document.createElement("span");
  badge.className = "tlw-badge";
  badge.setAttribute("role", "status");
  badge.setAttribute("aria-live", "polite");
  root.appendChild(badge);

  const detail = document.createElement("span");
  detail.className = "tlw-detail";
  root.appendChild(detail);

  const draw = () => {
    const view = viewState({ state: model.get("state"), disabled: model.get("disabled") });
    for (const { action, enabled } of view.buttons) buttons.get(action).disabled = !enabled;
    badge.textContent = view.badge.text;
    badge.dataset.tone = view.badge.tone;
    badge.dataset.state = String(model.get("state"));
    detail.textContent = model.get("detail") || "";
  };
  draw();
  model.on("change:state", draw);
  model.on("change:disabled", draw);
  model.on("change:detail", draw);
  el.appendChild(root);

  return () => {
    model.off("change:state", draw);
    model.off("change:disabled", draw);
    model.off("change:detail", draw);
  };
}

export default { render };
