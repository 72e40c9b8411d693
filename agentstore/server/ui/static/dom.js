// Building the page without HTML parsing: every value from the store goes in as text.
//
// `h()` creates elements and sets properties and text only; nothing here (or anywhere in
// the UI) assigns innerHTML, so a payload holding <script> or an onerror attribute is
// shown as the characters it is.

const SVG_NS = "http://www.w3.org/2000/svg";

// Controls and bidi overrides would hide or reorder text: show them as \u escapes.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Return `text` with invisible control and bidi characters shown as \uXXXX. */
export function clean(text) {
  return String(text).replace(UNSAFE, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = clean(value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(clean(child)));
  }
  return el;
}

/** Create an HTML element: h("a", {class: "x", href: "/"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** Create an SVG element the same way. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Remove every child of `el` and append `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

/** A link to a page of the UI, built from ids (encoded) and never from other data. */
export function pageUrl(path, params = {}, hash = "") {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of [].concat(value)) url.searchParams.append(key, item);
  }
  return url.pathname + url.search + (hash ? "#" + hash : "");
}

/** The URL of a session's page. */
export function sessionUrl(id, hash = "") {
  return pageUrl("/sessions/" + encodeURIComponent(id), {}, hash);
}

/** Call `fn` once calls stop for `ms` milliseconds. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Show an error banner at the top of `root`. */
export function showError(root, error) {
  const box = h("div", { class: "error-banner", role: "alert" }, String(error.message || error));
  root.prepend(box);
  return box;
}
