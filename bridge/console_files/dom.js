// Building the page from data, safely: text always goes through text nodes (textContent),
// attributes through setAttribute with names written here, never HTML parsed from strings.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      node.textContent = String(value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

// -- states every panel shows while it loads, when it has nothing, and when it failed --------

export function loading(what) {
  return h("p", { class: "state loading", role: "status" },
    h("span", { class: "spinner", "aria-hidden": "true" }), `Loading ${what}…`);
}

export function empty(message, ...hint) {
  return h("div", { class: "state empty" }, h("p", { text: message }), ...hint);
}

export function failure(error, retry) {
  const status = error && error.status ? ` (HTTP ${error.status})` : "";
  return h("div", { class: "state error", role: "alert" },
    h("p", {}, h("strong", { text: "Could not load this" + status + ": " }),
      error && error.message ? error.message : String(error)),
    retry ? h("button", { type: "button", onclick: retry }, "Try again") : null);
}

// -- formats ---------------------------------------------------------------------------------

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD",
  minimumFractionDigits: 2, maximumFractionDigits: 6 });
const count = new Intl.NumberFormat("en-US");

const compact = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });

export const fmt = {
  usdTick: (n) => `$${compact.format(n)}`,
  intTick: (n) => compact.format(n),
  usd: (n) => (typeof n === "number" ? usd.format(n) : "—"),
  int: (n) => (typeof n === "number" ? count.format(n) : "—"),
  ms: (n) => (typeof n === "number" && n > 0 ? `${count.format(Math.round(n))} ms` : "—"),
  pct: (n) => (typeof n === "number" ? `${(n * 100).toFixed(1)} %` : "—"),
  score: (n) => (typeof n === "number" && n > 0 ? n.toFixed(2) : "—"),
  date: (s) => (s ? new Date(s).toLocaleString() : "—"),
};

// A labelled form control: <label> bound to the control, a hint, and a slot for its error.
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const describedBy = [];
  let hintNode = null;
  if (hint) {
    hintNode = h("p", { class: "hint", id: `${id}-hint`, text: hint });
    describedBy.push(hintNode.id);
  }
  describedBy.push(error.id);
  control.setAttribute("aria-describedby", describedBy.join(" "));
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control, hintNode,
    error);
}

export function showFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  control.setAttribute("aria-invalid", "true");
  if (error) {
    error.textContent = message;
    error.hidden = false;
  }
}

export function clearFieldErrors(form) {
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
  for (const error of form.querySelectorAll(".field-error")) {
    error.textContent = "";
    error.hidden = true;
  }
}

export function select(options, attrs = {}) {
  return h("select", attrs, options.map(([value, label]) =>
    h("option", { value, text: label ?? value })));
}

// Only URLs a preview may load: https, or inline image/audio data.
export function safeMediaUrl(url, kind) {
  if (typeof url !== "string") return null;
  if (url.startsWith("https://")) return url;
  const prefix = `data:${kind}/`;
  return url.slice(0, prefix.length).toLowerCase() === prefix ? url : null;
}
