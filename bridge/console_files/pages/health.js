// Health (admin): the gateway's own probes, and every model's observed state.

import { empty, failure, fmt, h, loading, replace } from "../dom.js";
import { healthBadge } from "./catalog.js";
import { allModels } from "./owner.js";

async function probe(path, signal) {
  try {
    const response = await fetch(path, { signal, cache: "no-store", credentials: "omit" });
    return { ok: response.ok, text: response.ok ? "ok" : `HTTP ${response.status}` };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { ok: false, text: "unreachable" };
  }
}

export async function renderHealth(body, ctx) {
  const gateway = h("section", { class: "totals", "aria-label": "Gateway" }, loading("health"));
  const models = h("section", { class: "card", "aria-labelledby": "mh" },
    h("h2", { id: "mh", text: "Models, worst first" }), loading("models"));
  replace(body, gateway, models);
  const [alive, ready] = await Promise.all([probe("/healthz", ctx.signal),
    probe("/readyz", ctx.signal)]);
  replace(gateway, [["Alive (/healthz)", alive], ["Ready (/readyz)", ready]].map(([label, r]) =>
    h("div", { class: "card total" }, h("p", { class: "total-label", text: label }),
      h("p", { class: `total-value ${r.ok ? "good" : "bad"}`, text: r.text }))));
  try {
    const all = await allModels(ctx.signal);
    const rank = (m) => (m.enabled === false ? 3 : { unhealthy: 0, degraded: 1 }[m.stats.health] ?? 2);
    all.sort((a, b) => rank(a) - rank(b) || b.stats.error_rate - a.stats.error_rate);
    if (!all.length) return replace(models, models.firstChild, empty("No models registered."));
    replace(models, models.firstChild, h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Model", "State", "Requests", "Error rate", "Latency p50",
        "TTFT p50"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, all.map((m) => h("tr", {}, h("th", { scope: "row", text: m.name }),
        h("td", {}, healthBadge(m)), h("td", { text: fmt.int(m.stats.requests) }),
        h("td", { text: fmt.pct(m.stats.error_rate) }), h("td", { text: fmt.ms(m.stats.p50_latency_ms) }),
        h("td", { text: fmt.ms(m.stats.ttft_p50_ms) })))))));
  } catch (error) {
    if (error.name !== "AbortError") replace(models, models.firstChild, failure(error));
  }
  return undefined;
}
