// The console's shell: sign-in, the role's pages, and hash navigation between them.

import { ApiError, currentKey, session } from "./api.js";
import { failure, h, loading, replace } from "./dom.js";
import { renderCatalog } from "./pages/catalog.js";
import { renderPlayground } from "./pages/playground.js";
import { renderUsage } from "./pages/usage.js";
import { renderModels } from "./pages/models.js";
import { renderKeys } from "./pages/keys.js";
import { renderHealth } from "./pages/health.js";
import { renderAudit } from "./pages/audit.js";
import { renderSignIn } from "./pages/signin.js";

const EVERYONE = ["consumer", "provider", "admin"];
const PAGES = {
  catalog: { title: "Models", roles: EVERYONE, render: renderCatalog },
  playground: { title: "Playground", roles: EVERYONE, render: renderPlayground },
  spend: { title: "Spend", roles: ["consumer"], render: renderUsage },
  mine: { title: "My models", roles: ["provider"], render: renderModels },
  earnings: { title: "Earnings", roles: ["provider"], render: renderUsage },
  keys: { title: "Keys", roles: ["admin"], render: renderKeys },
  manage: { title: "All models", roles: ["admin"], render: renderModels },
  usage: { title: "Usage", roles: ["admin"], render: renderUsage },
  health: { title: "Health", roles: ["admin"], render: renderHealth },
  audit: { title: "Audit", roles: ["admin"], render: renderAudit },
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let me = null; // the signed-in key (GET /v1/keys/me)
let role = null;
let current = null; // the AbortController of the page on screen

function pagesFor(someRole) {
  return Object.entries(PAGES).filter(([, page]) => page.roles.includes(someRole));
}

function markReady(name) {
  document.documentElement.dataset.page = name;
  document.documentElement.dataset.state = "ready";
  // Time from this navigation's start to the page being usable (read by the browser tests).
  if (!document.documentElement.dataset.readyMs) {
    document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
  }
}

function signOut() {
  session.clear();
  me = null;
  role = null;
  location.hash = "";
  show();
}

function drawChrome() {
  replace(nav, role ? h("ul", {}, pagesFor(role).map(([name, page]) =>
    h("li", {}, h("a", { href: `#${name}`, "data-page": name, text: page.title })))) : null);
  replace(who, role ? [h("span", { class: "badge role", text: role }),
    h("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out")] : null);
}

async function show() {
  if (current) current.abort();
  current = new AbortController();
  document.documentElement.dataset.state = "loading";
  if (!session.key) {
    role = null;
    drawChrome();
    document.title = "Sign in · AI1NET console";
    renderSignIn(main, { onSignedIn: (key) => { me = key; role = key.role; drawChrome(); show(); } });
    markReady("signin");
    return;
  }
  if (!role) {
    replace(main, loading("your key"));
    try {
      me = await currentKey();
      role = me.role;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        session.clear();
        return show();
      }
      replace(main, failure(error, show));
      return markReady("error");
    }
    drawChrome();
  }
  const allowed = pagesFor(role);
  const wanted = location.hash.slice(1);
  const [name, page] = allowed.find(([n]) => n === wanted) || allowed[0];
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · AI1NET console`;
  const heading = h("h1", { text: page.title });
  const body = h("div", { class: "page" });
  replace(main, heading, body);
  const ctx = { role, me, page: name, signal: current.signal, signOut };
  try {
    await page.render(body, ctx);
  } catch (error) {
    if (error.name === "AbortError") return;
    if (error instanceof ApiError && error.status === 401) return signOut();
    replace(body, failure(error, show));
  }
  if (!ctx.signal.aborted) markReady(name);
}

window.addEventListener("hashchange", () => {
  show();
  main.focus();
});
show();
