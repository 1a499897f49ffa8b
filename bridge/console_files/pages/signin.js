// Sign-in: the key goes to sessionStorage only, and the API says whose it is.

import { ApiError, currentKey, session } from "../api.js";
import { field, h, replace, showFieldError, clearFieldErrors } from "../dom.js";

export function renderSignIn(main, { onSignedIn }) {
  const input = h("input", { type: "password", name: "key", autocomplete: "off",
    spellcheck: "false", required: true, id: "signin-key" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card signin", novalidate: true },
    field("API key", input, "Kept in this browser tab only (sessionStorage), sent as a Bearer header."),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const key = input.value.trim();
    if (!key) return showFieldError(input, "Enter your API key.");
    button.disabled = true;
    button.textContent = "Signing in…";
    session.key = key;
    try {
      const key = await currentKey();
      input.value = "";
      onSignedIn(key);
    } catch (error) {
      session.clear();
      showFieldError(input, error instanceof ApiError && error.status === 401
        ? "This key is unknown or revoked." : `Sign-in failed: ${error.message}`);
      input.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });
  replace(main, h("h1", { text: "Sign in" }),
    h("p", { class: "lede", text: "Use a consumer, provider or admin key of this gateway. " +
      "The console shows the pages your key's role may use." }), form);
  input.focus();
}
