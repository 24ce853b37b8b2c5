// The list: what waits for me, or everything pending, soonest deadline first; decided live.

import { api, inboxPath, isSafeApprovalId } from "./api.js";
import { el, pretty, age, countdown, toolOf, announce } from "./util.js";
import { resolve, outcome, failure } from "./decide.js";

export function listView(main, me) {
  const canReadAll = me.scopes.includes("approvals:read") || me.scopes.includes("admin");
  const canDecide = me.scopes.includes("approvals:decide") || me.scopes.includes("admin");
  let tab = "mine";
  let records = [];
  let nextCursor = null;
  const selected = new Set();
  const done = new Map();  // decided while on screen: id -> {record, text, kind}, kept until the next tab switch
  let timer = null;

  const list = el("div", { id: "approvals", class: "list", "aria-live": "polite" });
  const count = el("span", { id: "count", class: "muted" });
  const more = el("button", { type: "button", class: "link", text: "Load more", hidden: true, onclick: () => load(true) });
  const batchReason = el("input", { id: "batch-reason", type: "text", maxlength: 4000, placeholder: "Reason (for a rejection)" });
  const batch = el("div", { class: "batch", hidden: true },
    el("span", { id: "selected-count" }),
    el("button", { type: "button", class: "approve", text: "Approve selected", onclick: () => decideSelected("approved") }),
    el("label", { for: "batch-reason", class: "visually-hidden", text: "Reason for rejecting the selected approvals" }),
    batchReason,
    el("button", { type: "button", class: "reject", text: "Reject selected", onclick: () => decideSelected("rejected") }));
  const tabButton = (name, text) => el("button", { type: "button", class: "tab", "data-tab": name, "aria-pressed": String(tab === name),
    text, onclick: () => { tab = name; selected.clear(); done.clear(); render(); load(); } });
  const tabs = el("nav", { class: "tabs", "aria-label": "Which approvals" }, tabButton("mine", "Waiting for me"),
    canReadAll ? tabButton("all", "All pending") : null);

  main.replaceChildren(el("section", {}, el("div", { class: "heading" }, el("h1", { text: "Approvals" }), count), tabs, batch, list, more));

  async function load(append = false) {
    const params = new URLSearchParams({ status: "pending", sort_by: "deadline", limit: "50" });
    if (tab === "mine") params.set("approver", "me");
    if (append && nextCursor) params.set("cursor", nextCursor);
    try {
      const page = await api(`/approvals?${params}`);
      records = append ? [...records, ...page.data] : page.data;
      nextCursor = page.meta.next_cursor;
      count.textContent = `${page.meta.total_count} pending`;
      render();
    } catch (error) {
      announce(`Could not load the approvals: ${error.message}`, "error");
    }
  }

  function render() {
    for (const button of tabs.querySelectorAll(".tab")) button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
    const shown = new Set(records.map((r) => r.id));
    for (const id of selected) if (!shown.has(id)) selected.delete(id);
    const cards = records.map((r) => card(r, done.get(r.id)));
    for (const [id, note] of done) if (!shown.has(id)) cards.push(card(note.record, note));
    list.replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: tab === "mine"
      ? "Nothing waits for you." : "Nothing is pending." })]));
    more.hidden = !nextCursor;
    batch.hidden = !records.some((r) => r.may_decide && r.requirement_kind === "confirmation");
    batch.querySelector("#selected-count").textContent = `${selected.size} selected`;
  }

  function card(r, note) {
    const context = r.context || {};
    const policy = context.policy || {};
    const confirmed = context.approvals || [];
    const id = r.id;
    const safe = isSafeApprovalId(id);  // an id a URL could reinterpret is shown, never linked or decided
    const decidable = safe && canDecide && r.may_decide && !note;
    const box = decidable && r.requirement_kind === "confirmation" ? el("input", { type: "checkbox", id: `select-${id}`,
      checked: selected.has(id), onchange: (e) => { if (e.target.checked) selected.add(id); else selected.delete(id); render(); } }) : null;
    const link = safe ? inboxPath(id) : null;
    const title = el("h2", {}, link ? el("a", { href: link, text: toolOf(r) }) : el("span", { text: toolOf(r) }),
      el("span", { class: "kind", text: r.requirement_kind.replace("_", " ") }));
    return el("article", { class: `card${note ? " decided" : ""}`, "data-id": id, "aria-label": `${toolOf(r)} for ${r.agent_name}` },
      el("div", { class: "card-head" }, box ? el("label", { class: "select", for: `select-${id}` }, box,
        el("span", { class: "visually-hidden", text: `Select ${toolOf(r)} ${id}` })) : null, title),
      el("dl", { class: "facts" },
        fact("Agent", r.agent_name), fact("Run", el("code", { text: r.run_id })),
        fact("Waiting", age(r.created_at)), fact("Deadline", countdown(context.deadline)),
        r.escalation_level ? fact("Escalation", el("span", { class: "badge", text: `level ${r.escalation_level}` })) : null,
        policy.quorum > 1 ? fact("Quorum", `${confirmed.length} of ${policy.quorum} confirmed${confirmed.length ? `: ${confirmed.join(", ")}` : ""}`) : null,
        policy.approvers && policy.approvers.length ? fact("Approvers", policy.approvers.join(", ")) : null),
      context.note ? el("p", { class: "warning", role: "note", text: `⚠ ${context.note}` }) : null,
      el("pre", { class: "code args", text: pretty(context.arguments || {}) }),
      note ? el("p", { class: `outcome ${note.kind}`, role: "status", text: note.text }) : actions(r, decidable, link));
  }

  function actions(r, decidable, link) {
    if (!link) {
      return el("p", { class: "warning", role: "note", text: "This approval's id is not <run_id>/<requirement_id> of letters, " +
        "digits and . _ : @ -: a link to it could reach another approval, so it is neither linked nor decided here." });
    }
    if (!decidable) {
      return el("p", { class: "muted" }, canDecide && r.status === "pending" ? "You cannot decide this one. " : "", el("a", { href: link, text: "Details" }));
    }
    if (r.requirement_kind !== "confirmation") {
      return el("div", { class: "actions" }, el("a", { class: "button approve", href: link,
        text: r.requirement_kind === "user_input" ? "Fill in…" : "Give the result…" }));
    }
    const reasonId = `reason-${r.id}`;
    const reason = el("input", { id: reasonId, type: "text", maxlength: 4000, placeholder: "Reason (for a rejection)" });
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "approve", text: "Approve", onclick: () => decide([r], "approved", null) }),
      el("label", { for: reasonId, class: "visually-hidden", text: `Reason for rejecting ${toolOf(r)}` }), reason,
      el("button", { type: "button", class: "reject", text: "Reject", onclick: () => decide([r], "rejected", reason.value.trim() || null) }),
      el("a", { href: link, text: "Edit or details" }));
  }

  // One after another: approvals of the same run are taken in turn, the last one resumes it.
  async function decide(chosen, status, reason) {
    list.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    for (const r of chosen) {
      try {
        const result = await resolve(r.id, status === "rejected" ? { status, reason } : { status });
        done.set(r.id, { record: r, text: outcome(result), kind: "ok" });
      } catch (error) {
        done.set(r.id, { record: r, text: failure(error), kind: error.status === 409 ? "conflict" : "error" });
      }
      selected.delete(r.id);
    }
    await load();
  }

  function decideSelected(status) {
    const chosen = records.filter((r) => selected.has(r.id));
    if (!chosen.length) return announce("Select approvals first.", "error");
    decide(chosen, status, status === "rejected" ? batchReason.value.trim() || null : null);
  }

  return {
    load,
    onEvent(event) {
      const data = event.data || {};
      const onScreen = records.find((r) => r.id === data.approval_id);
      if (onScreen && data.status && data.status !== "pending" && !done.has(onScreen.id)) {
        const by = (data.payload && data.payload.resolved_by) || "someone else";
        done.set(onScreen.id, { record: onScreen, text: `Decided by ${by} (${data.status}).`, kind: "conflict" });
      }
      clearTimeout(timer);
      timer = setTimeout(load, 150);
    },
  };
}

function fact(name, value) {
  return el("div", {}, el("dt", { text: name }), el("dd", {}, value));
}
