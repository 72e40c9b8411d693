// The web UI's entry point: the theme, and which page the URL names.
//
// Pages: /                  sessions (?q=, ?label=, ?cursor=)
//        /sessions/<id>     one session (?tab=timeline|state|charts, #seq-N)
//        /compare?a=&b=     two sessions side by side

import { ApiError, setToken, token } from "./api.js";
import { h, replace, showError } from "./dom.js";
import { renderSessions } from "./sessions.js";
import { renderSession } from "./session.js";
import { renderCompare } from "./compare.js";

const THEME_KEY = "agentstore-theme";

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const button = document.getElementById("theme-toggle");
  button.textContent = theme === "dark" ? "Light" : "Dark";
  button.setAttribute("aria-label", `Switch to the ${theme === "dark" ? "light" : "dark"} theme`);
}

function setupTheme() {
  let theme = null;
  try {
    theme = localStorage.getItem(THEME_KEY);
  } catch {
    // storage may be off: follow the system
  }
  if (theme !== "light" && theme !== "dark") {
    theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  applyTheme(theme);
  document.getElementById("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    applyTheme(next);
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      // not remembered: fine
    }
  });
}

async function route() {
  const root = document.getElementById("app");
  const crumbs = document.getElementById("crumbs");
  const path = location.pathname;
  try {
    if (path === "/" || path === "/index.html") {
      await renderSessions(root, crumbs);
    } else if (path.startsWith("/sessions/") && path.length > "/sessions/".length) {
      await renderSession(root, crumbs, decodeURIComponent(path.slice("/sessions/".length)));
    } else if (path === "/compare") {
      await renderCompare(root, crumbs);
    } else {
      replace(root, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/" }, "All sessions")));
    }
  } catch (err) {
    document.getElementById("loading")?.remove();
    if (err instanceof ApiError && err.status === 401) {
      askForToken(root);
      return;
    }
    showError(root, err);
    console.warn(err); // eslint-disable-line no-console
  }
}

// A server started with --token-file wants the token on every API request; it is kept
// for this tab only (sessionStorage) and sent as `Authorization: Bearer`.
function askForToken(root) {
  const input = h("input", { type: "password", id: "token-input", autocomplete: "off",
    "aria-label": "Token", placeholder: "Token" });
  const form = h("form", { id: "token-form", class: "token-form" },
    h("h1", {}, "This server needs a token"),
    h("p", { class: "muted" }, token()
      ? "The token given was refused. Enter the token of `agentstore serve --token-file`."
      : "Enter the token of `agentstore serve --token-file`. It is kept for this tab only."),
    h("div", { class: "inline" }, input, h("button", { type: "submit" }, "Open")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    setToken(input.value.trim());
    location.reload();
  });
  replace(root, form);
  input.focus();
}

setupTheme();
route();
