// Keys (admin): create one (shown once), change its limits and budget, revoke it.

import { api, ApiError, get } from "../api.js";
import { clearFieldErrors, empty, failure, field, fmt, h, loading, replace, select,
  showFieldError } from "../dom.js";

export async function renderKeys(body, ctx) {
  const created = h("div", { id: "key-created" });
  const list = h("section", { class: "card", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h", text: "Keys" }));
  const revoked = h("input", { type: "checkbox", id: "keys-revoked" });
  replace(body, createForm(created, () => refresh()), created,
    h("p", {}, h("label", { class: "check", for: "keys-revoked" }, revoked, " Show revoked keys")),
    list);
  revoked.addEventListener("change", () => refresh());

  async function refresh() {
    replace(list, list.firstChild, loading("keys"));
    try {
      const { keys } = await get(`/v1/keys${revoked.checked ? "?include_revoked=true" : ""}`,
        { signal: ctx.signal });
      if (!keys.length) {
        replace(list, list.firstChild, empty("No keys yet."));
        return;
      }
      replace(list, list.firstChild, h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Role", "Id", "Requests/min", "Tokens/min", "Budget",
          "Created", "Actions"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, keys.map((key) => keyRow(key, refresh))))));
    } catch (error) {
      if (error.name !== "AbortError") replace(list, list.firstChild, failure(error, refresh));
    }
  }
  await refresh();
}

function limitText(n) {
  return n ? fmt.int(n) : "no limit";
}

function keyRow(key, refresh) {
  const actions = h("td", { class: "actions" });
  const row = h("tr", { "data-key": key.id, class: key.revoked ? "revoked" : null },
    h("th", { scope: "row", text: key.name || "—" }), h("td", { text: key.role }),
    h("td", {}, h("code", { text: key.id })),
    h("td", { text: limitText(key.rate_limit.requests_per_minute) }),
    h("td", { text: limitText(key.rate_limit.tokens_per_minute) }),
    h("td", { text: key.budget_usd === null ? "none" : fmt.usd(key.budget_usd) }),
    h("td", { text: fmt.date(key.created_at) }), actions);
  if (key.revoked) {
    replace(actions, h("span", { class: "badge health-disabled", text: "revoked" }));
    return row;
  }
  const idle = () => replace(actions,
    h("button", { type: "button", "aria-label": `Edit limits of ${key.name || key.id}`,
      onclick: () => edit() }, "Limits"),
    h("button", { type: "button", class: "danger", "aria-label": `Revoke ${key.name || key.id}`,
      onclick: () => confirm() }, "Revoke"));
  const confirm = () => {
    const yes = h("button", { type: "button", class: "danger", onclick: async () => {
      yes.disabled = true;
      try {
        await api("DELETE", `/v1/keys/${encodeURIComponent(key.id)}`);
        refresh();
      } catch (error) {
        actions.append(failure(error));
      }
    } }, "Confirm revoke");
    replace(actions, yes, h("button", { type: "button", onclick: idle }, "Cancel"));
    yes.focus();
  };
  const edit = () => {
    const rpm = h("input", { type: "number", min: 0, value: key.rate_limit.requests_per_minute,
      "data-field": "rate_limit.requests_per_minute" });
    const tpm = h("input", { type: "number", min: 0, value: key.rate_limit.tokens_per_minute,
      "data-field": "rate_limit.tokens_per_minute" });
    const budget = h("input", { type: "number", min: 0, step: "any", value: key.budget_usd ?? "",
      "data-field": "budget_usd" });
    const form = h("form", { class: "inline", novalidate: true },
      field("Requests/min (0: none)", rpm), field("Tokens/min (0: none)", tpm),
      field("Budget USD", budget), h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: idle }, "Cancel"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      const patch = { rate_limit: { requests_per_minute: Number(rpm.value || 0),
        tokens_per_minute: Number(tpm.value || 0) } };
      if (budget.value !== "") patch.budget_usd = Number(budget.value);
      try {
        await api("PATCH", `/v1/keys/${encodeURIComponent(key.id)}`, patch);
        refresh();
      } catch (error) {
        const control = form.querySelector(`[data-field="${CSS.escape(error.field || "")}"]`);
        if (control) showFieldError(control, error.message);
        else form.append(failure(error));
      }
    });
    replace(actions, form);
    rpm.focus();
  };
  idle();
  return row;
}

function createForm(slot, onCreated) {
  const role = select([["consumer"], ["provider"], ["admin"]], { "data-field": "role" });
  const name = h("input", { type: "text", autocomplete: "off", "data-field": "name" });
  const rpm = h("input", { type: "number", min: 0, "data-field": "rate_limit.requests_per_minute" });
  const tpm = h("input", { type: "number", min: 0, "data-field": "rate_limit.tokens_per_minute" });
  const budget = h("input", { type: "number", min: 0, step: "any", "data-field": "budget_usd" });
  const problem = h("div", {});
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "create-h" },
    h("h2", { id: "create-h", text: "Create a key" }),
    h("div", { class: "row" }, field("Role", role), field("Name", name),
      field("Requests per minute", rpm, "Empty: no limit"),
      field("Tokens per minute", tpm, "Empty: no limit"), field("Budget (USD)", budget, "Empty: none")),
    problem, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create key")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    replace(problem);
    const body = { role: role.value, name: name.value.trim() };
    const limits = {};
    if (rpm.value) limits.requests_per_minute = Number(rpm.value);
    if (tpm.value) limits.tokens_per_minute = Number(tpm.value);
    if (Object.keys(limits).length) body.rate_limit = limits;
    if (budget.value) body.budget_usd = Number(budget.value);
    try {
      const key = await api("POST", "/v1/keys", body);
      form.reset();
      replace(slot, shownOnce(key, () => replace(slot)));
      slot.querySelector("button").focus();
      onCreated();
    } catch (error) {
      const control = error instanceof ApiError && error.field
        ? form.querySelector(`[data-field="${CSS.escape(error.field)}"]`) : null;
      if (control) showFieldError(control, error.message);
      else replace(problem, failure(error));
    }
  });
  return form;
}

function shownOnce(key, dismiss) {
  const value = h("input", { type: "text", readonly: true, value: key.key, id: "new-key",
    class: "secret", spellcheck: "false" });
  const copied = h("span", { role: "status", class: "hint" });
  return h("div", { class: "card once", role: "region", "aria-labelledby": "once-h" },
    h("h2", { id: "once-h", text: `Key for ${key.name || key.role} created` }),
    h("p", { text: "Copy it now: it is shown this once and cannot be read again." }),
    field("New key", value),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "primary", onclick: async () => {
        try {
          await navigator.clipboard.writeText(key.key);
          copied.textContent = "Copied.";
        } catch {
          value.select();
          copied.textContent = "Selected: press Ctrl+C to copy.";
        }
      } }, "Copy key"),
      h("button", { type: "button", onclick: dismiss }, "I have stored it"), copied));
}
