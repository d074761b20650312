// The batch view: many conversations submitted at once (an export with hundreds of them, or
// several files), their progress live from the batch's events stream, the aggregate once
// they all ended, and each item opened in the result view; at #/batch/{id}.

import * as api from "./api.js";
import { byId, el, fill, humanise, number, percent } from "./dom.js";

const ROUTE = /^#\/batch\/([A-Za-z0-9_-]{1,128})$/;
const ANALYSIS_ROUTE = /^#\/analysis\/([A-Za-z0-9_-]{1,128})$/;
// The result view reads a transcript kept under this prefix for the analysis it shows.
const TRANSCRIPT_ITEM = "observatory.transcript.";
// The batch an opened item came from, so its result view can link back.
const PARENT_ITEM = "observatory.batchOf.";
const PAGE = 50;
const ALL = 1000; // the most items one request returns
const REFRESH_MS = 2000;
const POLL_MS = 2000;
const MAX_REF_CHARS = 120;
const ENDED = new Set(["completed", "cancelled"]);
const STATUS_ORDER = ["pending", "processing", "completed", "failed", "cancelled", "rejected", "deleted"];

const sources = new Map(); // batch id → the conversations this tab submitted, by position
let chosen = null; // {files, conversations: [{ref, body}], bytes}
let view = null; // the batch shown: {id, controller, offset, filter, rows, timer, lastRefresh, total}

function announce(text) {
  fill(byId("announce"), text);
}

function showError(text) {
  const box = byId("batch-error");
  fill(box, text || "");
  box.hidden = !text;
}

function remember(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    // storage full or disabled: the page works without it
  }
}

function recall(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

// ---- reading files into conversations ----------------------------------------------------

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Whether ``value`` is one conversation of an export that holds many (ChatGPT, Claude.ai). */
function isExportedConversation(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  return (value.mapping && typeof value.mapping === "object") || Array.isArray(value.chat_messages);
}

function isBatchItem(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    ["text", "conversation_text", "messages", "data"].some((key) => key in value)
  );
}

function titleOf(value) {
  if (!value || typeof value !== "object") return "";
  for (const key of ["title", "name"]) {
    if (typeof value[key] === "string" && value[key].trim()) return value[key];
  }
  return "";
}

const SPOKEN = new Set(["text", "multimodal_text"]);

/**
 * A ChatGPT conversation with only what the service reads of it: the tree of nodes, and of
 * each message its author's role, time, recipient, hidden flag and text parts. Exports
 * carry much more per message (model, citations, attachments); without it a large export
 * fits the batch size limit, and the conversation parses the same.
 */
function slimChatgpt(conversation) {
  const mapping = {};
  for (const [id, node] of Object.entries(conversation.mapping)) {
    if (!node || typeof node !== "object" || Array.isArray(node)) {
      mapping[id] = node;
      continue;
    }
    const message = node.message;
    mapping[id] = { parent: node.parent, children: node.children, message: message && slimMessage(message) };
  }
  const { title, create_time: created, current_node: current } = conversation;
  return { title, create_time: created, current_node: current, mapping };
}

function slimMessage(message) {
  if (typeof message !== "object" || Array.isArray(message)) return message;
  const { author, content, metadata } = message;
  let kept = content;
  if (content && typeof content === "object" && !Array.isArray(content)) {
    kept = { content_type: content.content_type };
    if (SPOKEN.has(content.content_type)) {
      kept.parts = Array.isArray(content.parts) ? content.parts.filter((p) => typeof p === "string") : content.parts;
    }
  }
  const hidden = metadata && typeof metadata === "object" && metadata.is_visually_hidden_from_conversation;
  return {
    author: author && typeof author === "object" && !Array.isArray(author) ? { role: author.role } : author,
    create_time: message.create_time,
    recipient: message.recipient,
    content: kept,
    metadata: hidden ? { is_visually_hidden_from_conversation: true } : undefined,
  };
}

/** The conversations in one file: ``[{title, body}]``, ``body`` an item without its id. */
function conversationsIn(name, text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [{ title: name, body: { text } }];
  }
  if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(isExportedConversation)) {
    return parsed.map((value, i) => ({
      title: titleOf(value) || `${name} #${i + 1}`,
      body: { data: isObject(value.mapping) ? slimChatgpt(value) : value },
    }));
  }
  // A batch request body saved to a file: its conversations as they are.
  if (parsed && Array.isArray(parsed.conversations) && parsed.conversations.length > 0 && parsed.conversations.every(isBatchItem)) {
    return parsed.conversations.map((item, i) => {
      const { id, ...body } = item;
      return { title: id === undefined || id === null ? `${name} #${i + 1}` : String(id), body };
    });
  }
  return [{ title: titleOf(parsed) || name, body: { data: parsed } }];
}

/** Item ids from titles: readable, at most MAX_REF_CHARS, unique in the batch. */
function uniqueRefs(titles) {
  const used = new Set();
  return titles.map((title) => {
    const base = String(title).replace(/\s+/g, " ").trim().slice(0, MAX_REF_CHARS) || "Untitled";
    let ref = base;
    for (let n = 2; used.has(ref); n += 1) ref = `${base} (${n})`;
    used.add(ref);
    return ref;
  });
}

function megabytes(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

async function chooseFiles(files) {
  chosen = null;
  showError("");
  fill(byId("batch-chosen"), "");
  if (files.length === 0) return;
  fill(byId("batch-chosen"), `Reading ${files.length} file${files.length > 1 ? "s" : ""}…`);
  const found = [];
  try {
    for (const file of files) found.push(...conversationsIn(file.name, await file.text()));
  } catch (error) {
    fill(byId("batch-chosen"), "");
    showError(`The files could not be read: ${error.message}`);
    return;
  }
  setChosen(files, found);
}

function setChosen(files, found) {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const refs = uniqueRefs(found.map((c) => c.title));
  chosen = {
    files: files.map((f) => f.name),
    conversations: found.map((c, i) => ({ ref: refs[i], body: c.body })),
    bytes,
  };
  const first = refs.slice(0, 3).join("; ");
  const more = refs.length > 3 ? ` and ${(refs.length - 3).toLocaleString()} more` : "";
  fill(
    byId("batch-chosen"),
    `${files.length} file${files.length > 1 ? "s" : ""} (${megabytes(bytes)}), ` +
      `${refs.length.toLocaleString()} conversation${refs.length > 1 ? "s" : ""}: ${first}${more}.`,
  );
}

/**
 * A file with many conversations given to the single-analysis form above: offer to analyse
 * them as one batch instead (that form takes one conversation).
 */
async function offerBatch(files) {
  const hint = byId("many-hint");
  hint.hidden = true;
  if (files.length !== 1) return;
  const [file] = files;
  let found;
  try {
    found = conversationsIn(file.name, await file.text());
  } catch {
    return;
  }
  const count = found.length;
  if (count < 2) return;
  const transfer = new DataTransfer();
  transfer.items.add(file);
  byId("batch-files").files = transfer.files;
  showError("");
  setChosen([file], found);
  fill(
    hint,
    el("p", {}, `${file.name} holds ${count.toLocaleString()} conversations; this form analyses one.`),
    el(
      "button",
      { type: "button", id: "many-submit", class: "secondary", onclick: () => byId("batch-form").requestSubmit() },
      `Analyse all ${count.toLocaleString()} as one batch`,
    ),
  );
  hint.hidden = false;
}

function setupDrop() {
  const zone = byId("batch-form");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"]) zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || files.length === 0) return;
    byId("batch-files").files = files;
    chooseFiles([...files]);
  });
}

// The same options as the single-analysis form above, which the batch shares.
function options() {
  const patterns = [...document.querySelectorAll('input[name="pattern"]:checked')].map((i) => i.value);
  const out = { pattern_types: patterns, include_insights: byId("insights").checked };
  const observer = byId("observer-mode").value;
  if (observer) out.observer = observer;
  return out;
}

async function onSubmit(event) {
  event.preventDefault();
  showError("");
  if (!chosen || chosen.conversations.length === 0) {
    showError("Choose one or more files first.");
    byId("batch-files").focus();
    return;
  }
  const opts = options();
  if (opts.pattern_types.length === 0) {
    showError("Choose at least one pattern type.");
    return;
  }
  const button = byId("batch-submit-button");
  button.disabled = true;
  const submitted = chosen.conversations;
  fill(byId("batch-chosen"), `Submitting ${submitted.length.toLocaleString()} conversations…`);
  try {
    const body = { conversations: submitted.map((c) => ({ id: c.ref, ...c.body })), options: opts };
    const accepted = await api.submitBatch(body);
    sources.set(accepted.batch_id, submitted);
    const refused = accepted.rejected.length;
    fill(
      byId("batch-chosen"),
      `Submitted ${accepted.accepted.toLocaleString()} conversations` +
        (refused ? `; ${refused} could not be accepted (see the list).` : "."),
    );
    location.hash = `#/batch/${accepted.batch_id}`; // shows it (hashchange)
  } catch (error) {
    fill(byId("batch-chosen"), "");
    showError(error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- the batch: progress, items, aggregate -----------------------------------------------

function badge(status) {
  return el("span", { class: `status status-${status}` }, humanise(status));
}

function describeProgress(data) {
  const ended = STATUS_ORDER.filter((s) => !["pending", "processing"].includes(s)).reduce(
    (sum, s) => sum + (data.counts[s] || 0),
    0,
  );
  const total = data.total_conversations.toLocaleString();
  const share = `${ended.toLocaleString()} of ${total} conversations ended (${percent(data.progress)})`;
  if (data.status === "pending") return `Queued: ${share}.`;
  if (data.status === "processing") return `Running: ${share}.`;
  if (data.status === "cancelled") return `Cancelled: ${share}; finished items keep their results.`;
  return `Complete: ${share}.`;
}

function renderProgress(data) {
  byId("batch-progress-bar").value = data.progress ?? 0;
  fill(byId("batch-progress-text"), describeProgress(data));
  const counts = STATUS_ORDER.filter((s) => data.counts[s]).map((s) =>
    el("li", {}, badge(s), ` ${data.counts[s].toLocaleString()}`),
  );
  fill(byId("batch-counts"), counts);
  const ended = ENDED.has(data.status);
  byId("batch-running").hidden = ended;
  if (ended) byId("batch-cancel").disabled = false;
}

function itemAction(item) {
  if (item.status === "completed" && item.analysis_id) {
    return el(
      "a",
      {
        href: `#/analysis/${encodeURIComponent(item.analysis_id)}`,
        class: "open-item",
        dataset: { analysis: item.analysis_id },
        onclick: (event) => openItem(event, item),
      },
      "Open",
      el("span", { class: "visually-hidden" }, ` ${item.id}`),
    );
  }
  return item.error ? el("span", { class: "item-error" }, item.error) : "—";
}

function itemRow(item) {
  const status = el("td", {}, badge(item.status));
  const action = el("td", { class: "action" }, itemAction(item));
  const row = el(
    "tr",
    {},
    el("td", { class: "num" }, item.position + 1),
    el("th", { scope: "row", class: "ref" }, item.id),
    status,
    action,
  );
  return { row, status, action, item };
}

/** The page of items; rows already shown are updated in place, so focus stays where it is. */
function renderItems(data) {
  const items = data.items || [];
  const rows = view.rows;
  const samePage = items.length === rows.size && items.every((i) => rows.has(i.position));
  if (samePage) {
    for (const item of items) {
      const shown = rows.get(item.position);
      if (shown.item.status === item.status && shown.item.error === item.error) continue;
      fill(shown.status, badge(item.status));
      fill(shown.action, itemAction(item));
      shown.item = item;
    }
  } else {
    rows.clear();
    const body = items.map((item) => {
      const shown = itemRow(item);
      rows.set(item.position, shown);
      return shown.row;
    });
    const head = el(
      "tr",
      {},
      ["No.", "Conversation", "Status", "Result"].map((c, i) => el("th", { scope: "col", class: i === 0 ? "num" : null }, c)),
    );
    fill(
      byId("batch-items"),
      el("table", {}, el("caption", { class: "visually-hidden" }, "Conversations of the batch"), el("thead", {}, head), el("tbody", {}, body)),
    );
  }
  const total = data.total_conversations;
  const first = data.page.offset;
  const range = items.length ? `${first + 1}–${first + items.length}` : "none";
  fill(byId("batch-page"), `${range} of ${total.toLocaleString()}`);
  byId("batch-previous").disabled = first === 0;
  byId("batch-next").disabled = data.page.next_offset === null;
  byId("batch-pager").hidden = Boolean(view.filter) || total <= PAGE;
  fill(
    byId("batch-shown"),
    view.filter
      ? `${items.length.toLocaleString()} of ${total.toLocaleString()} conversations are ${view.filter}.`
      : "",
  );
}

function bars(id, title, rows, unit) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const total = rows.reduce((sum, r) => sum + r.value, 0);
  const body = rows.map((r) => {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${(100 * r.value) / max}%`;
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, r.label),
      el("td", { class: "bar-cell" }, el("span", { class: "bar-track", "aria-hidden": "true" }, bar)),
      el("td", { class: "num" }, r.value.toLocaleString(), r.detail ? el("span", { class: "hint" }, ` ${r.detail}`) : null),
    );
  });
  return el(
    "section",
    { class: "card", "aria-labelledby": id },
    el("h4", { id }, title),
    rows.length && total > 0
      ? el(
          "table",
          { class: "bars" },
          el("caption", { class: "visually-hidden" }, title),
          el(
            "thead",
            { class: "visually-hidden" },
            el("tr", {}, el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Bar"), el("th", { scope: "col" }, unit)),
          ),
          el("tbody", {}, body),
        )
      : el("p", { class: "hint" }, "Nothing to count."),
  );
}

const DYNAMICS = [
  ["messages", "Turns", (v) => number(v, 1)],
  ["speakers", "Speakers", (v) => number(v, 1)],
  ["reciprocity", "Reciprocity", (v) => number(v, 2)],
  ["dominant_share", "Share of the most active speaker", percent],
  ["confidence", "Confidence", percent],
];
const SUMMARY_COLUMNS = [
  ["median", "Median"],
  ["mean", "Mean"],
  ["p10", "10th percentile"],
  ["p90", "90th percentile"],
  ["min", "Lowest"],
  ["max", "Highest"],
];

function dynamicsTable(dynamics) {
  const rows = DYNAMICS.filter(([key]) => dynamics[key]).map(([key, label, format]) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, label),
      SUMMARY_COLUMNS.map(([column]) => el("td", { class: "num" }, format(dynamics[key][column]))),
    ),
  );
  if (rows.length === 0) return el("p", { class: "hint" }, "No dynamics were measured.");
  const head = el(
    "tr",
    {},
    el("th", { scope: "col" }, "Measure"),
    SUMMARY_COLUMNS.map(([, label]) => el("th", { scope: "col", class: "num" }, label)),
  );
  return el("table", {}, el("caption", { class: "visually-hidden" }, "Dynamics per conversation"), el("thead", {}, head), el("tbody", {}, rows));
}

function renderAggregate(aggregate) {
  const section = byId("batch-aggregate");
  section.hidden = false;
  if (!aggregate) {
    fill(byId("batch-aggregate-note"), "The summary of the batch is not available.");
    fill(byId("batch-charts"));
    fill(byId("batch-themes"));
    fill(byId("batch-dynamics"));
    return;
  }
  fill(
    byId("batch-aggregate-note"),
    `${aggregate.conversations.toLocaleString()} of ${aggregate.items.toLocaleString()} conversations completed and are ` +
      `summarised here. A theme is shown only when at least ${aggregate.k} conversations share it; no text of any one ` +
      "conversation appears.",
  );
  const tones = Object.entries(aggregate.tones || {}).map(([tone, n]) => ({ label: humanise(tone), value: n }));
  const patterns = Object.entries(aggregate.pattern_types || {}).map(([kind, n]) => ({
    label: humanise(kind),
    value: n.conversations,
    detail: `(${n.findings.toLocaleString()} finding${n.findings === 1 ? "" : "s"})`,
  }));
  const dynamics = aggregate.dynamics || {};
  const engagement = ["high", "medium", "low"]
    .filter((level) => level in (dynamics.engagement || {}))
    .map((level) => ({ label: humanise(level), value: dynamics.engagement[level] }));
  fill(
    byId("batch-charts"),
    bars("batch-tones-heading", "Overall tone", tones, "Conversations"),
    bars("batch-patterns-heading", "Dialectic patterns", patterns, "Conversations"),
    bars("batch-engagement-heading", "Engagement", engagement, "Conversations"),
  );
  const themes = aggregate.themes || [];
  fill(
    byId("batch-themes"),
    themes.length
      ? themes.map((t) => {
          const bar = el("span", { class: "bar" });
          bar.style.width = `${Math.round(100 * (t.share || 0))}%`;
          return el(
            "li",
            {},
            el("strong", {}, t.label),
            el("span", { class: "hint" }, ` · ${t.conversations.toLocaleString()} conversations (${percent(t.share)})`),
            el("span", { class: "bar-track", "aria-hidden": "true" }, bar),
          );
        })
      : el("li", {}, `No theme is shared by ${aggregate.k} or more conversations.`),
  );
  fill(byId("batch-dynamics"), dynamicsTable(dynamics));
}

function render(data) {
  const when = (value) => (value ? new Date(value).toLocaleString() : "—");
  fill(
    byId("batch-meta"),
    `${data.total_conversations.toLocaleString()} conversations · submitted ${when(data.created_at)} · ` +
      `kept until ${when(data.expires_at)}`,
  );
  renderProgress(data);
  renderItems(data);
  if (ENDED.has(data.status)) renderAggregate(data.aggregate);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

/** The batch with the page of items shown, or with every item of the status chosen. */
async function load(v) {
  const signal = v.controller.signal;
  if (!v.filter) return api.batch(v.id, { offset: v.offset, limit: PAGE, signal });
  const filter = v.filter;
  const data = await api.batch(v.id, { offset: 0, limit: ALL, signal });
  const items = [...data.items];
  for (let next = data.page.next_offset; next !== null; ) {
    const more = await api.batch(v.id, { offset: next, limit: ALL, signal });
    items.push(...more.items);
    next = more.page.next_offset;
  }
  const shown = items.filter((i) => i.status === filter);
  return { ...data, filter, items: shown, page: { offset: 0, limit: ALL, returned: shown.length, next_offset: null } };
}

/** Whether ``data`` answers what ``v`` shows now (not a page or a filter left since). */
function current(v, data) {
  return view === v && data.page.offset === v.offset && (data.filter || "") === v.filter;
}

/** At most one refresh of the shown items every REFRESH_MS while events arrive. */
function scheduleRefresh(v) {
  if (v.timer) return;
  const wait = Math.max(0, v.lastRefresh + REFRESH_MS - Date.now());
  v.timer = setTimeout(async () => {
    v.timer = null;
    v.lastRefresh = Date.now();
    try {
      const data = await load(v);
      // A page turned or a filter chosen meanwhile shows its own items.
      if (current(v, data)) renderItems(data);
    } catch {
      // the next event, or the end of the stream, refreshes them again
    }
  }, wait);
}

/** Follow the batch until every item ended: its events stream, else polling. */
async function follow(v) {
  try {
    await api.followBatchEvents(
      v.id,
      (name, data) => {
        if (name !== "progress" || view !== v) return;
        renderProgress({ ...data, total_conversations: v.total });
        scheduleRefresh(v);
      },
      v.controller.signal,
    );
  } catch (error) {
    if (error.name === "AbortError" || error.status === 404 || error.status === 401) throw error;
    // the stream is unavailable (a proxy, a dropped connection): poll instead
  }
  for (let failures = 0; ; ) {
    let data;
    try {
      data = await load(v);
      failures = 0;
    } catch (error) {
      // A refusal for the rate limit or a passing outage: wait longer, then ask again.
      if (error.name === "AbortError" || error.status === 404 || error.status === 401) throw error;
      failures += 1;
      if (view === v) fill(byId("batch-progress-text"), `Waiting for the service (${error.message})…`);
      await sleep(POLL_MS * Math.min(2 ** failures, 15), v.controller.signal);
      continue;
    }
    if (ENDED.has(data.status)) return data;
    if (current(v, data)) render(data);
    await sleep(POLL_MS, v.controller.signal);
  }
}

function stop() {
  if (!view) return;
  view.controller.abort();
  clearTimeout(view.timer);
  view = null;
}

async function show(id, returnTo) {
  stop();
  const v = {
    id,
    controller: new AbortController(),
    offset: 0,
    filter: "",
    rows: new Map(),
    timer: null,
    lastRefresh: 0,
    total: 0,
  };
  view = v;
  byId("batch-filter").value = "";
  byId("batch").hidden = false;
  byId("batch-aggregate").hidden = true;
  byId("batch-running").hidden = true;
  fill(byId("batch-meta"), "");
  fill(byId("batch-counts"));
  fill(byId("batch-items"));
  fill(byId("batch-progress-text"), "Loading the batch…");
  byId("batch-share-link").value = `${location.origin}/#/batch/${id}`;
  try {
    let data = await load(v);
    v.total = data.total_conversations;
    render(data);
    focusAfterShow(returnTo);
    if (!ENDED.has(data.status)) {
      data = await follow(v);
      if (view !== v) return;
      if (!current(v, data)) data = await load(v); // a filter or a page chosen meanwhile
      render(data);
      announce(data.status === "cancelled" ? "The batch was cancelled." : "The batch is complete.");
    }
  } catch (error) {
    if (error.name === "AbortError" || view !== v) return;
    const text =
      error.status === 404
        ? `No batch ${id} here: it may have expired or belong to another API key.`
        : `The batch could not be loaded: ${error.message}`;
    fill(byId("batch-progress-text"), text);
  }
}

function focusAfterShow(returnTo) {
  const link = returnTo && byId("batch-items").querySelector(`a[data-analysis="${CSS.escape(returnTo)}"]`);
  if (link) link.focus();
  else byId("batch-heading").focus();
}

async function onPage(step) {
  const v = view;
  if (!v) return;
  v.offset = Math.max(0, v.offset + step * PAGE);
  try {
    const data = await load(v);
    if (!current(v, data)) return;
    renderItems(data);
    announce(`Showing conversations ${byId("batch-page").textContent}.`);
  } catch (error) {
    if (error.name !== "AbortError") announce(`The page could not be loaded: ${error.message}`);
  }
}

async function onFilter() {
  const v = view;
  if (!v) return;
  v.filter = byId("batch-filter").value;
  v.offset = 0;
  try {
    const data = await load(v);
    if (!current(v, data)) return;
    renderItems(data);
    announce(v.filter ? byId("batch-shown").textContent : "Showing all conversations.");
  } catch (error) {
    if (error.name !== "AbortError") announce(`The conversations could not be loaded: ${error.message}`);
  }
}

async function onCancel() {
  if (!view) return;
  const button = byId("batch-cancel");
  button.disabled = true;
  try {
    const done = await api.cancelBatch(view.id);
    announce(`Cancelling ${done.cancelled} conversations…`);
  } catch (error) {
    button.disabled = false;
    fill(byId("batch-progress-text"), `Could not cancel: ${error.message}`);
  }
}

async function onPriority() {
  if (!view) return;
  const button = byId("batch-priority-apply");
  const priority = byId("batch-priority").value;
  button.disabled = true;
  try {
    const done = await api.prioritiseBatch(view.id, priority);
    const n = done.moved;
    announce(`${n} queued conversation${n === 1 ? "" : "s"} moved to ${priority} priority.`);
  } catch (error) {
    announce(`Could not change the priority: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---- opening an item, and coming back ---------------------------------------------------

async function openItem(event, item) {
  event.preventDefault();
  const batchId = view.id;
  const submitted = sources.get(batchId);
  const source = submitted && submitted[item.position];
  if (source && source.ref === item.id && !recall(TRANSCRIPT_ITEM + item.analysis_id)) {
    try {
      // The service keeps no conversation text: the transcript of what this tab submitted.
      const { text, ...rest } = source.body;
      const transcript = await api.transcript(text === undefined ? rest : { ...rest, conversation_text: text });
      remember(TRANSCRIPT_ITEM + item.analysis_id, JSON.stringify(transcript));
    } catch {
      // the result view explains that the transcript is not shown
    }
  }
  remember(PARENT_ITEM + item.analysis_id, batchId);
  location.hash = `#/analysis/${item.analysis_id}`;
}

function setBackLink(analysisId) {
  const batchId = analysisId ? recall(PARENT_ITEM + analysisId) : null;
  byId("batch-back").hidden = !batchId;
  if (batchId) byId("batch-back-link").setAttribute("href", `#/batch/${encodeURIComponent(batchId)}`);
}

// ---- exports and the share link ---------------------------------------------------------

const EXTENSIONS = { jsonl: "jsonl", csv: "csv", markdown: "md" };

async function onExport(event) {
  const button = event.target.closest("button[data-batch-export]");
  if (!button || !view) return;
  const format = button.dataset.batchExport;
  button.disabled = true;
  try {
    const blob = await api.exportedBatch(view.id, format);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: `batch-${view.id}.${EXTENSIONS[format]}` });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    announce(`Exported ${button.textContent.replace("Export ", "")}.`);
  } catch (error) {
    announce(`Export failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function onCopy() {
  const input = byId("batch-share-link");
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Link copied.");
  } catch {
    input.select();
    announce("Select the link and copy it.");
  }
}

// ---- routing ----------------------------------------------------------------------------

let lastAnalysis = null; // the item last shown, to focus its link on the way back

function route() {
  const match = ROUTE.exec(location.hash);
  const analysis = ANALYSIS_ROUTE.exec(location.hash);
  setBackLink(analysis ? analysis[1] : null);
  if (match) {
    const returnTo = lastAnalysis;
    lastAnalysis = null;
    show(match[1], returnTo);
    return;
  }
  lastAnalysis = analysis ? analysis[1] : null;
  stop();
  byId("batch").hidden = true;
}

function start() {
  byId("batch-files").addEventListener("change", (event) => chooseFiles([...event.target.files]));
  setupDrop();
  byId("file").addEventListener("change", (event) => offerBatch([...event.target.files]));
  byId("conversation").addEventListener("drop", (event) => {
    if (event.dataTransfer) offerBatch([...event.dataTransfer.files]);
  });
  byId("batch-form").addEventListener("submit", onSubmit);
  byId("batch-cancel").addEventListener("click", onCancel);
  byId("batch-priority-apply").addEventListener("click", onPriority);
  byId("batch-copy-link").addEventListener("click", onCopy);
  byId("batch-exports").addEventListener("click", onExport);
  byId("batch-previous").addEventListener("click", () => onPage(-1));
  byId("batch-next").addEventListener("click", () => onPage(1));
  byId("batch-filter").addEventListener("change", onFilter);
  window.addEventListener("hashchange", route);
  route();
}

start();
