// The page's state: the open conversation, the models, the answer being streamed, attachments.

export const MAX_ATTACH_BYTES = 8 * 1024 * 1024;  // the server's default max_body_bytes

export const S = {
  conv: null,          // {id, title, messages: [{role, content, position?, stats?}], parent_id, branches}
  models: [],          // /api/tags entries
  streaming: null,     // the AbortController of the answer being streamed
  attachments: [],     // [{name, text, tokens}]
  searchTimer: null,
};
