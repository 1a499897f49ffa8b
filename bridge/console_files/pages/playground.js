// The playground: one call, streamed as it arrives, with its route, cost and timing.

import { ApiError, generateOnce, generateStream, get } from "../api.js";
import { failure, field, fmt, h, replace, safeMediaUrl, select } from "../dom.js";
import { recordCall, recordLimits } from "../history.js";

const STRATEGIES = [["balanced"], ["latency"], ["cost"], ["quality"]];

export async function renderPlayground(body, ctx) {
  const model = select([["", "Routed by the gateway"]], { name: "model" });
  const type = select([["text"], ["image"], ["audio"]], { name: "type" });
  const strategy = select(STRATEGIES, { name: "strategy" });
  const input = h("textarea", { name: "input", rows: 4, required: true },
    "Explain quantum computing in simple terms");
  const maxTokens = h("input", { type: "number", name: "max_tokens", min: 1, value: 120 });
  const stream = h("input", { type: "checkbox", name: "stream", checked: true, id: "pg-stream" });
  const run = h("button", { type: "submit", class: "primary" }, "Run");
  const stop = h("button", { type: "button", disabled: true }, "Stop");
  const routing = h("div", { class: "row" }, field("Type when routed", type),
    field("Strategy", strategy));
  const form = h("form", { class: "card playground", "aria-label": "Generate" },
    h("div", { class: "row" }, field("Model", model), field("Max tokens", maxTokens)), routing,
    field("Input", input),
    h("div", { class: "actions" }, h("label", { class: "check", for: "pg-stream" }, stream,
      " Stream tokens as they arrive"), run, stop));
  const output = h("pre", { class: "output", id: "pg-output", role: "log",
    "aria-label": "Output" });
  const preview = h("div", { class: "preview" });
  const meta = h("dl", { class: "facts meta", id: "pg-meta" });
  const status = h("div", { id: "pg-status" });
  const result = h("section", { class: "card", "aria-label": "Result" },
    h("h2", { text: "Output" }), status, output, preview, meta);
  replace(body, form, result);
  showMeta(meta, {});
  model.addEventListener("change", () => { routing.hidden = Boolean(model.value); });

  try {
    const { models } = await get("/v1/models?page_size=200", { signal: ctx.signal });
    for (const m of models.filter((m) => m.enabled !== false)) {
      model.append(h("option", { value: m.name, text: `${m.name} (${m.type})` }));
    }
  } catch (error) {
    if (error.name === "AbortError") return;
    replace(status, failure(error));
  }

  let controller = null;
  stop.addEventListener("click", () => controller && controller.abort());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    controller = new AbortController();
    ctx.signal.addEventListener("abort", () => controller.abort());
    run.disabled = true;
    stop.disabled = false;
    replace(output);
    replace(preview);
    replace(status, h("p", { class: "state loading", role: "status", text: "Waiting for the first token…" }));
    const request = { input: input.value, parameters: {} };
    if (maxTokens.value) request.parameters.max_tokens = Number(maxTokens.value);
    if (model.value) request.model = model.value;
    else request.routing = { type: type.value, strategy: strategy.value };
    try {
      const facts = stream.checked
        ? await streamed(request, controller.signal, output, preview, status)
        : await unary(request, controller.signal, output, preview);
      replace(status);
      showMeta(meta, facts);
      recordCall({ at: new Date().toISOString(), ...facts });
      document.documentElement.dataset.generation = facts.id || "";
    } catch (error) {
      if (error.name === "AbortError") replace(status, h("p", { class: "state", text: "Stopped." }));
      else replace(status, failure(error));
    } finally {
      run.disabled = false;
      stop.disabled = true;
    }
  });
}

async function streamed(request, signal, output, preview, status) {
  const started = performance.now();
  const facts = {};
  let text = null;
  await generateStream(request, {
    signal,
    onStart(headers) {
      recordLimits(headers);
      Object.assign(facts, routeOf(headers));
    },
    onEvent(event) {
      if (facts.ttft_ms === undefined && (event.delta !== undefined || event.output)) {
        facts.ttft_ms = performance.now() - started;
        replace(status);
      }
      if (event.delta !== undefined) {
        if (!text) text = output.appendChild(document.createTextNode(""));
        text.appendData(String(event.delta));
      } else if (event.output !== undefined) {
        showOutput(event.output, output, preview);
      } else if (event.error) {
        throw new ApiError(event.error.code || 502, event);
      } else if (event.done) {
        Object.assign(facts, doneFacts(event));
      }
    },
  });
  return facts;
}

async function unary(request, signal, output, preview) {
  const started = performance.now();
  const { headers, body } = await generateOnce(request, { signal });
  recordLimits(headers);
  showOutput(body.output, output, preview);
  return { ...routeOf(headers), ...doneFacts(body), ttft_ms: performance.now() - started };
}

function routeOf(headers) {
  return { model: headers.get("x-ai1net-model") || "", route: headers.get("x-ai1net-route") || "",
    attempts: headers.get("x-ai1net-attempts") || "" };
}

function doneFacts(event) {
  const usage = event.usage || {};
  return { id: event.id, model: event.model, cost_usd: event.cost_usd, latency_ms: event.latency_ms,
    input_tokens: usage.input_tokens, output_tokens: usage.output_tokens };
}

function showOutput(value, output, preview) {
  if (typeof value === "string") {
    output.textContent = value;
    return;
  }
  const image = safeMediaUrl(value && value.image_url, "image");
  const audio = safeMediaUrl(value && value.audio_url, "audio");
  if (image) {
    replace(preview, h("img", { src: image, alt: "The generated image" }));
  } else if (audio) {
    replace(preview, h("audio", { src: audio, controls: true, "aria-label": "The generated audio" }));
  } else if (value && (value.image_url || value.audio_url)) {
    replace(preview, h("p", { class: "state error",
      text: "Preview withheld: only https: and data: image or audio URLs are shown." }));
  }
  output.textContent = JSON.stringify(value, null, 2);
}

function showMeta(meta, facts) {
  const rows = [
    ["Model", facts.model || "—"], ["Route", facts.route || "—"],
    ["Attempts", facts.attempts || "—"], ["Time to first token", fmt.ms(facts.ttft_ms)],
    ["Latency (gateway)", fmt.ms(facts.latency_ms)], ["Cost", fmt.usd(facts.cost_usd)],
    ["Tokens in / out", facts.input_tokens === undefined ? "—"
      : `${fmt.int(facts.input_tokens)} / ${fmt.int(facts.output_tokens)}`],
  ];
  replace(meta, rows.map(([term, value]) => [h("dt", { text: term }),
    h("dd", { "data-fact": term, text: value })]));
}
