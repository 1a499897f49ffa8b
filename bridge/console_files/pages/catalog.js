// The model catalog: filters, prices, and what the gateway observed of each model.

import { get, query } from "../api.js";
import { empty, failure, field, fmt, h, loading, replace, select } from "../dom.js";

const TYPES = [["", "Any type"], ["text"], ["image"], ["audio"]];

export async function renderCatalog(body, ctx) {
  const type = select(TYPES, { name: "type" });
  const capability = h("input", { type: "search", name: "capability", placeholder: "e.g. chat" });
  const specialty = h("input", { type: "search", name: "specialty", placeholder: "e.g. coding" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter models" },
    field("Type", type), field("Capability", capability), field("Specialty", specialty),
    h("button", { type: "submit" }, "Filter"));
  const list = h("div", { class: "cards", "aria-live": "polite" });
  const more = h("div", { class: "more" });
  replace(body, form, list, more);

  let token = "";
  async function load(reset) {
    if (reset) {
      token = "";
      replace(list, loading("models"));
    }
    replace(more);
    try {
      const page = await get(`/v1/models${query({ type: type.value, capability:
        capability.value.trim(), specialty: specialty.value.trim(), page_token: token })}`,
        { signal: ctx.signal });
      if (reset) replace(list);
      list.append(...page.models.map(modelCard));
      if (!list.children.length) {
        replace(list, empty("No model matches these filters.",
          h("p", { class: "hint", text: "Clear a filter, or ask a provider to register one." })));
      }
      token = page.next_page_token || "";
      if (token) {
        replace(more, h("button", { type: "button", onclick: () => load(false) }, "Load more"));
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(list, failure(error, () => load(true)));
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  await load(true);
}

export function healthBadge(model) {
  const health = (model.stats && model.stats.health) || "unknown";
  const state = model.enabled === false ? "disabled" : health;
  return h("span", { class: `badge health-${state}`, text: state });
}

export function priceText(pricing = {}) {
  const parts = [`${fmt.usd(pricing.input_per_1k_tokens)} in`,
    `${fmt.usd(pricing.output_per_1k_tokens)} out per 1k tokens`];
  if (pricing.per_request_usd) parts.push(`+ ${fmt.usd(pricing.per_request_usd)} a call`);
  return parts.join(" · ");
}

function modelCard(model) {
  const stats = model.stats || {};
  const verification = model.verification;
  const facts = [
    ["Price", priceText(model.pricing)],
    ["Latency p50", stats.p50_latency_ms ? `${fmt.ms(stats.p50_latency_ms)} observed`
      : `${fmt.ms((model.performance || {}).avg_latency_ms)} declared`],
    ["Time to first token", fmt.ms(stats.ttft_p50_ms)],
    ["Error rate", fmt.pct(stats.error_rate)],
    ["Requests seen", fmt.int(stats.requests)],
    ["Quality", stats.observed_quality !== undefined
      ? `${fmt.score(stats.observed_quality)} observed (${fmt.int(stats.feedback_count)} ratings)`
      : `${fmt.score((model.performance || {}).accuracy_score)} declared`],
  ];
  if (verification) {
    facts.push(["Verification", `${verification.passed ? "passed" : "failed"} · ` +
      `${fmt.date(verification.verified_at)}${verification.summary ? ` · ${verification.summary}` : ""}`]);
  }
  return h("article", { class: "card model", "data-model": model.name },
    h("header", {}, h("h2", { text: model.name }),
      h("span", { class: "badge", text: model.type }), healthBadge(model)),
    model.description ? h("p", { class: "description", text: model.description }) : null,
    h("dl", { class: "facts" }, facts.map(([term, value]) =>
      [h("dt", { text: term }), h("dd", { text: value })])),
    chips("Capabilities", model.capabilities), chips("Specialties", model.specialties));
}

function chips(label, values) {
  if (!values || !values.length) return null;
  return h("p", { class: "chips" }, h("span", { class: "visually-hidden", text: `${label}: ` }),
    values.map((value) => h("span", { class: "chip", text: value })));
}
