// The page: the form, the progress of a running analysis, and the result at #/analysis/{id}.

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";
import { renderResult } from "./render.js";

const ROUTE = /^#\/analysis\/([A-Za-z0-9_-]{1,128})$/;
const TRANSCRIPT_ITEM = "observatory.transcript.";
const MAX_FILE_BYTES = 50 * 1024 * 1024;

const transcripts = new Map(); // analysis id → transcript, for this tab
let current = null; // {id, controller}
let chosenExample = null; // {name, content, request}

// ---- messages to the user ---------------------------------------------------------------

function announce(text) {
  fill(byId("announce"), text);
}

function showFormError(text) {
  const box = byId("form-error");
  fill(box, text || "");
  box.hidden = !text;
}

function setProgress(value, text) {
  byId("progress").hidden = false;
  byId("progress-bar").value = value;
  fill(byId("progress-text"), text);
}

// ---- the API key ------------------------------------------------------------------------

function setupKey() {
  const input = byId("api-key");
  input.value = api.getKey();
  if (input.value) byId("access").open = true;
  input.addEventListener("change", () => api.setKey(input.value.trim()));
  byId("forget-key").addEventListener("click", () => {
    input.value = "";
    api.setKey("");
    announce("The API key was removed from this tab.");
  });
}

// ---- input: text, files, examples -------------------------------------------------------

async function readFile(file) {
  if (file.size > MAX_FILE_BYTES) {
    showFormError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit here is 50 MB.`);
    return;
  }
  const text = await file.text();
  const area = byId("conversation");
  area.value = text;
  chosenExample = null;
  byId("example").value = "";
  showFormError("");
  announce(`Loaded ${file.name} (${text.length.toLocaleString()} characters).`);
}

function setupInput() {
  const area = byId("conversation");
  byId("file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) readFile(file);
  });
  for (const name of ["dragenter", "dragover"]) {
    area.addEventListener(name, (event) => {
      event.preventDefault();
      area.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    area.addEventListener(name, () => area.classList.remove("dragging"));
  }
  area.addEventListener("drop", (event) => {
    event.preventDefault();
    area.classList.remove("dragging");
    const [file] = event.dataTransfer.files;
    if (file) readFile(file);
  });
}

function exampleText(content) {
  return typeof content === "string" ? content : JSON.stringify(content, null, 2);
}

async function setupExamples() {
  const list = await api.examples();
  if (!list || list.length === 0) return; // this service offers none: the picker stays hidden
  const select = byId("example");
  for (const ex of list) {
    const label = `${ex.title || ex.name} (${ex.category}, ${ex.message_count} messages)`;
    select.appendChild(el("option", { value: ex.name }, label));
  }
  byId("examples").hidden = false;
  select.addEventListener("change", async () => {
    const name = select.value;
    chosenExample = null;
    fill(byId("example-info"), "");
    if (!name) return;
    try {
      const detail = await api.example(name);
      const text = exampleText(detail.content);
      byId("conversation").value = text;
      chosenExample = { name, content: text, request: detail.request };
      const demonstrates = Array.isArray(detail.demonstrates) ? detail.demonstrates.join(", ") : detail.demonstrates;
      fill(byId("example-info"), [detail.difficulty, demonstrates].filter(Boolean).join(" · "));
      showFormError("");
    } catch (error) {
      showFormError(`The example could not be loaded: ${error.message}`);
    }
  });
}

function options() {
  const patterns = [...document.querySelectorAll('input[name="pattern"]:checked')].map((i) => i.value);
  const out = { pattern_types: patterns, include_insights: byId("insights").checked };
  const observer = byId("observer-mode").value;
  if (observer) out.observer = observer;
  return out;
}

function requestBody() {
  const text = byId("conversation").value;
  if (!text.trim()) throw new Error("Paste a conversation, open a file or choose an example.");
  const opts = options();
  if (opts.pattern_types.length === 0) throw new Error("Choose at least one pattern type.");
  if (chosenExample && chosenExample.request && text === chosenExample.content) {
    return { ...chosenExample.request, options: { ...(chosenExample.request.options || {}), ...opts } };
  }
  const body = { conversation_text: text, options: opts };
  const format = byId("input-format").value;
  if (format) body.format = format;
  return body;
}

// ---- transcripts kept for this tab ------------------------------------------------------

function keepTranscript(id, transcript) {
  transcripts.set(id, transcript);
  try {
    sessionStorage.setItem(TRANSCRIPT_ITEM + id, JSON.stringify(transcript));
  } catch {
    // too large for session storage: kept in memory for this page only
  }
}

function storedTranscript(id) {
  if (transcripts.has(id)) return transcripts.get(id);
  try {
    const text = sessionStorage.getItem(TRANSCRIPT_ITEM + id);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// ---- submitting -------------------------------------------------------------------------

async function onSubmit(event) {
  event.preventDefault();
  showFormError("");
  let body;
  try {
    body = requestBody();
  } catch (error) {
    showFormError(error.message);
    byId("conversation").focus();
    return;
  }
  const button = byId("submit-button");
  button.disabled = true;
  try {
    setProgress(0, "Reading the conversation…");
    byId("cancel").hidden = true;
    const transcript = await api.transcript(body);
    setProgress(0, `Submitting ${transcript.messages.length} messages…`);
    const accepted = await api.submit(body);
    keepTranscript(accepted.id, transcript);
    location.hash = `#/analysis/${accepted.id}`; // shows it (hashchange)
  } catch (error) {
    byId("progress").hidden = true;
    showFormError(error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- one analysis: progress, then the result --------------------------------------------

const STAGES = { local: "local analysis", observer: "observer model" };

function describeEvent(data) {
  if (data.status === "pending") return "Queued…";
  if (data.status === "processing") return `Running: ${STAGES[data.stage] || data.stage || "starting"}…`;
  return `${data.status}`;
}

async function show(id) {
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { id, controller };
  byId("result").hidden = true;
  const cancelButton = byId("cancel");
  try {
    let row = await api.analysis(id, controller.signal);
    if (row.status === "pending" || row.status === "processing") {
      cancelButton.hidden = false;
      cancelButton.disabled = false;
      setProgress(0, describeEvent(row));
      await api.followEvents(
        id,
        (name, data) => {
          if (name === "status") setProgress(data.progress ?? 0, describeEvent(data));
        },
        controller.signal,
      );
      row = await api.analysis(id, controller.signal);
    }
    if (current.id !== id) return;
    cancelButton.hidden = true;
    finish(row);
  } catch (error) {
    if (error.name === "AbortError") return;
    cancelButton.hidden = true;
    const text =
      error.status === 404
        ? `No analysis ${id} here: it may have expired, been erased, or belong to another API key.`
        : error.message;
    setProgress(0, text);
  }
}

function finish(row) {
  if (row.status === "completed") {
    byId("progress").hidden = true;
    renderResult(row, storedTranscript(row.id), select);
    byId("share-link").value = `${location.origin}/#/analysis/${row.id}`;
    byId("result").hidden = false;
    byId("result-heading").focus();
    announce("The analysis is complete.");
  } else if (row.status === "cancelled") {
    setProgress(1, "The analysis was cancelled; nothing was stored.");
  } else {
    setProgress(1, `The analysis failed: ${row.error || "no reason given"}`);
  }
}

async function onCancel() {
  if (!current) return;
  const button = byId("cancel");
  button.disabled = true;
  try {
    await api.cancel(current.id);
    announce("Cancelling…");
  } catch (error) {
    button.disabled = false;
    fill(byId("progress-text"), `Could not cancel: ${error.message}`);
  }
}

// ---- highlighting cited messages -------------------------------------------------------

let pressed = null;

function select(indices, source) {
  for (const node of document.querySelectorAll(".message.highlight")) node.classList.remove("highlight");
  if (pressed) pressed.setAttribute("aria-pressed", "false");
  pressed = source || null;
  if (pressed) pressed.setAttribute("aria-pressed", "true");
  const found = indices.map((i) => byId(`msg-${i}`)).filter(Boolean);
  if (found.length === 0) {
    announce("The transcript is not shown here, so the cited messages cannot be highlighted.");
    return;
  }
  for (const node of found) node.classList.add("highlight");
  const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  found[0].scrollIntoView({ block: "center", behavior: reduce ? "auto" : "smooth" });
  found[0].focus({ preventScroll: true });
  announce(`Highlighted ${found.length} message${found.length > 1 ? "s" : ""} in the transcript.`);
}

// ---- exports and the share link ---------------------------------------------------------

const EXTENSIONS = { json: "json", csv: "csv", markdown: "md" };

async function onExport(event) {
  const button = event.target.closest("button[data-export]");
  if (!button || !current) return;
  const format = button.dataset.export;
  button.disabled = true;
  try {
    const blob = await api.exported(current.id, format);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: `analysis-${current.id}.${EXTENSIONS[format]}` });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    announce(`Exported ${format.toUpperCase()}.`);
  } catch (error) {
    announce(`Export failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function onCopy() {
  const input = byId("share-link");
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Link copied.");
  } catch {
    input.select();
    announce("Select the link and copy it.");
  }
}

// ---- routing ----------------------------------------------------------------------------

function route() {
  const match = ROUTE.exec(location.hash);
  if (match) {
    show(match[1]);
  } else if (current) {
    current.controller.abort();
    current = null;
    byId("result").hidden = true;
    byId("progress").hidden = true;
  }
}

function start() {
  setupKey();
  setupInput();
  setupExamples();
  byId("analyze-form").addEventListener("submit", onSubmit);
  byId("cancel").addEventListener("click", onCancel);
  byId("copy-link").addEventListener("click", onCopy);
  document.querySelector(".exports").addEventListener("click", onExport);
  window.addEventListener("hashchange", route);
  route();
}

start();
