import assert from "node:assert/strict";
import { test } from "node:test";

import { availability, offlineCellText, orderText, weightsText } from "./availability.js";

test("a cached row is offline whatever the hub; others need the hub only when it is unreachable", () => {
  assert.equal(availability(1, "unreachable"), "offline");
  assert.equal(availability(0, "unreachable"), "needs-hub");
  assert.equal(availability(0, "reachable"), "download");
  assert.equal(availability(0, "checking"), "download");
  assert.equal(offlineCellText("needs-hub"), "no hub");
  assert.equal(offlineCellText("offline"), "✓");
});

test("a row that cannot be used now names the ways out", () => {
  const w = weightsText("needs-hub", "resnet18.a1_in1k", "HF_HUB_OFFLINE is set");
  assert.match(w.text, /cannot be created with pretrained weights now/);
  assert.match(w.text, /HF_HUB_OFFLINE is set/);
  assert.ok(w.waysOut.some((s) => s.includes('tlw.register_weights("resnet18.a1_in1k"')));
  assert.ok(w.waysOut.some((s) => s.includes('tlw.create_model("resnet18", n, weights="none")')));
  assert.deepEqual(weightsText("offline", "x", "").waysOut, []);
});

test("the order line explains the recommended order or the clicked column", () => {
  assert.equal(orderText({ key: "rank", dir: "asc" }, "why", "", "reachable", 3).order, "why");
  const t = orderText({ key: "top1", dir: "desc" }, "why", "Top-1", "unreachable", 1);
  assert.match(t.order, /Sorted by Top-1, descending/);
  assert.match(t.hub, /only the 1 model marked ✓/);
});
