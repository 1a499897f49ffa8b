// Spend (consumers), earnings (providers) and usage (admins): the same /v1/usage, scoped by
// the server to the key, drawn by model and by day.

import { currentKey, get, query } from "../api.js";
import { barChart } from "../chart.js";
import { empty, failure, field, fmt, h, loading, replace, select } from "../dom.js";
import { lastLimits, recentCalls } from "../history.js";
import { renderReconciliation } from "./reconcile.js";

const PERIODS = [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"]];
const MONEY = { consumer: "Spend", provider: "Earnings", admin: "Paid by consumers" };

export function periodStart(days) {
  const start = new Date();
  start.setUTCHours(0, 0, 0, 0);
  start.setUTCDate(start.getUTCDate() - Number(days) + 1);
  return start.toISOString().replace(".000Z", "Z");
}

export async function renderUsage(body, ctx) {
  const period = select(PERIODS, { name: "period" });
  period.value = "7"; // whole UTC days: the server answers from its hourly and daily roll-ups
  const totals = h("div", { class: "totals" });
  const charts = h("div", { class: "charts" });
  const extra = h("div", {});
  replace(body, h("form", { class: "filters", "aria-label": "Period" }, field("Period", period)),
    totals, charts, extra);

  async function load() {
    replace(totals, loading("usage"));
    replace(charts);
    const from = periodStart(period.value);
    try {
      const [byModel, byDay] = await Promise.all(["model", "day"].map((group_by) =>
        get(`/v1/usage${query({ group_by, from })}`, { signal: ctx.signal })));
      showTotals(totals, byModel.usage, ctx.role);
      if (!byModel.usage.requests) {
        replace(charts, empty("No calls in this period yet.",
          h("p", {}, "Make one in the ", h("a", { href: "#playground", text: "playground" }),
            ", then come back.")));
        return;
      }
      const money = MONEY[ctx.role];
      const usd = { format: fmt.usd, tick: fmt.usdTick };
      const count = { format: fmt.int, tick: fmt.intTick };
      const perModel = (metric) => byModel.groups.map((g) => ({ label: g.group,
        value: g.usage[metric] }));
      replace(charts,
        barChart({ id: "chart-cost-model", title: `${money} by model (USD)`, ...usd,
          points: perModel("cost_usd") }),
        barChart({ id: "chart-tokens-model", title: "Tokens by model", ...count,
          points: perModel("tokens_processed") }),
        barChart({ id: "chart-cost-day", title: `${money} by day (USD)`, ...usd,
          points: days(byDay.groups, from, "cost_usd") }),
        barChart({ id: "chart-tokens-day", title: "Tokens by day", ...count,
          points: days(byDay.groups, from, "tokens_processed") }));
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(totals, failure(error, load));
    }
  }
  period.addEventListener("change", load);
  await load();
  if (ctx.role === "consumer") {
    const key = await currentKey({ signal: ctx.signal });
    replace(extra, limitsPanel(key), recentPanel());
  }
  if (ctx.role === "provider") await renderReconciliation(extra, ctx);
}

// Every day of the period, zero where nothing happened.
function days(groups, from, metric) {
  const seen = new Map(groups.map((g) => [g.group.slice(0, 10), g.usage[metric]]));
  const points = [];
  for (let day = new Date(from); day <= new Date(); day.setUTCDate(day.getUTCDate() + 1)) {
    const label = day.toISOString().slice(0, 10);
    points.push({ label: label.slice(5), value: seen.get(label) || 0 });
  }
  return points;
}

function showTotals(node, usage, role) {
  const items = [[MONEY[role], fmt.usd(usage.cost_usd)], ["Requests", fmt.int(usage.requests)],
    ["Tokens", fmt.int(usage.tokens_processed)], ["Errors", fmt.int(usage.errors)]];
  replace(node, items.map(([label, value]) => h("div", { class: "card total" },
    h("p", { class: "total-label", text: label }), h("p", { class: "total-value", text: value }))));
}

function limitsPanel(key) {
  const seen = lastLimits();
  const remaining = (what) => (seen && seen.limits[`remaining-${what}`]) || "—";
  const section = h("section", { class: "card", "aria-labelledby": "limits-h" },
    h("h2", { id: "limits-h", text: "Limits and budget" }));
  const rows = [["requests", key.rate_limit.requests_per_minute],
    ["tokens", key.rate_limit.tokens_per_minute]].map(([what, limit]) => h("tr", {},
    h("th", { scope: "row", text: `${what} per minute` }),
    h("td", { text: limit ? fmt.int(limit) : "no limit" }),
    h("td", { text: limit ? remaining(what) : "—" })));
  section.append(h("table", {}, h("thead", {}, h("tr", {},
    ["Limit", "Allowed", "Left now"].map((t) => h("th", { scope: "col", text: t })))),
  h("tbody", {}, rows)), h("p", { class: "hint", text: seen
    ? `"Left now" as the gateway reported it at ${fmt.date(seen.at)}.`
    : "\"Left now\" shows once you make a call without streaming in the playground." }));
  if (key.budget_usd === null) {
    section.append(h("p", { text: `No budget: ${fmt.usd(key.spent_usd)} spent so far.` }));
    return section;
  }
  const left = Math.max(key.budget_usd - key.spent_usd, 0);
  section.append(h("div", { class: "budget" },
    h("p", { id: "budget-text", text: `${fmt.usd(left)} left of a ${fmt.usd(key.budget_usd)} ` +
      `budget (${fmt.usd(key.spent_usd)} spent).` }),
    h("progress", { max: key.budget_usd, value: key.spent_usd, "aria-labelledby": "budget-text" })));
  return section;
}

function recentPanel() {
  const calls = recentCalls();
  const section = h("section", { class: "card", "aria-labelledby": "recent-h" },
    h("h2", { id: "recent-h", text: "Recent calls from this console" }));
  if (!calls.length) {
    section.append(empty("No calls made from this tab yet."));
    return section;
  }
  section.append(h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["When", "Model", "Tokens", "Cost", "Latency"].map((t) =>
      h("th", { scope: "col", text: t })))),
    h("tbody", {}, calls.map((c) => h("tr", {}, h("td", { text: fmt.date(c.at) }),
      h("td", { text: c.model || "—" }),
      h("td", { text: fmt.int((c.input_tokens || 0) + (c.output_tokens || 0)) }),
      h("td", { text: fmt.usd(c.cost_usd) }), h("td", { text: fmt.ms(c.latency_ms) })))))));
  return section;
}
