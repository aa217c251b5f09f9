// Hearth's web page: a chat over the server's own APIs, nothing loaded from anywhere else.
//
// Conversations live on the server (the same history `hearth chat` uses): the page sends the whole
// conversation to /api/chat with a `conversation_id`, and the server records each answer. Regenerating or
// editing an earlier message forks the conversation on the server first, so the earlier branch stays.
import { pair, pairFromUrl } from "./api.js";
import { attach, send, stop } from "./chat.js";
import { loadConversations, newChat, openConversation } from "./conversations.js";
import { $, autosize, closeDrawer, notice, openDrawer } from "./dom.js";
import { loadCollections, loadModels, loadRunning, pull, showModelInfo } from "./models.js";
import { S } from "./state.js";

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
