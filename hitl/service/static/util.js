// Small DOM and formatting helpers. Every value from the API reaches the page as text, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function when(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined) return "";
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function span(seconds) {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function age(createdAt) {
  return `${span(Date.now() / 1000 - createdAt)} ago`;
}

// A deadline countdown that keeps itself current (see tick()).
export function countdown(deadline) {
  if (!deadline) return el("span", { class: "muted", text: "no deadline" });
  const node = el("time", { class: "countdown", "data-deadline": deadline, datetime: new Date(deadline * 1000).toISOString() });
  render(node);
  return node;
}

function render(node) {
  const left = Number(node.dataset.deadline) - Date.now() / 1000;
  node.textContent = left > 0 ? `due in ${span(left)}` : `overdue by ${span(left)}`;
  node.classList.toggle("soon", left > 0 && left < 3600);
  node.classList.toggle("overdue", left <= 0);
  node.title = when(Number(node.dataset.deadline));
}

export function tick() {
  for (const node of document.querySelectorAll("time.countdown")) render(node);
}

export function toolOf(record) {
  return (record.context && record.context.tool_name) || record.requirement_kind;
}

export function announce(text, kind = "info") {
  const status = document.getElementById("status");
  status.className = `status ${kind}`;
  status.textContent = text;
}

// Who decided first, from a 409's body: "already decided by bob at 12:03".
export function conflictText(body) {
  const by = body.resolved_by ? ` by ${body.resolved_by}` : "";
  const at = body.resolved_at ? ` at ${when(body.resolved_at)}` : "";
  const status = body.approval_status ? ` (${body.approval_status})` : "";
  return `Already decided${by}${at}${status}.`;
}
