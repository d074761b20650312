// DOM helpers. Every string from a conversation or a result becomes a text node: nothing
// here parses markup, and the page's Trusted Types policy refuses markup strings anyway.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

/** An HTML element: ``el("li", {class: "x"}, "text", child)``. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  return append(node, children);
}

/** An SVG element. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  return append(node, children);
}

export function byId(id) {
  return document.getElementById(id);
}

/** Replace the children of ``node``. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export function percent(value) {
  return typeof value === "number" ? `${Math.round(value * 100)} %` : "—";
}

export function number(value, digits = 2) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

export function humanise(kind) {
  const text = String(kind ?? "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "messages 3, 4" or "messages 3–9" for a list of indices. */
export function describeMessages(indices) {
  const list = (indices || []).filter(Number.isInteger);
  if (list.length === 0) return "no message cited";
  if (list.length === 1) return `message ${list[0]}`;
  const sorted = [...list].sort((a, b) => a - b);
  const contiguous = sorted.every((v, i) => i === 0 || v === sorted[i - 1] + 1);
  if (contiguous && sorted.length > 2) return `messages ${sorted[0]}–${sorted.at(-1)}`;
  if (sorted.length > 8) return `messages ${sorted.slice(0, 8).join(", ")} and ${sorted.length - 8} more`;
  return `messages ${sorted.join(", ")}`;
}
