// Hearth's web page: a chat over the server's own APIs, nothing loaded from anywhere else.
//
// Conversations live on the server (the same history `hearth chat` uses): the page sends the whole
// conversation to /api/chat with a `conversation_id`, and the server records each answer. Regenerating or
// editing an earlier message forks the conversation on the server first, so the earlier branch stays.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const { markdown, copyButton } = window.HearthRender;
  const MAX_ATTACH_BYTES = 8 * 1024 * 1024;  // the server's default max_body_bytes

  const S = {
    conv: null,          // {id, title, messages: [{role, content, position?, stats?}], parent_id, branches}
    models: [],          // /api/tags entries
    streaming: null,     // the AbortController of the answer being streamed
    attachments: [],     // [{name, text, tokens}]
    searchTimer: null,
  };

  // -- talking to the server ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function errorText(data, status) {
    if (data && typeof data === "object") {
      const e = data.error;
      if (typeof e === "string") return e;
      if (e && typeof e.message === "string") return e.message;
    }
    return `the server answered ${status}`;
  }

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    return readJson(response);
  }

  async function readJson(response) {
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (response.status === 401) showPairing();
    if (!response.ok) throw new ApiError(response.status, errorText(data, response.status));
    return data;
  }

  async function* ndjson(response, signal) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 1);
          if (line) yield JSON.parse(line);
        }
      }
      if (buffer.trim()) yield JSON.parse(buffer);
    } finally {
      if (signal && signal.aborted) reader.cancel().catch(() => {});
    }
  }

  function notice(text) {
    const box = $("notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // -- pairing (a phone on the LAN) ------------------------------------------------------------------------
  function showPairing() {
    const dialog = $("pair-dialog");
    if (!dialog.open) dialog.showModal();
  }

  async function pair(code) {
    const response = await fetch("/api/pair", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: code.trim() }),
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (!response.ok) throw new ApiError(response.status, errorText(data, response.status));
  }

  async function pairFromUrl() {
    const params = new URLSearchParams(location.search);
    const code = params.get("pair");
    if (!code) return;
    history.replaceState(null, "", location.pathname);  // the code works once: keep it out of the history
    try {
      await pair(code);
    } catch (err) {
      $("pair-error").textContent = err.message;
      showPairing();
    }
  }

  // -- models ---------------------------------------------------------------------------------------------
  function sizeText(bytes) {
    if (!bytes) return "0 B";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return `${bytes.toFixed(bytes < 10 && i ? 1 : 0)} ${units[i]}`;
  }

  function modelLabel(m) {
    const bits = [m.name];
    if (m.remote_host) bits.push("remote");
    else if (m.size) bits.push(sizeText(m.size));
    if (m.fit) bits.push(m.fit);
    return bits.join(" · ");
  }

  async function loadModels() {
    const data = await api("GET", "/api/tags");
    S.models = data.models || [];
    const select = $("model");
    const previous = select.value || localStorage.getItem("hearth.model");
    select.replaceChildren(...S.models.map((m) => {
      const option = el("option", "", modelLabel(m));
      option.value = m.name;
      return option;
    }));
    if (previous && S.models.some((m) => m.name === previous)) select.value = previous;
    showModelInfo();
  }

  function showModelInfo() {
    const m = S.models.find((x) => x.name === $("model").value);
    $("model-info").textContent = m && m.remote_host ? `runs on ${m.remote_host}` : "";
  }

  async function loadCollections() {
    let data;
    try {
      data = await api("GET", "/api/documents");
    } catch (err) {
      return;  // no collections to offer: the picker keeps "(none)"
    }
    const select = $("documents");
    const keep = select.value;
    select.replaceChildren(el("option", "", "(none)"), ...(data.collections || []).map((c) => {
      const option = el("option", "", `${c.name} (${c.files} files)`);
      option.value = c.name;
      return option;
    }));
    select.options[0].value = "";
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }

  async function loadRunning() {
    const data = await api("GET", "/api/ps");
    const list = $("loaded");
    const items = (data.models || []).map((m) => {
      const li = el("li");
      const until = m.expires_at ? new Date(m.expires_at) : null;
      const when = until && until.getFullYear() < 2200 ? `until ${until.toLocaleTimeString()}` : "kept loaded";
      li.append(el("span", "", `${m.name} · ${sizeText(m.size)} · ${when}`));
      const unload = el("button", "small", "Unload");
      unload.type = "button";
      unload.setAttribute("aria-label", `Unload ${m.name}`);
      unload.addEventListener("click", async () => {
        await api("POST", "/api/generate", { model: m.name, keep_alive: 0 }).catch((e) => notice(e.message));
        loadRunning();
      });
      li.append(unload);
      return li;
    });
    list.replaceChildren(...(items.length ? items : [el("li", "muted", "none")]));
  }

  async function pull(name) {
    const bar = $("pull-progress");
    const status = $("pull-status");
    bar.hidden = false;
    bar.removeAttribute("value");
    status.textContent = `pulling ${name}…`;
    try {
      const response = await fetch("/api/pull", {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, stream: true }),
      });
      if (!response.ok) await readJson(response);
      for await (const event of ndjson(response)) {
        if (event.error) throw new Error(errorText(event));
        if (event.total) {
          bar.max = event.total;
          bar.value = event.completed || 0;
          status.textContent = `${event.status}: ${sizeText(event.completed || 0)} of ${sizeText(event.total)}`;
        } else {
          status.textContent = event.status || "";
        }
      }
      bar.value = bar.max;
      await loadModels();
      status.textContent = `${name} is ready`;
    } catch (err) {
      status.textContent = `pull failed: ${err.message}`;
      bar.hidden = true;
    }
  }

  // -- conversations -------------------------------------------------------------------------------------
  function newId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function loadConversations() {
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

  function conversationItem(c) {
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

  function startRename(li, c) {
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

  async function openConversation(id, quiet = false) {
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

  function newChat() {
    if (S.streaming) stop();
    S.conv = null;
    $("system").value = "";
    localStorage.removeItem("hearth.conversation");
    renderConversation();
    loadConversations();
    $("input").focus();
  }

  // -- rendering messages --------------------------------------------------------------------------------
  function renderConversation() {
    const box = $("messages");
    box.replaceChildren();
    const messages = S.conv ? S.conv.messages : [];
    $("system").disabled = messages.some((m) => m.role !== "system");
    messages.forEach((m, i) => { if (m.role !== "system") box.append(messageView(m, i)); });
    renderBranches();
    box.scrollTop = box.scrollHeight;
  }

  function renderBranches() {
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

  function linkTo(id, text) {
    const button = el("button", "link", text);
    button.type = "button";
    button.addEventListener("click", () => openConversation(id));
    return button;
  }

  function statsText(stats) {
    if (!stats) return "";
    const parts = [];
    if (stats.prompt_tokens) parts.push(`${stats.prompt_tokens} prompt tokens`);
    if (stats.completion_tokens) parts.push(`${stats.completion_tokens} tokens`);
    if (stats.completion_tokens > 1 && stats.eval_ns > 0) {
      parts.push(`${((stats.completion_tokens - 1) / (stats.eval_ns / 1e9)).toFixed(1)} tokens/s`);
    }
    return parts.join(" · ");
  }

  function messageView(m, index) {
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

  function toolCard(call) {
    const fn = call.function || {};
    const card = el("div", "tool-card");
    card.append(el("strong", "", `Tool call: ${fn.name || "?"}`));
    card.append(el("pre", "", JSON.stringify(fn.arguments ?? {}, null, 2)));
    return card;
  }

  function sourcesView(sources) {
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

  function startEdit(article, index) {
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
  async function branchAt(index) {
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

  async function regenerate() {
    if (S.streaming || !S.conv) return;
    const last = S.conv.messages.length - 1;
    if (last < 0 || S.conv.messages[last].role !== "assistant") return;
    await branchAt(last);
    renderConversation();
    generate();
  }

  // -- sending and streaming -----------------------------------------------------------------------------
  function options() {
    const out = {};
    const t = $("temperature").value;
    const n = $("max-tokens").value;
    const c = $("num-ctx").value;
    if (t !== "") out.temperature = Number(t);
    if (n !== "") out.num_predict = Number(n);
    if (c !== "") out.num_ctx = Number(c);
    return out;
  }

  function wireMessages() {
    const out = [];
    const system = $("system").value.trim();
    const hasSystem = S.conv.messages.some((m) => m.role === "system");
    if (system && !hasSystem) out.push({ role: "system", content: system });
    S.conv.messages.forEach((m) => out.push({ role: m.role, content: m.content }));
    return out;
  }

  async function send() {
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

  async function generate() {
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

  async function refreshCurrent(id) {
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

  function stop() {
    if (S.streaming) S.streaming.abort();
  }

  function setBusy(busy) {
    $("send").hidden = busy;
    $("stop").hidden = !busy;
    document.body.classList.toggle("busy", busy);
  }

  // -- attachments ---------------------------------------------------------------------------------------
  function withAttachments(text) {
    const parts = S.attachments.map((a) => `Attached file “${a.name}”:\n\n\`\`\`\n${a.text}\n\`\`\``);
    if (text) parts.push(text);
    return parts.join("\n\n");
  }

  function clearAttachments() {
    S.attachments = [];
    $("attachments").replaceChildren();
  }

  async function fileText(file) {
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

  async function attach(file) {
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

  // -- layout and keys -----------------------------------------------------------------------------------
  function autosize() {
    const input = $("input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  }

  function openDrawer() {
    document.body.classList.add("drawer-open");
    $("scrim").hidden = false;
    $("new-chat").focus();
  }

  function closeDrawer() {
    document.body.classList.remove("drawer-open");
    $("scrim").hidden = true;
  }

  function wire() {
    $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
    });
    $("input").addEventListener("input", autosize);
    document.addEventListener("keydown", (event) => { if (event.key === "Escape" && S.streaming) stop(); });
    $("stop").addEventListener("click", stop);
    $("new-chat").addEventListener("click", () => { newChat(); closeDrawer(); });
    $("search").addEventListener("input", () => {
      clearTimeout(S.searchTimer);
      S.searchTimer = setTimeout(loadConversations, 200);
    });
    $("model").addEventListener("change", showModelInfo);
    $("settings-toggle").addEventListener("click", () => {
      const panel = $("settings");
      panel.hidden = !panel.hidden;
      $("settings-toggle").setAttribute("aria-expanded", String(!panel.hidden));
    });
    $("file").addEventListener("change", () => {
      Array.from($("file").files).forEach(attach);
      $("file").value = "";
    });
    $("pull-form").addEventListener("submit", (event) => { event.preventDefault(); pull($("pull-name").value.trim()); });
    $("models-panel").addEventListener("toggle", () => { if ($("models-panel").open) loadRunning(); });
    $("open-drawer").addEventListener("click", openDrawer);
    $("close-drawer").addEventListener("click", closeDrawer);
    $("scrim").addEventListener("click", closeDrawer);
    $("pair-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await pair($("pair-code").value);
        $("pair-dialog").close();
        start();
      } catch (err) {
        $("pair-error").textContent = err.message;
      }
    });
  }

  async function start() {
    try {
      await loadModels();
    } catch (err) {
      if (err.status !== 401) notice(err.message);
      return;
    }
    await Promise.all([loadConversations(), loadCollections()]);
    const last = localStorage.getItem("hearth.conversation");
    if (last) await openConversation(last, true);
    document.body.dataset.ready = "true";
  }

  wire();
  pairFromUrl().then(start);
})();
