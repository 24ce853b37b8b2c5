// Deciding: approve or reject with a reason, edit the arguments first (checked against the tool's
// schema, the difference shown), fill a user-input form, give an external result.
// The run validates every decision again; its refusals are shown where the person acted.

import { api, approvalPath, ApiError } from "./api.js";
import { el, pretty, conflictText } from "./util.js";

export async function resolve(id, body) {
  return api(`${approvalPath(id)}/resolve`, { method: "POST", body, idempotent: true });
}

export function outcome(result) {
  const verb = { confirm: "Approved", reject: "Rejected", provide_input: "Input given", provide_result: "Result given" };
  const run = result.run || {};
  const after = result.waiting ? "the run is working on it" : `the run is now ${run.status}`;
  return `${verb[result.decision] || result.decision} as ${result.resolved_by}: ${after}.`;
}

// What went wrong, in words for the person who clicked: a 409 says who decided first.
export function failure(error) {
  if (error instanceof ApiError && error.status === 409) return conflictText(error.body || {});
  if (error instanceof ApiError && error.status === 403) return `Not allowed: ${error.message}`;
  return error.message || String(error);
}

// Top-level differences between two argument objects.
export function diff(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])].sort();
  const changes = [];
  for (const key of keys) {
    const a = before ? before[key] : undefined;
    const b = after ? after[key] : undefined;
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const kind = a === undefined ? "added" : b === undefined ? "removed" : "changed";
    changes.push({ key, kind, before: a, after: b });
  }
  return changes;
}

const TYPES = {
  string: (v) => typeof v === "string", integer: (v) => Number.isInteger(v), number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean", array: Array.isArray, null: (v) => v === null,
  object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
};

// The common part of JSON Schema a tool's arguments use; what this does not know, the run checks.
export function validate(schema, value, where = "arguments") {
  const problems = [];
  if (!schema || typeof schema !== "object") return problems;
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    if (!options.some((option) => validate(option, value, where).length === 0)) problems.push(`${where}: does not match any allowed type`);
    return problems;
  }
  if (schema.type && TYPES[schema.type] && !TYPES[schema.type](value)) return [`${where}: must be ${schema.type}`];
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) problems.push(`${where}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) problems.push(`${where}: at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) problems.push(`${where}: at most ${schema.maxLength} characters`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${where}: at least ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${where}: at most ${schema.maximum}`);
  }
  if (TYPES.object(value) && (schema.properties || schema.required)) {
    for (const name of schema.required || []) if (!(name in value)) problems.push(`${where}.${name}: required`);
    for (const [name, item] of Object.entries(value)) {
      const sub = (schema.properties || {})[name];
      if (sub) problems.push(...validate(sub, item, `${where}.${name}`));
      else if (schema.additionalProperties === false) problems.push(`${where}.${name}: not a field of this tool`);
    }
  }
  return problems;
}

// The form that decides one approval (detail page), by its kind.
export function decisionForm(detail, onDecided) {
  const message = el("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const props = (detail.answer_schema && detail.answer_schema.properties) || {};
  const busy = (on) => form.querySelectorAll("button, input, textarea").forEach((n) => { n.disabled = on; });
  const send = async (body) => {
    busy(true);
    message.className = "form-status";
    message.textContent = "Sending…";
    try {
      const result = await resolve(detail.id, body);
      message.className = "form-status ok";
      message.textContent = outcome(result);
      onDecided({ kind: "ok", text: message.textContent, result });
    } catch (error) {
      message.className = `form-status ${error.status === 409 ? "conflict" : "error"}`;
      message.textContent = failure(error);
      busy(false);
      if (error.status === 409) onDecided({ kind: "conflict", text: message.textContent });
    }
  };
  const reason = el("textarea", { id: "reason", name: "reason", rows: 2, maxlength: 4000, placeholder: "Told to the agent" });
  const rejectButton = el("button", { type: "button", class: "reject", text: "Reject",
    onclick: () => send({ status: "rejected", reason: reason.value.trim() || null }) });
  const form = el("form", { class: "decide", onsubmit: (e) => e.preventDefault() });

  if (detail.requirement_kind === "confirmation") {
    const original = detail.context.arguments || {};
    const editor = el("textarea", { id: "arguments", name: "arguments", rows: 8, spellcheck: "false", class: "code" });
    editor.value = pretty(original);
    const changes = el("div", { class: "diff", "aria-live": "polite" });
    const remember = el("input", { type: "checkbox", id: "remember", name: "remember" });
    const approveButton = el("button", { type: "submit", class: "approve", text: "Approve" });
    const parsed = () => {
      changes.replaceChildren();
      let value;
      try { value = JSON.parse(editor.value); } catch (error) {
        changes.append(el("p", { class: "error", text: `Not JSON: ${error.message}` }));
        return null;
      }
      const problems = validate(props.arguments, value);
      for (const p of problems) changes.append(el("p", { class: "error", text: p }));
      const delta = diff(original, value);
      if (delta.length) {
        changes.append(el("p", { text: "Approving with these changes:" }), el("ul", {}, delta.map((d) => el("li", { class: d.kind },
          el("code", { text: d.key }), ` ${d.kind}: `,
          d.kind !== "added" ? el("del", { text: JSON.stringify(d.before) }) : null, d.kind === "changed" ? " → " : "",
          d.kind !== "removed" ? el("ins", { text: JSON.stringify(d.after) }) : null))));
      }
      approveButton.textContent = delta.length ? "Approve with changes" : "Approve";
      return problems.length ? null : { value, edited: delta.length > 0 };
    };
    editor.addEventListener("input", parsed);
    form.addEventListener("submit", () => {
      const checked = parsed();
      if (!checked) { message.className = "form-status error"; message.textContent = "Fix the arguments first."; return; }
      send({ status: "approved", arguments: checked.edited ? checked.value : null, remember: remember.checked });
    });
    form.append(
      el("label", { for: "arguments", text: "Arguments (edit to approve with corrections)" }), editor, changes,
      el("div", { class: "check" }, remember, el("label", { for: "remember", text: "Approve this tool for the rest of the run" })),
      el("div", { class: "actions" }, approveButton),
      el("label", { for: "reason", text: "Reason (for a rejection)" }), reason, el("div", { class: "actions" }, rejectButton));
  } else if (detail.requirement_kind === "user_input") {
    const fields = (props.user_input && props.user_input.properties) || {};
    const inputs = Object.entries(fields).map(([name, spec]) => fieldInput(name, spec));
    form.addEventListener("submit", () => {
      const value = {};
      for (const { name, read } of inputs) value[name] = read();
      const problems = validate(props.user_input, value, "input");
      if (problems.length) { message.className = "form-status error"; message.textContent = problems.join("; "); return; }
      send({ status: "approved", user_input: value });
    });
    form.append(...inputs.map((i) => i.node), el("div", { class: "actions" }, el("button", { type: "submit", class: "approve", text: "Submit" })),
      el("label", { for: "reason", text: "Reason (for a rejection)" }), reason, el("div", { class: "actions" }, rejectButton));
  } else if (detail.requirement_kind === "external_execution") {
    const result = el("textarea", { id: "external-result", name: "external_result", rows: 4, class: "code",
      placeholder: "The result, as JSON or plain text" });
    form.addEventListener("submit", () => {
      let value = result.value;
      try { value = JSON.parse(result.value); } catch { /* plain text is a string result */ }
      if (result.value.trim() === "") { message.className = "form-status error"; message.textContent = "Give the result first."; return; }
      send({ status: "approved", external_result: value });
    });
    form.append(el("label", { for: "external-result", text: "Result of the tool, run elsewhere" }), result,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "approve", text: "Submit result" })),
      el("label", { for: "reason", text: "Reason (for a rejection)" }), reason, el("div", { class: "actions" }, rejectButton));
  }
  form.append(message);
  return form;
}

function fieldInput(name, spec) {
  const id = `field-${name}`;
  const type = spec.type;
  const input = type === "boolean" ? el("input", { type: "checkbox", id, name })
    : el("input", { type: type === "integer" || type === "number" ? "number" : "text", id, name, required: true,
      step: type === "number" ? "any" : null });
  const read = () => {
    if (type === "boolean") return input.checked;
    if (type === "integer" || type === "number") return input.value === "" ? null : Number(input.value);
    if (type === "array" || type === "object") { try { return JSON.parse(input.value); } catch { return input.value; } }
    return input.value;
  };
  const label = el("label", { for: id }, el("span", { text: name }), spec.description && spec.description !== name
    ? el("span", { class: "muted", text: ` ${spec.description}` }) : null);
  return { name, read, node: el("div", { class: type === "boolean" ? "check" : "field" }, label, input) };
}
