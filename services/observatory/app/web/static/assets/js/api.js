// Calls to the service's API, with the API key (if any) from this tab's session storage.

const KEY_ITEM = "observatory.apiKey";

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || "";
  } catch {
    return "";
  }
}

export function setKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_ITEM, value);
    else sessionStorage.removeItem(KEY_ITEM);
  } catch {
    // storage disabled: the key lives only in the field
  }
}

function headers(extra) {
  const out = { ...extra };
  const key = getKey().trim();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function failure(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") detail = body.detail;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    if (wait) detail += ` (try again in ${wait} s)`;
  }
  return new ApiError(response.status, detail);
}

async function call(method, path, { body, signal, accept = "application/json" } = {}) {
  const init = { method, signal, headers: headers({ Accept: accept }) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response;
}

const analysisPath = (id) => `/api/v1/analyze/${encodeURIComponent(id)}`;

export async function transcript(body, signal) {
  return (await call("POST", "/api/v1/transcript", { body, signal })).json();
}

export async function submit(body, signal) {
  return (await call("POST", "/api/v1/analyze", { body, signal })).json();
}

export async function analysis(id, signal) {
  return (await call("GET", analysisPath(id), { signal })).json();
}

export async function cancel(id) {
  return (await call("POST", `${analysisPath(id)}/cancel`)).json();
}

/** The export as a Blob: ``format`` json, csv or markdown. */
export async function exported(id, format) {
  const accept = { json: "application/json", csv: "text/csv", markdown: "text/markdown" }[format];
  const query = format === "json" ? "" : `?format=${format}`;
  return (await call("GET", analysisPath(id) + query, { accept })).blob();
}

/** The curated examples, or null when this service has none. */
export async function examples() {
  let response;
  try {
    response = await fetch("/examples", { headers: headers({ Accept: "application/json" }) });
  } catch {
    return null;
  }
  if (!response.ok) return null;
  try {
    const body = await response.json();
    return Array.isArray(body.examples) ? body.examples : null;
  } catch {
    return null;
  }
}

export async function example(name) {
  return (await call("GET", `/examples/${encodeURIComponent(name)}`)).json();
}

/**
 * The analysis's server-sent events, read with fetch (EventSource cannot send the
 * Authorization header). Calls ``onEvent(name, data)`` until the stream ends.
 */
export function followEvents(id, onEvent, signal) {
  return readEvents(`${analysisPath(id)}/events`, onEvent, signal);
}

async function readEvents(path, onEvent, signal) {
  const response = await call("GET", path, { signal, accept: "text/event-stream" });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
      }
      if (data.length === 0) continue;
      let parsed = null;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch {
        continue;
      }
      onEvent(name, parsed);
    }
  }
}

// ---- batches ----------------------------------------------------------------------------

const batchPath = (id) => `/api/v1/analyze/batch/${encodeURIComponent(id)}`;

export async function submitBatch(body, signal) {
  return (await call("POST", "/api/v1/analyze/batch", { body, signal })).json();
}

/** The batch's status, counts and the page of items from ``offset``. */
export async function batch(id, { offset = 0, limit = 100, signal } = {}) {
  return (await call("GET", `${batchPath(id)}?offset=${offset}&limit=${limit}`, { signal })).json();
}

export async function cancelBatch(id) {
  return (await call("POST", `${batchPath(id)}/cancel`)).json();
}

/** Move the batch's queued items to ``priority`` (low, normal, high). */
export async function prioritiseBatch(id, priority) {
  return (await call("POST", `${batchPath(id)}/priority`, { body: { priority } })).json();
}

/** The batch's ``progress`` events (then one ``aggregate``), like ``followEvents``. */
export function followBatchEvents(id, onEvent, signal) {
  return readEvents(`${batchPath(id)}/events`, onEvent, signal);
}

/** An export of every item as a Blob: ``format`` jsonl, csv or markdown. */
export async function exportedBatch(id, format) {
  const accept = { jsonl: "application/x-ndjson", csv: "text/csv", markdown: "text/markdown" }[format];
  return (await call("GET", `${batchPath(id)}?format=${format}`, { accept })).blob();
}
