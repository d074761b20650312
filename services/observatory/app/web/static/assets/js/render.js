// The result of an analysis, drawn into the page's result section.

import { toneChart } from "./chart.js";
import { byId, describeMessages, el, fill, humanise, number, percent } from "./dom.js";

/** A button that highlights the messages it cites when pressed. */
function citing(indices, select, ...content) {
  const list = (indices || []).filter(Number.isInteger);
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: "finding",
        "aria-pressed": "false",
        dataset: { messages: list.join(",") },
        onclick: (event) => select(list, event.currentTarget),
      },
      ...content,
    ),
  );
}

function section(id, visible) {
  byId(id).hidden = !visible;
}

function renderSummary(result) {
  const points = result.summary_points || [];
  fill(byId("summary"), points.length ? points.map((p) => el("li", {}, p)) : el("li", {}, "No summary (insights were not requested)."));
}

function renderThemes(result, select) {
  const themes = result.themes || [];
  fill(
    byId("themes"),
    themes.length
      ? themes.map((t) =>
          citing(
            t.messages,
            select,
            el("span", { class: "kind" }, t.label),
            el("span", { class: "meta" }, ` · ${(t.keywords || []).join(", ")} · ${describeMessages(t.messages)}`),
          ),
        )
      : el("li", {}, "No themes."),
  );
}

function renderConfidence(result) {
  const c = result.confidence || {};
  const rows = [
    ["Length", c.length],
    ["Clarity", c.clarity],
    ["Model certainty", c.model_certainty],
  ].map(([name, value], i) => {
    const id = `confidence-${i}`;
    return el(
      "div",
      { class: "meter-row" },
      el("span", { id }, name),
      typeof value === "number"
        ? el("meter", { min: 0, max: 1, value, "aria-labelledby": id })
        : el("span", {}, "not measured"),
      el("span", {}, typeof value === "number" ? percent(value) : "—"),
    );
  });
  fill(
    byId("confidence"),
    el("p", { class: "big" }, percent(result.confidence_score)),
    rows,
    c.explanation ? el("p", { class: "hint" }, c.explanation) : null,
  );
}

function renderObserver(result) {
  const o = result.observer || {};
  const tokens = (o.prompt_tokens || 0) + (o.completion_tokens || 0);
  const facts = [
    `Status: ${o.status || "unknown"}`,
    o.model ? `model ${o.model}` : null,
    Number.isInteger(o.chunks) && o.chunks ? `${o.chunks} chunk${o.chunks > 1 ? "s" : ""}` : null,
    tokens ? `${tokens} tokens` : null,
    typeof o.duration_ms === "number" && o.duration_ms ? `${(o.duration_ms / 1000).toFixed(1)} s` : null,
  ].filter(Boolean);
  fill(
    byId("observer"),
    el("p", {}, facts.join(" · ")),
    o.reason ? el("p", { class: "hint" }, o.reason) : null,
    result.observer_output ? el("p", { class: "narrative" }, String(result.observer_output)) : null,
  );
}

function renderSecurity(result, select) {
  const flags = (result.security && result.security.flags) || [];
  fill(
    byId("security"),
    flags.length
      ? flags.map((f) =>
          citing(
            f.messages,
            select,
            el("span", { class: "kind" }, humanise(f.kind)),
            el("span", { class: "meta" }, ` · ${describeMessages(f.messages)}`),
            f.excerpt ? el("span", { class: "excerpt" }, f.excerpt) : null,
          ),
        )
      : el("li", {}, "None."),
  );
}

function renderTone(sentiment, messageCount, select) {
  section("tone-section", Boolean(sentiment));
  if (!sentiment) return;
  const collaboration = sentiment.collaboration || {};
  fill(
    byId("tone-summary"),
    `Overall ${sentiment.overall_tone} (${number(sentiment.score)}), engagement ${sentiment.engagement_level}, ` +
      `${collaboration.label || "neutral"} collaboration.`,
  );
  fill(byId("tone-chart"), toneChart(sentiment.trajectory || [], sentiment.shifts || [], messageCount));
  fill(
    byId("shifts"),
    (sentiment.shifts || []).map((s) =>
      citing(
        [s.index],
        select,
        el("span", { class: "kind" }, `Shift at message ${s.index}`),
        el("span", { class: "meta" }, ` · ${s.from} → ${s.to}, magnitude ${number(s.magnitude)}`),
      ),
    ),
  );
}

function range(start, end) {
  const out = [];
  for (let i = start; i <= end; i += 1) out.push(i);
  return out;
}

function renderTopics(topics, select) {
  section("topics-section", Boolean(topics));
  if (!topics) return;
  const segments = topics.segments || [];
  const bar = el("div", { class: "timeline", role: "group", "aria-label": "Topic segments in order" });
  const list = el("ol", { class: "topic-list" });
  segments.forEach((s, i) => {
    const button = el(
      "button",
      {
        type: "button",
        class: `seg-${i % 6}`,
        title: `${s.label}: messages ${s.start}–${s.end}`,
        "aria-pressed": "false",
        onclick: (event) => select(range(s.start, s.end), event.currentTarget),
      },
      s.label,
    );
    button.style.flexGrow = String(Math.max(s.share || 0, 0.01));
    bar.appendChild(button);
    list.appendChild(
      el("li", {}, el("strong", {}, s.label), ` — messages ${s.start}–${s.end} (${percent(s.share)}): ${(s.keywords || []).join(", ")}`),
    );
  });
  const phrases = (topics.keyphrases || []).slice(0, 12).map((k) => k.phrase);
  fill(
    byId("topics"),
    segments.length ? [bar, list] : el("p", {}, "No topic segments."),
    phrases.length ? el("p", { class: "hint" }, `Keyphrases: ${phrases.join(", ")}`) : null,
  );
}

function latencyText(latency) {
  if (!latency) return "—";
  const parts = [];
  if (typeof latency.median === "number") parts.push(`median ${latency.median.toFixed(0)} s`);
  if (typeof latency.p90 === "number") parts.push(`p90 ${latency.p90.toFixed(0)} s`);
  return parts.join(", ") || "—";
}

function renderSpeakers(dynamics) {
  section("speakers-section", Boolean(dynamics));
  if (!dynamics) return;
  const latency = dynamics.response_latency || {};
  const columns = ["Speaker", "Role", "Messages", "Share of words", "Questions asked", "Average words", "Reply time"];
  const numeric = new Set([2, 3, 4, 5]);
  const head = el("tr", {}, columns.map((c, i) => el("th", { scope: "col", class: numeric.has(i) ? "num" : null }, c)));
  const rows = Object.entries(dynamics.speakers || {}).map(([name, s]) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, name),
      el("td", {}, s.role),
      el("td", { class: "num" }, s.messages),
      el("td", { class: "num" }, percent(s.share)),
      el("td", { class: "num" }, s.questions_asked),
      el("td", { class: "num" }, number(s.avg_length, 1)),
      el("td", {}, latencyText(latency[name])),
    ),
  );
  const turns = dynamics.turn_taking || {};
  const dominance = dynamics.dominance || {};
  fill(
    byId("speakers"),
    el("table", {}, el("caption", { class: "visually-hidden" }, "Speakers"), el("thead", {}, head), el("tbody", {}, rows)),
    el(
      "p",
      { class: "hint" },
      `${dynamics.total_turns} turns, reciprocity ${number(dynamics.reciprocity_score)}, ` +
        `alternation ${percent(turns.alternation_rate)}` +
        (dominance.speaker ? `, most words: ${dominance.speaker} (${percent(dominance.share)})` : "") +
        ".",
    ),
  );
}

function renderFindings(dialectic, select) {
  section("findings-section", Array.isArray(dialectic));
  if (!Array.isArray(dialectic)) return;
  fill(
    byId("findings"),
    dialectic.length
      ? dialectic.map((f) =>
          citing(
            f.messages,
            select,
            el("span", { class: "kind" }, humanise(f.type)),
            el(
              "span",
              { class: "meta" },
              ` · ${(f.speakers || []).join(" → ")} · ${describeMessages(f.messages)} · strength ${number(f.strength)}`,
            ),
            f.excerpt ? el("span", { class: "excerpt" }, f.excerpt) : null,
          ),
        )
      : el("li", {}, "No dialectic structure found."),
  );
}

function renderMoments(result, select) {
  const moments = result.key_moments;
  section("moments-section", Array.isArray(moments));
  if (!Array.isArray(moments)) return;
  fill(
    byId("moments"),
    moments.length
      ? moments.map((m) =>
          citing(
            [m.index],
            select,
            el("span", { class: "kind" }, `${humanise(m.kind)} at message ${m.index}`),
            m.why ? el("span", { class: "excerpt" }, m.why) : null,
          ),
        )
      : el("li", {}, "No key moments."),
  );
}

function renderTranscript(transcript) {
  const list = byId("transcript");
  if (!transcript) {
    fill(
      byId("transcript-note"),
      "The service keeps no conversation text, so the transcript is shown only in the tab that submitted it. " +
        "Findings above quote their excerpts.",
    );
    list.replaceChildren();
    return;
  }
  const speakers = transcript.speakers || [];
  fill(byId("transcript-note"), `${transcript.messages.length} messages, ${speakers.length} speakers; personal data masked.`);
  const items = transcript.messages.map((m) =>
    el(
      "li",
      { id: `msg-${m.index}`, class: `message role-${m.role}`, tabindex: "-1", "aria-label": `Message ${m.index}, ${m.speaker}` },
      el(
        "div",
        { class: "who" },
        m.speaker,
        el("span", { class: "index" }, `#${m.index}`),
        m.timestamp ? el("span", { class: "time" }, m.timestamp) : null,
      ),
      el("p", { class: "text" }, m.text),
    ),
  );
  list.replaceChildren(...items);
}

/** Draw ``result`` (a completed analysis) with ``transcript`` (or null). */
export function renderResult(result, transcript, select) {
  const patterns = result.patterns || {};
  const count = result.message_count || (transcript ? transcript.messages.length : 0);
  fill(
    byId("result-meta"),
    `${count} messages · completed in ${number(result.processing_time, 2)} s · kept until ${result.expires_at || "—"}`,
  );
  renderSummary(result);
  renderThemes(result, select);
  renderConfidence(result);
  renderObserver(result);
  renderSecurity(result, select);
  renderTone(patterns.sentiment, count, select);
  renderTopics(patterns.topics, select);
  renderSpeakers(patterns.dynamics);
  renderFindings(patterns.dialectic, select);
  renderMoments(result, select);
  renderTranscript(transcript);
}
