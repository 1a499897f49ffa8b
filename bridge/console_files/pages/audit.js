// The audit trail (admin): every key, model and report change, newest first (CONTRACT §2.6).

import { ApiError, get, query } from "../api.js";
import { empty, failure, field, fmt, h, loading, replace } from "../dom.js";

export async function renderAudit(body, ctx) {
  const actor = h("input", { type: "search", name: "actor", placeholder: "key id" });
  const action = h("input", { type: "search", name: "action", placeholder: "e.g. key.revoke" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the audit trail" },
    field("Actor", actor), field("Action", action), h("button", { type: "submit" }, "Filter"));
  const list = h("div", {});
  const more = h("div", { class: "more" });
  replace(body, form, list, more);
  let token = "";
  let rows = null;

  async function load(reset) {
    if (reset) {
      token = "";
      rows = null;
      replace(list, loading("the audit trail"));
    }
    replace(more);
    try {
      const page = await get(`/v1/audit${query({ actor: actor.value.trim(),
        action: action.value.trim(), page_token: token })}`, { signal: ctx.signal });
      if (!rows) {
        rows = h("tbody", {});
        replace(list, h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {},
          ["When", "Actor", "Action", "Target", "Changes", "Request"].map((t) =>
            h("th", { scope: "col", text: t })))), rows)));
      }
      rows.append(...page.events.map((e) => h("tr", {}, h("td", { text: fmt.date(e.at) }),
        h("td", {}, h("code", { text: e.actor_key_id || "—" })), h("td", { text: e.action }),
        h("td", { text: e.target || "—" }),
        h("td", {}, h("code", { text: e.changes ? JSON.stringify(e.changes) : "—" })),
        h("td", {}, h("code", { text: e.request_id || "—" })))));
      if (!rows.children.length) replace(list, empty("Nothing recorded matches these filters."));
      token = page.next_page_token || "";
      if (token) replace(more, h("button", { type: "button", onclick: () => load(false) }, "Load more"));
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error instanceof ApiError && error.status === 404 && !token) {
        replace(list, empty("This gateway keeps no audit trail yet.",
          h("p", { class: "hint", text: "GET /v1/audit answered 404: the page fills in once the " +
            "gateway records changes." })));
      } else {
        replace(list, failure(error, () => load(true)));
      }
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  await load(true);
}
