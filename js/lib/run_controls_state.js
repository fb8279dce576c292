// DOM-free rules of the run controls: which buttons a state enables, and what the page shows.
// tlwidgets/widgets/run_controls.py keeps the same table (ENABLED_ACTIONS) so that a click
// that raced a state change is ignored in the kernel too; a Python test compares the two.

/** @typedef {"idle"|"running"|"paused"|"stopping"|"finished"|"stopped"|"failed"} RunState */
/** @typedef {"start"|"pause"|"resume"|"stop"} RunAction */

/** Actions in the order their buttons appear. @type {RunAction[]} */
export const ACTIONS = ["start", "pause", "resume", "stop"];

/** @type {Record<RunAction, string>} */
export const ACTION_LABELS = { start: "Start", pause: "Pause", resume: "Resume", stop: "Stop" };

/** Which actions each state allows. @type {Record<RunState, RunAction[]>} */
export const ENABLED_ACTIONS = {
  idle: ["start"],
  running: ["pause", "stop"],
  paused: ["resume", "stop"],
  // Stopping waits for the loop to reach the end of its step: nothing can be asked meanwhile.
  stopping: [],
  finished: ["start"],
  stopped: ["start"],
  failed: ["start"],
};

/** @type {Record<RunState, {text: string, tone: string}>} */
const BADGES = {
  idle: { text: "Idle", tone: "neutral" },
  running: { text: "Running", tone: "active" },
  paused: { text: "Paused", tone: "warn" },
  stopping: { text: "Stopping…", tone: "warn" },
  finished: { text: "Finished", tone: "success" },
  stopped: { text: "Stopped", tone: "neutral" },
  failed: { text: "Failed", tone: "error" },
};

export const STATES = /** @type {RunState[]} */ (Object.keys(ENABLED_ACTIONS));

/**
 * Whether `state` is one of the known run states.
 * @param {unknown} state
 * @returns {state is RunState}
 */
export function isRunState(state) {
  return typeof state === "string" && Object.prototype.hasOwnProperty.call(ENABLED_ACTIONS, state);
}

/**
 * Whether the button for `action` can be pressed in `state`. Unknown states enable nothing,
 * so a newer kernel cannot make an older page send a command it does not understand.
 * @param {string} state
 * @param {string} action
 * @param {boolean} [disabled] the whole control is disabled
 */
export function isEnabled(state, action, disabled = false) {
  if (disabled || !isRunState(state)) return false;
  return ENABLED_ACTIONS[state].includes(/** @type {RunAction} */ (action));
}

/**
 * What the state badge shows.
 * @param {string} state
 * @returns {{text: string, tone: string}}
 */
export function badgeFor(state) {
  if (isRunState(state)) return BADGES[state];
  return { text: String(state || "unknown"), tone: "neutral" };
}

/**
 * Everything the view needs to draw the controls for one model state.
 * @param {{state: string, disabled?: boolean}} model
 * @returns {{badge: {text: string, tone: string}, buttons: {action: RunAction, label: string, enabled: boolean}[]}}
 */
export function viewState({ state, disabled = false }) {
  return {
    badge: badgeFor(state),
    buttons: ACTIONS.map((action) => ({
      action,
      label: ACTION_LABELS[action],
      enabled: isEnabled(state, action, disabled),
    })),
  };
}

/**
 * The trait changes that report a press of `action` to the kernel. `action_id` always grows,
 * so pressing the same button twice is two changes, not one.
 * @param {RunAction} action
 * @param {number} lastId the model's current `action_id`
 */
export function pressChanges(action, lastId) {
  return { action, action_id: (Number.isFinite(lastId) ? lastId : 0) + 1 };
}
