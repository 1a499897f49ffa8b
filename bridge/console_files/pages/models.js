// A provider's own models (an admin's: all of them): register, edit, disable, enable.

import { api, ApiError, get } from "../api.js";
import { clearFieldErrors, empty, failure, field, fmt, h, loading, replace, select,
  showFieldError } from "../dom.js";
import { healthBadge, priceText } from "./catalog.js";
import { ownModels } from "./owner.js";

export async function renderModels(body, ctx) {
  const list = h("section", { class: "card", "aria-labelledby": "models-h" },
    h("h2", { id: "models-h", text: ctx.role === "admin" ? "Every model" : "Your models" }));
  const formSlot = h("div", {});
  replace(body, formSlot, list);

  async function refresh() {
    replace(list, list.firstChild, loading("models"));
    try {
      const models = await ownModels(ctx);
      drawList(models);
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(list, list.firstChild, failure(error, refresh));
    }
  }

  function openForm(model) {
    replace(formSlot, modelForm(model, {
      onSaved: () => { replace(formSlot, registerButton()); refresh(); },
      onCancel: () => replace(formSlot, registerButton()),
    }));
    formSlot.querySelector("input, select").focus();
  }

  function registerButton() {
    return h("p", {}, h("button", { type: "button", class: "primary", id: "register-open",
      onclick: () => openForm(null) }, "Register a model"));
  }

  function drawList(models) {
    if (!models.length) {
      replace(list, list.firstChild, empty("No models yet.",
        h("p", { class: "hint", text: "Register one: it starts taking traffic at once." })));
      return;
    }
    const rows = models.map((model) => h("tr", { "data-model": model.name },
      h("th", { scope: "row", text: model.name }), h("td", { text: model.type }),
      ctx.role === "admin" ? h("td", { text: model.owner }) : null,
      h("td", {}, healthBadge(model)), h("td", { text: priceText(model.pricing) }),
      h("td", { text: fmt.int(model.stats.requests) }),
      h("td", { text: fmt.pct(model.stats.error_rate) }),
      h("td", { class: "actions" },
        h("button", { type: "button", onclick: () => openForm(model),
          "aria-label": `Edit ${model.name}` }, "Edit"),
        h("button", { type: "button", "aria-label": `${model.enabled ? "Disable" : "Enable"} ${model.name}`,
          onclick: (event) => toggle(model, event.target) },
        model.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", "aria-label": `Run the conformance check of ${model.name}`,
          onclick: (event) => check(model, event.target) }, "Check"))));
    const heads = ["Name", "Type", ctx.role === "admin" ? "Owner" : null, "State", "Price",
      "Requests", "Error rate", "Actions"].filter(Boolean);
    replace(list, list.firstChild, h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows))));
  }

  async function toggle(model, button) {
    button.disabled = true;
    try {
      await api("PATCH", `/v1/models/${encodeURIComponent(model.name)}`, { enabled: !model.enabled });
      await refresh();
    } catch (error) {
      button.disabled = false;
      button.after(failure(error));
    }
  }

  async function check(model, button) {
    button.disabled = true;
    replace(report, h("section", { class: "card", "aria-label": "Conformance check" },
      loading(`the conformance check of ${model.name}`)));
    try {
      const result = await api("POST", `/v1/models/${encodeURIComponent(model.name)}/check`);
      replace(report, checkReport(model.name, result));
    } catch (error) {
      replace(report, h("section", { class: "card" }, failure(error)));
    } finally {
      button.disabled = false;
    }
  }

  const report = h("div", { "aria-live": "polite" });
  body.append(report);
  replace(formSlot, registerButton());
  await refresh();
}

// Each control carries the API's name for its field, so a 400 lands beside the right one.
const FIELDS = [
  ["name", "Name", () => h("input", { type: "text", autocomplete: "off" })],
  ["type", "Type", () => select([["text"], ["image"], ["audio"]])],
  ["endpoint", "Endpoint URL", () => h("input", { type: "url", placeholder: "https://…" })],
  ["auth_type", "Auth", () => select([["bearer"], ["api_key", "x-api-key"], ["none"]])],
  ["credentials", "Provider API key", () => h("input", { type: "password", autocomplete: "off" }),
    "Write-only: never shown again. Leave empty to keep the stored one."],
  ["pricing.input_per_1k_tokens", "Input price (USD / 1k tokens)",
    () => h("input", { type: "number", step: "any", inputmode: "decimal" })],
  ["pricing.output_per_1k_tokens", "Output price (USD / 1k tokens)",
    () => h("input", { type: "number", step: "any", inputmode: "decimal" })],
  ["pricing.per_request_usd", "Price per call (USD)",
    () => h("input", { type: "number", step: "any", inputmode: "decimal" }),
    "A flat fee per successful call (an image, a clip), added to the token prices"],
  ["capabilities", "Capabilities", () => h("input", { type: "text" }), "Comma-separated, e.g. chat, coding"],
  ["specialties", "Specialties", () => h("input", { type: "text" }), "Comma-separated"],
  ["performance.avg_latency_ms", "Typical latency (ms)",
    () => h("input", { type: "number", step: "any" })],
  ["performance.accuracy_score", "Accuracy score (0–1)",
    () => h("input", { type: "number", step: "any" })],
  ["cost_efficiency", "Cost efficiency", () => select([["medium"], ["low"], ["high"]])],
  ["description", "Description", () => h("textarea", { rows: 2 })],
];
const LISTS = new Set(["capabilities", "specialties"]);
const NUMBERS = (path) => path.includes(".");

function modelForm(model, { onSaved, onCancel }) {
  const controls = new Map();
  const fields = FIELDS.map(([path, label, make, hint]) => {
    const control = make();
    control.name = path;
    control.dataset.field = path;
    controls.set(path, control);
    return field(label, control, hint);
  });
  if (model) fill(controls, model);
  const problem = h("div", { class: "form-problem", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, model ? "Save changes" : "Register");
  const form = h("form", { class: "card model-form", novalidate: true, "aria-labelledby": "model-form-h" },
    h("h2", { id: "model-form-h", text: model ? `Edit ${model.name}` : "Register a model" }),
    h("div", { class: "grid" }, fields), problem,
    h("div", { class: "actions" }, save,
      h("button", { type: "button", onclick: onCancel }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(problem);
    save.disabled = true;
    try {
      const body = bodyOf(controls, model);
      if (model) await api("PATCH", `/v1/models/${encodeURIComponent(model.name)}`, body);
      else await api("POST", "/v1/models", body);
      onSaved();
    } catch (error) {
      const control = error instanceof ApiError ? controlFor(controls, error.field) : null;
      if (control) {
        showFieldError(control, error.message);
        control.focus();
      } else {
        replace(problem, failure(error));
      }
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function controlFor(controls, path) {
  if (!path) return null;
  if (controls.has(path)) return controls.get(path);
  for (const [name, control] of controls) {
    if (path.startsWith(`${name}.`) || name.startsWith(`${path}.`)) return control;
  }
  return null;
}

function fill(controls, model) {
  for (const [path, control] of controls) {
    if (path === "credentials") continue;
    const value = path.split(".").reduce((v, k) => (v == null ? v : v[k]), model);
    control.value = Array.isArray(value) ? value.join(", ") : (value ?? "");
  }
  controls.get("name").readOnly = true;
}

function bodyOf(controls, model) {
  const body = {};
  for (const [path, control] of controls) {
    const raw = control.value.trim();
    if (path === "name" && model) continue;
    if (path === "credentials") {
      if (raw) body.credentials = { api_key: raw };
    } else if (LISTS.has(path)) {
      body[path] = raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : [];
    } else if (NUMBERS(path)) {
      if (raw === "") continue;
      const [group, name] = path.split(".");
      body[group] = { ...(body[group] || {}), [name]: Number(raw) };
    } else if (raw !== "" || path === "description") {
      body[path] = raw;
    }
  }
  return body;
}

// POST /v1/models/{name}/check's report (CONTRACT §3.1): one line a check.
function checkReport(name, result) {
  const checks = result.checks || [];
  return h("section", { class: "card", "aria-labelledby": "check-h" },
    h("h2", { id: "check-h", text: `Conformance of ${name}: ${result.passed ? "passed" : "failed"}` }),
    checks.length ? h("ul", { class: "checks" }, checks.map((c) => h("li", {},
      h("span", { class: `badge check-${c.result}`, text: c.result }), ` ${c.name}`,
      c.detail ? h("span", { class: "hint", text: ` — ${c.detail}` }) : null))) : null);
}
