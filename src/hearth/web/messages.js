// Messages on screen: user text as text, answers as sanitized Markdown, branches, edit and regenerate.
import { api } from "./api.js";
import { generate } from "./chat.js";
import { newId, openConversation } from "./conversations.js";
import { $, el, notice } from "./dom.js";
import { copyButton, markdown } from "./render.js";
import { S } from "./state.js";

export function renderConversation() {
  const box = $("messages");
  box.replaceChildren();
  const messages = S.conv ? S.conv.messages : [];
  $("system").disabled = messages.some((m) => m.role !== "system");
  messages.forEach((m, i) => { if (m.role !== "system") box.append(messageView(m, i)); });
  renderBranches();
  box.scrollTop = box.scrollHeight;
}

export function renderBranches() {
  const info = $("branch-info");
  info.replaceChildren();
  const conv = S.conv;
  if (!conv) { info.hidden = true; return; }
  if (conv.parent_id) {
    info.append(`Branch of an earlier conversation (from message ${conv.parent_at}). `);
    info.append(linkTo(conv.parent_id, "Open the original"));
  }
  (conv.branches || []).forEach((b, i) => {
    info.append(" ");
    info.append(linkTo(b.id, `Branch ${i + 1} (from message ${b.parent_at})`));
  });
  info.hidden = !info.childNodes.length;
}

export function linkTo(id, text) {
  const button = el("button", "link", text);
  button.type = "button";
  button.addEventListener("click", () => openConversation(id));
  return button;
}

export function statsText(stats) {
  if (!stats) return "";
  const parts = [];
  if (stats.prompt_tokens) parts.push(`${stats.prompt_tokens} prompt tokens`);
  if (stats.completion_tokens) parts.push(`${stats.completion_tokens} tokens`);
  if (stats.completion_tokens > 1 && stats.eval_ns > 0) {
    parts.push(`${((stats.completion_tokens - 1) / (stats.eval_ns / 1e9)).toFixed(1)} tokens/s`);
  }
  return parts.join(" · ");
}

export function messageView(m, index) {
  const article = el("article", `msg ${m.role}`);
  article.dataset.index = index;
  const who = el("h3", "visually-hidden", m.role === "user" ? "You said:" : "Hearth said:");
  article.append(who);
  if (m.thinking) {
    const details = el("details", "thinking");
    details.append(el("summary", "", "Thinking"), el("pre", "", m.thinking));
    article.append(details);
  }
  const body = el("div", "content");
  if (m.role === "user") body.textContent = m.content;
  else markdown(body, m.content || "", true);
  article.append(body);
  (m.tool_calls || []).forEach((call) => article.append(toolCard(call)));
  if (m.sources && m.sources.length) article.append(sourcesView(m.sources));
  const footer = el("div", "meta");
  if (m.role === "assistant") {
    footer.append(el("span", "stats", statsText(m.stats)));
    if (m.finish_reason === "stopped") footer.append(el("span", "stats", " · stopped"));
    footer.append(copyButton(() => m.content, "Copy the answer"));
    if (index === S.conv.messages.length - 1) {
      const again = el("button", "small", "Regenerate");
      again.type = "button";
      again.addEventListener("click", () => regenerate());
      footer.append(again);
    }
  } else if (m.role === "user") {
    const edit = el("button", "small", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", "Edit this message");
    edit.addEventListener("click", () => startEdit(article, index));
    footer.append(edit);
  }
  article.append(footer);
  return article;
}

export function toolCard(call) {
  const fn = call.function || {};
  const card = el("div", "tool-card");
  card.append(el("strong", "", `Tool call: ${fn.name || "?"}`));
  card.append(el("pre", "", JSON.stringify(fn.arguments ?? {}, null, 2)));
  return card;
}

export function sourcesView(sources) {
  const details = el("details", "sources");
  details.open = true;
  details.append(el("summary", "", "Sources"));
  const list = el("ol");
  sources.forEach((source) => {
    const file = String(source.path || "").split(/[\\/]/).pop();
    const where = source.page ? `${file}, page ${source.page}` : file;
    const item = el("li", source.cited ? "cited" : "", `[${source.number}] ${where}`);
    item.title = source.text || "";
    list.append(item);
  });
  details.append(list);
  return details;
}

export function startEdit(article, index) {
  if (S.streaming) return;
  const original = S.conv.messages[index];
  const area = el("textarea", "edit");
  area.value = original.content;
  area.setAttribute("aria-label", "Edited message");
  const save = el("button", "primary small", "Send edited");
  save.type = "button";
  const cancel = el("button", "small", "Cancel");
  cancel.type = "button";
  const body = article.querySelector(".content");
  const footer = article.querySelector(".meta");
  body.replaceWith(area);
  footer.replaceChildren(save, cancel);
  area.focus();
  cancel.addEventListener("click", renderConversation);
  save.addEventListener("click", async () => {
    const text = area.value.trim();
    if (!text) return;
    await branchAt(index);
    S.conv.messages.push({ role: "user", content: text });
    renderConversation();
    generate();
  });
}

// Keep messages[0..index) in a new branch of the conversation (the old one stays as it was).
export async function branchAt(index) {
  const kept = S.conv.messages.slice(0, index);
  const at = kept.length;  // positions are 1-based and every recorded message has one
  let id = newId();
  let parent = null;
  if (S.conv.recorded) {
    try {
      const made = await api("POST", `/api/conversations/${encodeURIComponent(S.conv.id)}/fork`, { at });
      id = made.id;
      parent = S.conv.id;
    } catch (err) {
      notice(`the earlier version could not be kept: ${err.message}`);
    }
  }
  const options = localStorage.getItem(`hearth.options.${S.conv.id}`);
  if (options) localStorage.setItem(`hearth.options.${id}`, options);
  S.conv = { id, messages: kept, parent_id: parent, parent_at: at, branches: [], recorded: parent !== null };
  localStorage.setItem("hearth.conversation", id);
}

export async function regenerate() {
  if (S.streaming || !S.conv) return;
  const last = S.conv.messages.length - 1;
  if (last < 0 || S.conv.messages[last].role !== "assistant") return;
  await branchAt(last);
  renderConversation();
  generate();
}
