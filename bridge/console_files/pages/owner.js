// The models a page manages: a provider's own (models carry their owner's key id, and
// GET /v1/keys/me says which is ours), every one for an admin.

import { get } from "../api.js";

export async function allModels(signal) {
  const models = [];
  let token = "";
  do {
    const page = await get(`/v1/models?page_size=1000${token
      ? `&page_token=${encodeURIComponent(token)}` : ""}`, { signal });
    models.push(...page.models);
    token = page.next_page_token;
  } while (token);
  return models;
}

export async function ownModels(ctx) {
  const models = await allModels(ctx.signal);
  return ctx.role === "admin" ? models : models.filter((m) => m.owner === ctx.me.id);
}
