// Sending: the whole conversation to /api/chat with its conversation_id, streamed; Stop; attachments.
import { api, errorText, ndjson, readJson } from "./api.js";
import { loadConversations, newId } from "./conversations.js";
import { $, autosize, el, notice } from "./dom.js";
import { messageView, renderConversation } from "./messages.js";
import { markdown } from "./render.js";
import { MAX_ATTACH_BYTES, S } from "./state.js";

export function options() {
  const out = {};
  const t = $("temperature").value;
  const n = $("max-tokens").value;
  const c = $("num-ctx").value;
  if (t !== "") out.temperature = Number(t);
  if (n !== "") out.num_predict = Number(n);
  if (c !== "") out.num_ctx = Number(c);
  return out;
}

export function wireMessages() {
  const out = [];
  const system = $("system").value.trim();
  const hasSystem = S.conv.messages.some((m) => m.role === "system");
  if (system && !hasSystem) out.push({ role: "system", content: system });
  S.conv.messages.forEach((m) => out.push({ role: m.role, content: m.content }));
  return out;
}

export async function send() {
  const input = $("input");
  const text = input.value.trim();
  if ((!text && !S.attachments.length) || S.streaming) return;
  if (!$("model").value) { notice("no model: pull one under Models first"); return; }
  if (!S.conv) {
    S.conv = { id: newId(), messages: [], branches: [], recorded: false };
    localStorage.setItem("hearth.conversation", S.conv.id);
  }
  const system = $("system").value.trim();
  if (system && !S.conv.messages.length) S.conv.messages.push({ role: "system", content: system });
  S.conv.messages.push({ role: "user", content: withAttachments(text) });
  input.value = "";
  autosize();
  clearAttachments();
  renderConversation();
  await generate();
}

export async function generate() {
  notice("");
  const conv = S.conv;
  const model = $("model").value;
  localStorage.setItem("hearth.model", model);
  const documents = $("documents").value;
  localStorage.setItem(`hearth.options.${conv.id}`, JSON.stringify({ ...options(), documents }));
  const answer = { role: "assistant", content: "", thinking: "", tool_calls: [] };
  const messages = wireMessages();
  conv.messages.push(answer);
  const view = messageView(answer, conv.messages.length - 1);
  view.classList.add("streaming");
  view.setAttribute("aria-busy", "true");
  $("messages").append(view);
  const content = view.querySelector(".content");
  const controller = new AbortController();
  S.streaming = controller;
  setBusy(true);
  let scheduled = false;
  let lastChunk = 0;
  const paint = () => {
    scheduled = false;
    markdown(content, answer.content, false);
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  try {
    const response = await fetch("/api/chat", {
      method: "POST", credentials: "same-origin", signal: controller.signal,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model, messages, stream: true, conversation_id: conv.id, options: options(),
        ...(documents ? { documents } : {}),
      }),
    });
    if (!response.ok) await readJson(response);
    for await (const chunk of ndjson(response, controller.signal)) {
      if (chunk.error) throw new Error(errorText(chunk));
      const m = chunk.message || {};
      if (m.content) answer.content += m.content;
      if (m.thinking) answer.thinking += m.thinking;
      if (m.tool_calls) answer.tool_calls.push(...m.tool_calls);
      lastChunk = performance.now();
      if (chunk.done) {
        answer.stats = {
          prompt_tokens: chunk.prompt_eval_count, completion_tokens: chunk.eval_count,
          eval_ns: chunk.eval_duration,
        };
        answer.finish_reason = chunk.done_reason;
        if (chunk.sources) answer.sources = chunk.sources;
        conv.recorded = true;
      } else if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(paint);
      }
    }
  } catch (err) {
    if (err.name === "AbortError") answer.finish_reason = "stopped";
    else notice(err.message);
  } finally {
    S.streaming = null;
    setBusy(false);
    const done = messageView(answer, conv.messages.length - 1);
    done.dataset.lagMs = lastChunk ? (performance.now() - lastChunk).toFixed(1) : "0";
    view.replaceWith(done);
    if (!answer.content && !answer.tool_calls.length && answer.finish_reason !== "stopped") {
      conv.messages.pop();
      done.remove();
    }
  }
  if (conv.recorded && S.conv === conv) await refreshCurrent(conv.id);
  loadConversations();
}

export async function refreshCurrent(id) {
  try {
    const data = await api("GET", `/api/conversations/${encodeURIComponent(id)}`);
    if (!S.conv || S.conv.id !== id || S.streaming) return;
    const lag = $("messages").lastElementChild?.dataset.lagMs;
    const before = S.conv.messages[S.conv.messages.length - 1];
    const after = data.messages[data.messages.length - 1];
    if (before && after && before.sources) after.sources = before.sources;  // sources are not in the history
    data.recorded = true;
    S.conv = data;
    renderConversation();
    if (lag && $("messages").lastElementChild) $("messages").lastElementChild.dataset.lagMs = lag;
  } catch (err) {
    // history may be off: the page keeps what it has
  }
}

export function stop() {
  if (S.streaming) S.streaming.abort();
}

export function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  document.body.classList.toggle("busy", busy);
}

// -- attachments ---------------------------------------------------------------------------------------
export function withAttachments(text) {
  const parts = S.attachments.map((a) => `Attached file “${a.name}”:\n\n\`\`\`\n${a.text}\n\`\`\``);
  if (text) parts.push(text);
  return parts.join("\n\n");
}

export function clearAttachments() {
  S.attachments = [];
  $("attachments").replaceChildren();
}

export async function fileText(file) {
  if (file.size > MAX_ATTACH_BYTES) throw new Error(`${file.name} is larger than 8 MB`);
  const parsed = /\.(pdf|docx|html?)$/i.test(file.name) || file.type === "application/pdf";
  if (!parsed) return file.text();
  const response = await fetch(`/api/extract?name=${encodeURIComponent(file.name)}`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/octet-stream" },
    body: file,
  });
  const data = await readJson(response);
  return data.text;
}

export async function attach(file) {
  const chip = el("div", "chip");
  chip.append(el("span", "", `${file.name}: reading…`));
  $("attachments").append(chip);
  try {
    const text = await fileText(file);
    const model = $("model").value;
    const counted = await api("POST", "/api/extract/count", { model, text, options: options() });
    const item = { name: file.name, text: counted.text, tokens: counted.tokens };
    S.attachments.push(item);
    let label = `${file.name}: ${counted.tokens.toLocaleString()} tokens`;
    if (counted.truncated) {
      label += ` — too long for the ${counted.context.toLocaleString()}-token context: only the first `
        + `${counted.kept_tokens.toLocaleString()} tokens are attached`;
      chip.classList.add("warning");
    }
    chip.firstChild.textContent = label;
    const remove = el("button", "icon small", "✕");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.addEventListener("click", () => {
      S.attachments = S.attachments.filter((a) => a !== item);
      chip.remove();
    });
    chip.append(remove);
  } catch (err) {
    chip.classList.add("warning");
    chip.firstChild.textContent = `${file.name}: ${err.message}`;
    setTimeout(() => chip.remove(), 8000);
  }
}
