// One approval: what it asks, its policy and deadline, its run, its history (who, when, what), and the form that decides it.

import { api, approvalPath, ApiError, UnsafeIdError } from "./api.js";
import { el, pretty, when, age, countdown, toolOf, announce } from "./util.js";
import { decisionForm } from "./decide.js";

export function detailView(main, me, id) {
  let detail = null;
  let timer = null;
  let note = null;  // what happened to a decision made here, kept across reloads

  async function load() {
    try {
      detail = await api(approvalPath(id));
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404 ? `No approval ${id} that you may see.` : error.message;
      const title = error instanceof UnsafeIdError ? "Approval not addressable" : "Approval not found";
      main.replaceChildren(el("section", { class: "card" }, el("h1", { text: title }), el("p", { text }),
        el("p", {}, el("a", { href: "/inbox", text: "Back to the inbox" }))));
      return;
    }
    render();
  }

  function render() {
    const d = detail;
    const context = d.context || {};
    const policy = d.policy || {};
    const ui = /^https?:\/\//.test(me.temporal_ui_url || "") ? `${me.temporal_ui_url.replace(/\/$/, "")}/namespaces/${encodeURIComponent(me.namespace)}/workflows/${encodeURIComponent(d.team_run_id || d.run_id)}` : null;
    const decided = d.status !== "pending";
    main.replaceChildren(el("section", { class: "detail" },
      el("p", {}, el("a", { href: "/inbox", text: "← Inbox" })),
      el("h1", {}, toolOf(d), " ", el("span", { id: "approval-status", class: `pill ${d.status}`, text: d.status })),
      el("dl", { class: "facts" },
        fact("Approval", el("code", { text: d.id })), fact("Agent", d.agent_name),
        fact("Run", el("span", {}, el("code", { text: d.run_id }), " ", el("span", { id: "run-status", class: "pill", text: d.run_status || "unknown" }),
          ui ? el("a", { id: "temporal-link", href: ui, target: "_blank", rel: "noopener noreferrer", text: " open in Temporal UI" }) : null)),
        d.team_run_id ? fact("Team run", el("code", { text: d.team_run_id })) : null,
        fact("Requested", `${when(d.created_at)} (${age(d.created_at)})`),
        fact("Deadline", decided ? (d.deadline ? when(d.deadline) : "none") : countdown(d.deadline)),
        fact("Escalation level", String(d.escalation_level || 0)),
        fact("Approvers", (policy.approvers && policy.approvers.length) ? policy.approvers.join(", ") : "anyone who may decide"),
        policy.quorum > 1 ? fact("Quorum", `${d.approvals.length} of ${policy.quorum} confirmed${d.approvals.length ? `: ${d.approvals.join(", ")}` : ""}`) : null,
        decided ? fact("Decided", `${d.status}${d.resolved_by ? ` by ${d.resolved_by}` : ""}${d.resolved_at ? ` at ${when(d.resolved_at)}` : ""}`) : null,
        d.resolution && d.resolution.reason ? fact("Reason", d.resolution.reason) : null,
        d.run_status_error ? fact("Run", el("span", { class: "error", text: d.run_status_error })) : null),
      context.note ? el("p", { class: "warning", role: "note", text: `⚠ ${context.note}` }) : null,
      note ? el("p", { id: "outcome", class: `outcome ${note.kind}`, role: "status", text: note.text }) : null,
      decided || !d.may_decide ? el("p", { class: "muted", id: "no-decide",
        text: decided ? "This approval is decided." : "You may not decide this approval (its policy names other approvers, or you have confirmed it already)." }) : null,
      el("h2", { text: "Arguments" }), el("pre", { class: "code args", text: pretty(context.arguments || {}) }),
      context.original_arguments ? el("details", {}, el("summary", { text: "Arguments as the agent asked" }),
        el("pre", { class: "code", text: pretty(context.original_arguments) })) : null,
      !decided && d.may_decide ? el("section", { class: "card", "aria-labelledby": "decide-h" }, el("h2", { id: "decide-h", text: "Decide" }),
        decisionForm(d, (what) => {
          note = what;
          load();
        })) : null,
      el("h2", { text: "History" }), history(d.events)));
  }

  return {
    load,
    onEvent(event) {
      const data = event.data || {};
      if (data.approval_id !== id && data.run_id !== (detail && detail.run_id)) return;
      if (data.approval_id === id && data.status && data.status !== "pending" && !note && detail && detail.status === "pending") {
        const by = (data.payload && data.payload.resolved_by) || "someone else";
        note = { kind: by === me.name ? "ok" : "conflict", text: by === me.name ? `Decided by you (${data.status}).` : `Decided by ${by} (${data.status}).` };
        announce(note.text, note.kind === "ok" ? "info" : "conflict");
      }
      clearTimeout(timer);
      timer = setTimeout(load, 150);
    },
  };
}

function history(events) {
  if (!events || !events.length) return el("p", { class: "muted", text: "No events yet." });
  return el("table", { class: "history" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "#" }), el("th", { scope: "col", text: "When" }),
      el("th", { scope: "col", text: "What" }), el("th", { scope: "col", text: "Who" }), el("th", { scope: "col", text: "Details" }))),
    el("tbody", {}, events.map((e) => {
      const p = e.payload || {};
      const who = p.resolved_by || p.changed_by || p.by || "";
      const rest = Object.fromEntries(Object.entries(p).filter(([k]) => !["resolved_by", "changed_by", "by", "signature"].includes(k)));
      return el("tr", { class: `event ${e.kind}` }, el("td", { text: String(e.seq) }), el("td", { text: when(e.at) }),
        el("td", { text: e.kind }), el("td", { text: who }),
        el("td", {}, Object.keys(rest).length ? el("code", { text: JSON.stringify(rest) }) : "", p.signature ? el("span", { class: "badge", text: "signed" }) : null));
    })));
}

function fact(name, value) {
  return el("div", {}, el("dt", { text: name }), el("dd", {}, value));
}
