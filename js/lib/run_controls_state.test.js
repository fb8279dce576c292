import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIONS,
  ENABLED_ACTIONS,
  STATES,
  badgeFor,
  isEnabled,
  pressChanges,
  viewState,
} from "./run_controls_state.js";

const enabledIn = (state, disabled = false) =>
  viewState({ state, disabled }).buttons.filter((b) => b.enabled).map((b) => b.action);

test("idle and finished runs can only be started", () => {
  for (const state of ["idle", "finished", "stopped", "failed"]) {
    assert.deepEqual(enabledIn(state), ["start"], state);
  }
});

test("a running run can be paused or stopped, a paused one resumed or stopped", () => {
  assert.deepEqual(enabledIn("running"), ["pause", "stop"]);
  assert.deepEqual(enabledIn("paused"), ["resume", "stop"]);
});

test("nothing can be pressed while stopping, when disabled, or in an unknown state", () => {
  assert.deepEqual(enabledIn("stopping"), []);
  assert.deepEqual(enabledIn("running", true), []);
  assert.deepEqual(enabledIn("exploded"), []);
  assert.equal(isEnabled("running", "launch"), false);
});

test("every state has a badge and the buttons keep their order and labels", () => {
  assert.deepEqual(STATES, ["idle", "running", "paused", "stopping", "finished", "stopped", "failed"]);
  for (const state of STATES) {
    const { badge, buttons } = viewState({ state });
    assert.ok(badge.text.length > 0);
    assert.deepEqual(buttons.map((b) => b.action), ACTIONS);
  }
  assert.deepEqual(viewState({ state: "paused" }).buttons.map((b) => b.label), ["Start", "Pause", "Resume", "Stop"]);
  assert.deepEqual(badgeFor("failed"), { text: "Failed", tone: "error" });
  assert.equal(badgeFor("warming").text, "warming");
});

test("pressing the same button twice gives two distinct changes", () => {
  const first = pressChanges("pause", 0);
  const second = pressChanges("pause", first.action_id);
  assert.deepEqual(first, { action: "pause", action_id: 1 });
  assert.deepEqual(second, { action: "pause", action_id: 2 });
  assert.deepEqual(pressChanges("stop", undefined), { action: "stop", action_id: 1 });
});

test("the table names only known actions", () => {
  for (const actions of Object.values(ENABLED_ACTIONS)) {
    for (const action of actions) assert.ok(ACTIONS.includes(action));
  }
});
