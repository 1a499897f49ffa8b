// Which models are the signed-in provider's own. Models carry their owner's key id, which a
// provider does not know; a reconciliation answers only for the owner, so one read-only
// probe per distinct owner finds it (then remembered for this tab).

import { ApiError, get } from "../api.js";

const OWNER = "ai1net.console.owner";

export async function allModels(signal) {
  const models = [];
  let token = "";
  do {
    const page = await get(`/v1/models?page_size=1000${token ? `&page_token=${encodeURIComponent(token)}` : ""}`,
      { signal });
    models.push(...page.models);
    token = page.next_page_token;
  } while (token);
  return models;
}

export async function ownModels(ctx) {
  const models = await allModels(ctx.signal);
  if (ctx.role === "admin") return models;
  let owner = sessionStorage.getItem(OWNER);
  if (!owner || !models.some((m) => m.owner === owner)) {
    owner = await findOwner(models, ctx.signal);
    if (owner) sessionStorage.setItem(OWNER, owner);
  }
  return owner ? models.filter((m) => m.owner === owner) : [];
}

async function findOwner(models, signal) {
  const byOwner = new Map(models.map((m) => [m.owner, m.name]));
  for (const [owner, name] of byOwner) {
    try {
      await get(`/v1/usage/reconciliation?model=${encodeURIComponent(name)}`, { signal });
      return owner;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
    }
  }
  return null;
}
