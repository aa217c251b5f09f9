// The sidebar: conversations from the server's history (the terminal's too), search, rename, delete, open.
import { api } from "./api.js";
import { stop } from "./chat.js";
import { $, closeDrawer, el, notice } from "./dom.js";
import { renderConversation } from "./messages.js";
import { showModelInfo } from "./models.js";
import { S } from "./state.js";

export function newId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function loadConversations() {
  const query = $("search").value.trim();
  const path = query ? `/api/conversations?q=${encodeURIComponent(query)}` : "/api/conversations?limit=100";
  let data;
  try {
    data = await api("GET", path);
  } catch (err) {
    if (err.status !== 401) notice(err.message);
    return;
  }
  const list = $("conversations");
  list.replaceChildren(...data.conversations.map(conversationItem));
  if (!data.conversations.length) list.append(el("li", "muted", query ? "nothing found" : "no conversations yet"));
}

export function conversationItem(c) {
  const li = el("li", S.conv && S.conv.id === c.id ? "current" : "");
  const open = el("button", "conv", c.title || "(untitled)");
  open.type = "button";
  open.title = c.snippet ? c.snippet : `${c.message_count} messages · ${c.model || ""}`;
  if (S.conv && S.conv.id === c.id) open.setAttribute("aria-current", "true");
  open.addEventListener("click", () => { openConversation(c.id); closeDrawer(); });
  const rename = el("button", "icon small", "✎");
  rename.type = "button";
  rename.setAttribute("aria-label", `Rename “${c.title || "untitled"}”`);
  rename.addEventListener("click", () => startRename(li, c));
  const remove = el("button", "icon small", "×");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete “${c.title || "untitled"}”`);
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete “${c.title || "untitled"}” for good?`)) return;
    await api("DELETE", `/api/conversations/${encodeURIComponent(c.id)}`).catch((e) => notice(e.message));
    if (S.conv && S.conv.id === c.id) newChat();
    loadConversations();
  });
  li.append(open, rename, remove);
  return li;
}

export function startRename(li, c) {
  const input = el("input", "rename");
  input.value = c.title || "";
  input.setAttribute("aria-label", "New title");
  li.replaceChildren(input);
  input.focus();
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") { loadConversations(); return; }
    if (event.key !== "Enter") return;
    event.preventDefault();
    await api("PATCH", `/api/conversations/${encodeURIComponent(c.id)}`, { title: input.value })
      .catch((e) => notice(e.message));
    loadConversations();
  });
  input.addEventListener("blur", () => loadConversations());
}

export async function openConversation(id, quiet = false) {
  if (S.streaming) stop();
  let data;
  try {
    data = await api("GET", `/api/conversations/${encodeURIComponent(id)}`);
  } catch (err) {
    if (quiet) localStorage.removeItem("hearth.conversation");  // deleted elsewhere since: start afresh
    else notice(err.message);
    return;
  }
  data.recorded = true;
  S.conv = data;
  localStorage.setItem("hearth.conversation", id);
  const system = data.messages.find((m) => m.role === "system");
  $("system").value = system ? system.content : "";
  const options = JSON.parse(localStorage.getItem(`hearth.options.${id}`) || "{}");
  $("temperature").value = options.temperature ?? "";
  $("max-tokens").value = options.num_predict ?? "";
  $("num-ctx").value = options.num_ctx ?? "";
  $("documents").value = options.documents ?? "";
  if (data.model && S.models.some((m) => m.name === data.model)) $("model").value = data.model;
  showModelInfo();
  renderConversation();
  await loadConversations();
}

export function newChat() {
  if (S.streaming) stop();
  S.conv = null;
  $("system").value = "";
  localStorage.removeItem("hearth.conversation");
  renderConversation();
  loadConversations();
  $("input").focus();
}
