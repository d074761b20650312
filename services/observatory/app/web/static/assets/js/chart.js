// The tone trajectory as an SVG chart drawn from the result (no chart library).

import { svg } from "./dom.js";

const WIDTH = 800;
const HEIGHT = 240;
const PAD = { left: 44, right: 16, top: 16, bottom: 32 };
const MAX_POINTS = 400;

/**
 * ``trajectory``: [{index, score, label, smoothed?}]; ``shifts``: [{index, from, to,
 * magnitude}]. Returns an <svg> with a title and a description for screen readers.
 */
export function toneChart(trajectory, shifts, messageCount) {
  const points = trajectory.filter((p) => Number.isInteger(p.index) && typeof p.score === "number");
  const last = Math.max(1, (messageCount || 0) - 1, ...points.map((p) => p.index));
  const x = (index) => PAD.left + (index / last) * (WIDTH - PAD.left - PAD.right);
  const y = (score) => PAD.top + ((1 - Math.max(-1, Math.min(1, score))) / 2) * (HEIGHT - PAD.top - PAD.bottom);

  const lines = [];
  lines.push(svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: HEIGHT - PAD.bottom }));
  lines.push(svg("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: HEIGHT - PAD.bottom, y2: HEIGHT - PAD.bottom }));
  lines.push(svg("line", { class: "zero", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0) }));
  for (const [score, label] of [[1, "+1"], [0, "0"], [-1, "−1"]]) {
    lines.push(svg("text", { x: PAD.left - 8, y: y(score) + 4, "text-anchor": "end" }, label));
  }
  lines.push(svg("text", { x: PAD.left, y: HEIGHT - 8 }, "message 0"));
  lines.push(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end" }, `message ${last}`));

  const raw = points.map((p) => `${x(p.index).toFixed(1)},${y(p.score).toFixed(1)}`).join(" ");
  const smooth = points
    .map((p) => `${x(p.index).toFixed(1)},${y(typeof p.smoothed === "number" ? p.smoothed : p.score).toFixed(1)}`)
    .join(" ");
  const series = [
    svg("polyline", { class: "raw", points: raw }),
    svg("polyline", { class: "line", points: smooth }),
  ];
  if (points.length <= MAX_POINTS) {
    for (const p of points) {
      const label = ["positive", "negative"].includes(p.label) ? p.label : "neutral";
      series.push(
        svg(
          "circle",
          { class: `point-${label}`, cx: x(p.index).toFixed(1), cy: y(p.score).toFixed(1), r: 3.5 },
          svg("title", {}, `message ${p.index}: ${p.score.toFixed(2)} (${p.label})`),
        ),
      );
    }
  }
  const marks = (shifts || []).map((s) =>
    svg(
      "g",
      {},
      svg("line", { class: "shift", x1: x(s.index), x2: x(s.index), y1: PAD.top, y2: HEIGHT - PAD.bottom }),
      svg("text", { class: "shift-label", x: x(s.index) + 4, y: PAD.top + 12 }, `shift ${s.index}`),
      svg("title", {}, `tone shift at message ${s.index}: ${s.from} → ${s.to}`),
    ),
  );

  const n = (shifts || []).length;
  const description =
    `Tone of ${points.length} messages from −1 (negative) to +1 (positive); ` +
    (n ? `${n} shift${n > 1 ? "s" : ""} marked at ${shifts.map((s) => `message ${s.index}`).join(", ")}.` : "no shift.");
  return svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-labelledby": "tone-chart-title tone-chart-desc",
      preserveAspectRatio: "xMidYMid meet",
    },
    svg("title", { id: "tone-chart-title" }, "Tone trajectory"),
    svg("desc", { id: "tone-chart-desc" }, description),
    lines,
    series,
    marks,
  );
}
