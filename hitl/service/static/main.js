// The inbox's entry: sign-in, who you are, which view the address asks for, the live stream.

import { api, token, stream, ApiError } from "./api.js";
import { el, tick, announce } from "./util.js";
import { listView } from "./list.js";
import { detailView } from "./detail.js";

const main = document.getElementById("main");

function signIn(note) {
  document.getElementById("who").textContent = "";
  document.getElementById("sign-out").hidden = true;
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help" });
  const form = el("form", { class: "card sign-in", onsubmit: async (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    await start();
  } },
  el("h1", { text: "Sign in" }),
  el("label", { for: "token", text: "API token or OIDC access token" }), input,
  el("p", { id: "token-help", class: "muted",
    text: "Made with `hitl tokens create`, or your identity provider's access token. Kept in this tab only." }),
  el("div", { class: "actions" }, el("button", { type: "submit", class: "approve", text: "Sign in" })));
  main.replaceChildren(form);
  if (note) announce(note, "error");
  input.focus();
}

let stopStream = null;

async function start() {
  if (!token.get()) return signIn();
  let me;
  try {
    me = await api("/me");
  } catch (error) {
    token.clear();
    return signIn(error instanceof ApiError && error.status === 401 ? `Sign-in refused: ${error.message}` : error.message);
  }
  announce("");
  const who = document.getElementById("who");
  who.replaceChildren("Signed in as ", el("strong", { id: "me", text: me.name }),
    el("span", { class: "muted", text: ` (${me.via}; ${me.scopes.join(", ") || "no scopes"})` }));
  const out = document.getElementById("sign-out");
  out.hidden = false;
  out.onclick = () => { token.clear(); if (stopStream) stopStream(); location.assign("/inbox"); };

  const prefix = "/inbox/approvals/";
  const decode = (part) => { try { return decodeURIComponent(part); } catch { return part; } };  // a malformed %: as typed
  const view = location.pathname.startsWith(prefix)
    ? detailView(main, me, location.pathname.slice(prefix.length).split("/").map(decode).join("/"))
    : listView(main, me);
  await view.load();
  const live = document.getElementById("live");
  if (stopStream) stopStream();
  stopStream = stream((event) => view.onEvent(event), (state) => {
    if (state === "signed-out") {
      token.clear();
      live.textContent = "";
      return signIn("Your sign-in has ended (the token was revoked or has expired): sign in again.");
    }
    live.textContent = state === "live" ? "● live" : "○ reconnecting…";
    live.className = `live ${state}`;
  });
}

setInterval(tick, 1000);
start();
