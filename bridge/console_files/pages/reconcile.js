// A provider's own counts beside the gateway's: report a period, see the differences.

import { api, get, query } from "../api.js";
import { clearFieldErrors, empty, failure, field, fmt, h, loading, replace, select,
  showFieldError } from "../dom.js";
import { ownModels } from "./owner.js";

const FIRST_OF_MONTH = () => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
};

const iso = (date) => date.toISOString().replace(".000Z", "Z");

export async function renderReconciliation(node, ctx) {
  const table = h("div", {});
  const section = h("section", { class: "card", "aria-labelledby": "rec-h" },
    h("h2", { id: "rec-h", text: "Reconciliation, this month" }),
    h("p", { class: "hint", text: "Your reported counts beside the gateway's; a difference is " +
      "marked." }), table);
  const formSlot = h("div", {});
  replace(node, section, formSlot);
  replace(table, loading("reconciliation"));
  let models;
  try {
    models = await ownModels(ctx);
  } catch (error) {
    if (error.name === "AbortError") return;
    replace(table, failure(error));
    return;
  }
  if (!models.length) {
    replace(table, empty("No models of yours to reconcile yet.",
      h("p", {}, h("a", { href: "#mine", text: "Register a model" }), " first.")));
    return;
  }
  const from = iso(FIRST_OF_MONTH());
  async function draw() {
    const rows = await Promise.all(models.map((m) => get(
      `/v1/usage/reconciliation${query({ model: m.name, from })}`, { signal: ctx.signal })));
    replace(table, h("div", { class: "scroll" }, h("table", { class: "reconciliation" },
      h("thead", {}, h("tr", {}, ["Model", "Requests: gateway", "yours", "difference",
        "Tokens: gateway", "yours", "difference"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows.map(row)))));
  }
  replace(formSlot, reportForm(models, from, draw));
  try {
    await draw();
  } catch (error) {
    if (error.name !== "AbortError") replace(table, failure(error, draw));
  }
}

function row(r) {
  return h("tr", { "data-model": r.model }, h("th", { scope: "row", text: r.model }),
    h("td", { text: fmt.int(r.gateway.requests) }), h("td", { text: fmt.int(r.provider.requests) }),
    difference(r.difference.requests), h("td", { text: fmt.int(r.gateway.tokens_processed) }),
    h("td", { text: fmt.int(r.provider.tokens_processed) }), difference(r.difference.tokens_processed));
}

function difference(value) {
  if (!value) return h("td", { class: "diff-none", text: "0" });
  return h("td", { class: "diff", "data-difference": value },
    h("span", { class: "badge warn", text: "differs" }), ` ${value > 0 ? "+" : ""}${fmt.int(value)}`);
}

function reportForm(models, from, onSent) {
  const model = select(models.map((m) => [m.name]), { "data-field": "model" });
  const requests = h("input", { type: "number", min: 0, step: 1, "data-field": "usage.requests" });
  const tokens = h("input", { type: "number", min: 0, step: 1,
    "data-field": "usage.tokens_processed" });
  const problem = h("div", { role: "alert" });
  const done = h("p", { role: "status", class: "hint" });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "report-h" },
    h("h2", { id: "report-h", text: "Report your own count for this month" }),
    h("div", { class: "row" }, field("Model", model), field("Requests", requests),
      field("Tokens processed", tokens)), problem, done,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send report")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(problem);
    done.textContent = "";
    try {
      await api("POST", "/v1/usage/reports", { model: model.value, from, to: iso(new Date()),
        usage: { requests: Number(requests.value || 0), tokens_processed: Number(tokens.value || 0) } });
      done.textContent = "Report kept.";
      await onSent();
    } catch (error) {
      const control = form.querySelector(`[data-field="${CSS.escape(error.field || "")}"]`);
      if (control) showFieldError(control, error.message);
      else replace(problem, failure(error));
    }
  });
  return form;
}
