/* govbot web chat: sends messages and button presses, keeps the unsent ones, catches up after a lost
 * connection. Everything from the server is added with DOM calls (createElement, textContent), never as HTML. */
(function () {
  "use strict";

  var ALLOWED = { b: 1, i: 1, u: 1, s: 1, code: 1, pre: 1, blockquote: 1, a: 1 };
  var WHO = { bot: "web_bot", press: "web_pressed" };
  var OUTBOX_KEY = "govbot-outbox";
  var MESSAGES_URL = "/api/chat/messages";
  var MAX_BACKOFF = 15000;
  var REQUEST_TIMEOUT = 45000; /* the server answers a wait for news within 25 s: longer is a dead connection */
  var SERVER_ERROR_TRIES = 3;

  var log = document.getElementById("log");
  var composer = document.getElementById("composer");
  var input = document.getElementById("message");
  var statusLine = document.getElementById("status");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var strings = parseJson(document.body.getAttribute("data-strings"), {});
  var lastSeq = Number(log.getAttribute("data-last-seq")) || 0;
  var outbox = loadOutbox();
  var flushing = false;
  var stopped = false;
  var wakers = [];

  function parseJson(text, fallback) {
    try {
      var value = JSON.parse(text || "");
      return value === null || value === undefined ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function say(key) {
    return strings[key] || "";
  }

  function newId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function loadOutbox() {
    var saved = parseJson(window.sessionStorage ? sessionStorage.getItem(OUTBOX_KEY) : "", []);
    return Array.isArray(saved) ? saved.filter(function (item) { return item && item.body; }) : [];
  }

  function saveOutbox() {
    try {
      sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox));
    } catch (e) {
      /* storage refused (private mode): the outbox lives in memory only */
    }
  }

  /* Wait, but wake early when the browser says it is back online. */
  function pause(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakers = wakers.filter(function (w) { return w !== done; });
        resolve();
      }
      wakers.push(done);
    });
  }

  window.addEventListener("online", function () {
    wakers.slice().forEach(function (wake) { wake(); });
  });

  function setStatus(message) {
    if (statusLine.textContent !== message) {
      statusLine.textContent = message;
    }
  }

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    return node;
  }

  function isWebUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url);
  }

  /* The server's tree of allowed elements and text, as DOM nodes. */
  function build(nodes, parent) {
    (nodes || []).forEach(function (node) {
      if (typeof node === "string") {
        parent.appendChild(document.createTextNode(node));
        return;
      }
      if (!node || !ALLOWED.hasOwnProperty(node.tag)) {
        return;
      }
      if (node.tag === "a" && !isWebUrl(node.href)) {
        build(node.children, parent);
        return;
      }
      var element = document.createElement(node.tag);
      if (node.tag === "a") {
        element.href = node.href;
        element.rel = "noopener noreferrer";
      }
      build(node.children, element);
      parent.appendChild(element);
    });
  }

  function who(key) {
    var span = el("span", "who sr-only");
    span.setAttribute("data-ui", key);
    span.textContent = say(key) + " ";
    return span;
  }

  function hidden(form, name, value) {
    var field = el("input");
    field.type = "hidden";
    field.name = name;
    field.value = value;
    form.appendChild(field);
  }

  /* A link button's mark for the eye; a screen reader would read it in the link's name. */
  function arrow() {
    var span = el("span", "arrow");
    span.setAttribute("aria-hidden", "true");
    span.textContent = "\u2197";
    return span;
  }

  function buttonsForm(entry) {
    var form = el("form", "buttons press");
    form.method = "post";
    form.action = MESSAGES_URL;
    hidden(form, "csrf", csrf);
    hidden(form, "reply", String(entry.seq));
    entry.buttons.forEach(function (row) {
      var line = el("div", "row");
      (row || []).forEach(function (button) {
        var control;
        if (isWebUrl(button.url)) {
          control = el("a", "link-button");
          control.href = button.url;
          control.rel = "noopener noreferrer";
        } else if (button.payload) {
          control = el("button");
          control.type = "submit";
          control.name = "payload";
          control.value = button.payload;
        } else {
          control = el("span", "link-button dead");
        }
        control.textContent = button.label || "";
        if (control.tagName === "A") {
          control.appendChild(arrow());
        }
        line.appendChild(control);
      });
      form.appendChild(line);
    });
    return form;
  }

  /* An entry in the language the server says it is shown in (the page's now, for one sent from here), as its
   * label is: after a switch, a screen reader still reads the earlier entries in their own language's voice. */
  function entryBox(className, lang) {
    var box = el("div", className);
    box.lang = lang ? languageTag(lang) : document.documentElement.lang;
    return box;
  }

  function renderEntry(entry) {
    var buttons = Array.isArray(entry.buttons) ? entry.buttons : [];
    var hasBody = Array.isArray(entry.nodes) && entry.nodes.length > 0;
    if (!hasBody && !buttons.length && !entry.document) {
      return null;
    }
    var box = entryBox("msg msg-" + (entry.role === "bot" ? "bot" : "citizen"), entry.lang);
    box.id = "e" + entry.seq;
    box.setAttribute("data-seq", String(entry.seq));
    if (hasBody) {
      var bubble = el("div", "bubble");
      bubble.dir = "auto";
      bubble.appendChild(who(WHO[entry.role] || "web_you"));
      build(entry.nodes, bubble);
      box.appendChild(bubble);
    }
    if (buttons.length) {
      box.appendChild(buttonsForm(entry));
    }
    if (entry.document && typeof entry.document.url === "string") {
      var link = el("a", "document");
      link.href = entry.document.url;
      link.setAttribute("download", "");
      link.textContent = say("web_download").replace("{filename}", entry.document.filename || "");
      box.appendChild(link);
    }
    return box;
  }

  function firstPending() {
    return log.querySelector(".pending");
  }

  /* The newest entry into view. On short screens the log does not scroll on its own but with the page,
   * which then brings the entry's start to the top. */
  function scrollToEnd() {
    var newest = log.lastElementChild;
    if (newest && getComputedStyle(log).overflowY === "visible") {
      newest.scrollIntoView({ block: "start" });
    } else {
      log.scrollTop = log.scrollHeight;
    }
  }

  /* What an entry's bubble says after its "who" label. */
  function said(box) {
    var bubble = box.querySelector(".bubble");
    var label = bubble && bubble.querySelector(".sr-only");
    return bubble && label ? bubble.textContent.slice(label.textContent.length) : null;
  }

  /* A pending bubble becomes its stored entry. When that says the same, the bubble stays and only loses its
   * note, since the log's live region has announced it already; stored otherwise (masked), it is replaced. */
  function settle(pending, node) {
    if (said(pending) === null || said(pending) !== said(node)) {
      pending.replaceWith(node);
      return;
    }
    pending.removeAttribute("data-client-id");
    pending.className = node.className;
    pending.id = node.id;
    pending.setAttribute("data-seq", node.getAttribute("data-seq"));
    pending.querySelectorAll(".pending-note").forEach(function (note) { note.remove(); });
  }

  /* Add entries we have not shown yet, in order; a pending bubble gives way to its stored entry. Only news
   * scrolls: on a short screen the page scrolls too, and would leave the message box being written in. */
  function apply(entries) {
    var news = false;
    (entries || []).forEach(function (entry) {
      if (!entry || typeof entry.seq !== "number") {
        return;
      }
      var pending = entry.client_id
        ? log.querySelector('[data-client-id="' + CSS.escape(entry.client_id) + '"]')
        : null;
      if (entry.seq <= lastSeq) {
        /* shown already (the page loaded with it while its answer was lost): its pending bubble is a copy */
        if (pending) {
          pending.remove();
        }
        return;
      }
      lastSeq = entry.seq;
      news = true;
      var node = renderEntry(entry);
      if (pending && node) {
        settle(pending, node);
      } else if (pending) {
        pending.remove();
      } else if (node) {
        log.insertBefore(node, firstPending());
      }
    });
    if (news) {
      scrollToEnd();
    }
  }

  /* The citizen's data was erased: the log on the server starts again, and so does this one. The button
   * pressed to erase goes with it, so its focus moves to the message box rather than to the page. */
  function clearLog(keepPending) {
    var focused = document.activeElement;
    Array.prototype.slice.call(log.querySelectorAll(".msg")).forEach(function (node) {
      if (!(keepPending && node.classList.contains("pending"))) {
        node.remove();
      }
    });
    lastSeq = 0;
    if (focused && !focused.isConnected) {
      input.focus();
    }
  }

  function showPending(item) {
    var text = item.body.text !== undefined ? item.body.text : item.label;
    if (!text) {
      return;
    }
    var box = entryBox("msg msg-citizen pending");
    box.setAttribute("data-client-id", item.body.client_id);
    var bubble = el("div", "bubble");
    bubble.dir = "auto";
    bubble.appendChild(who(item.body.text !== undefined ? "web_you" : "web_pressed"));
    bubble.appendChild(document.createTextNode(text));
    var note = el("span", "pending-note");
    note.setAttribute("data-ui", "web_sending");
    note.textContent = say("web_sending");
    box.appendChild(bubble);
    box.appendChild(note);
    log.appendChild(box);
    scrollToEnd();
  }

  function dropPending(item) {
    var pending = log.querySelector('[data-client-id="' + CSS.escape(item.body.client_id) + '"]');
    if (pending) {
      pending.remove();
    }
  }

  /* A typed message the server would not take goes back into an empty message box, to be sent again. */
  function giveBack(item) {
    if (item.body.text !== undefined && !input.value) {
      input.value = item.body.text;
    }
  }

  /* The page's own words in the new language. The entries shown keep theirs: the log is a live region, and
   * relabelling every entry in it would have a screen reader announce each label again. */
  function applyStrings() {
    document.querySelectorAll("[data-ui]").forEach(function (node) {
      var value = strings[node.getAttribute("data-ui")];
      if (value !== undefined && !log.contains(node)) {
        node.textContent = value;
      }
    });
    document.querySelectorAll("[data-ui-aria-label]").forEach(function (node) {
      var value = strings[node.getAttribute("data-ui-aria-label")];
      if (value !== undefined) {
        node.setAttribute("aria-label", value);
      }
    });
  }

  /* The dialogue's language code (zh), as messages send it. */
  function language() {
    return composer.elements.namedItem("lang").value;
  }

  /* The markup says the language as its switch button does (zh-Hans); messages keep the code. */
  function languageTag(lang) {
    var tag = lang;
    document.querySelectorAll("button.lang").forEach(function (button) {
      tag = button.value === "lang:" + lang && button.lang ? button.lang : tag;
    });
    return tag;
  }

  function setLanguage(lang) {
    if (typeof lang !== "string" || language() === lang) {
      return;
    }
    composer.elements.namedItem("lang").value = lang;
    document.querySelectorAll("button.lang").forEach(function (button) {
      button.setAttribute("aria-pressed", button.value === "lang:" + lang ? "true" : "false");
    });
    document.documentElement.lang = languageTag(lang);
  }

  /* The page takes the language the server shows new entries in, from whichever answer brings it first:
   * news may bring the reply to the press of 中文 before that press's own response. */
  function follow(data) {
    if (data.ui && typeof data.ui === "object") {
      strings = data.ui;
      applyStrings();
    }
    setLanguage(data.lang);
  }

  function receive(data) {
    follow(data);
    if (data.erased === true) {
      clearLog(false);
    }
    apply(data.entries);
    var notices = Array.isArray(data.notices) ? data.notices : [];
    setStatus(notices.join(" "));
  }

  /* The server is there but cannot work now (its database is down), or a reverse proxy cannot reach it (502,
   * 504, often without Retry-After): like being offline, the message waits. */
  function unavailable(response) {
    return [502, 503, 504].indexOf(response.status) >= 0 ||
      (response.status >= 500 && response.headers.has("Retry-After"));
  }

  function retryAfter(response, fallback) {
    var seconds = Number(response.headers.get("Retry-After"));
    return seconds > 0 ? seconds * 1000 : fallback;
  }

  /* fetch, given up after REQUEST_TIMEOUT: a connection a network change left dead answers never and fails
   * never, and would hold the outbox or the wait for news for good. Tries again are safe (client_id, after). */
  function request(url, options) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT);
    options.signal = controller.signal;
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        clearTimeout(timer);
        return { status: response.status, ok: response.ok, headers: response.headers, body: text };
      });
    }, function (error) {
      clearTimeout(timer);
      throw error;
    });
  }

  function post(body) {
    return request(MESSAGES_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin"
    });
  }

  /* Send the outbox in order. A lost connection keeps the message and tries again with the same
   * client_id, so the server recognises a message it already handled and answers from its log. */
  async function flush() {
    if (flushing || stopped) {
      return;
    }
    flushing = true;
    var backoff = 1000;
    var serverErrors = 0;
    try {
      while (outbox.length && !stopped) {
        var item = outbox[0];
        var response = null;
        var data = null;
        try {
          response = await post(item.body);
          data = response.ok ? JSON.parse(response.body) : null;
        } catch (e) {
          response = null;
        }
        if (response === null || unavailable(response)) {
          /* kept however long it takes: the same client_id makes sending it again safe */
          setStatus(say("web_offline"));
          await pause(response === null ? backoff : retryAfter(response, backoff));
          backoff = Math.min(backoff * 2, MAX_BACKOFF);
          continue;
        }
        if (response.status === 429 || (response.status >= 500 && ++serverErrors < SERVER_ERROR_TRIES)) {
          /* the page's own words: the server's detail may not be in the citizen's language */
          setStatus(say(response.status === 429 ? "web_too_fast" : "web_not_sent"));
          await pause(retryAfter(response, backoff));
          backoff = Math.min(backoff * 2, MAX_BACKOFF);
          continue;
        }
        if (response.status === 403) {
          stopped = true; /* the page's token no longer fits the cookie: a reload sends the outbox anew */
          setStatus(say("web_expired"));
          return;
        }
        outbox.shift();
        saveOutbox();
        backoff = 1000;
        serverErrors = 0;
        if (data) {
          receive(data);
        } else {
          dropPending(item);
          giveBack(item);
          setStatus(say("web_rejected"));
        }
      }
    } finally {
      flushing = false;
    }
  }

  function queue(body, label) {
    body.client_id = newId();
    body.lang = language();
    var item = { body: body, label: label || "" };
    outbox.push(item);
    saveOutbox();
    showPending(item);
    flush();
  }

  /* Long polling: ask for everything after the last entry shown; the server answers when there is news. */
  async function poll() {
    var backoff = 1000;
    while (!stopped) {
      var started = Date.now();
      try {
        var query = "?after=" + lastSeq + "&wait=25&lang=" + encodeURIComponent(language());
        var response = await request("/api/chat/updates" + query, {
          credentials: "same-origin",
          cache: "no-store"
        });
        if (response.status === 403) {
          stopped = true;
          setStatus(say("web_expired"));
          return;
        }
        if (!response.ok) {
          if (unavailable(response)) {
            setStatus(say("web_offline"));
          }
          await pause(retryAfter(response, backoff));
          backoff = Math.min(backoff * 2, MAX_BACKOFF);
          continue;
        }
        var data = JSON.parse(response.body);
        if (typeof data.last_seq === "number" && data.last_seq < lastSeq) {
          clearLog(true); /* the log was emptied (the citizen erased their data, maybe in another tab) */
          continue;
        }
        follow(data);
        apply(data.entries);
        if (statusLine.textContent === say("web_offline")) {
          setStatus("");
        }
        backoff = 1000;
        if (!(data.entries || []).length && Date.now() - started < 1000) {
          await pause(1000);
        }
      } catch (e) {
        setStatus(say("web_offline"));
        await pause(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF);
      }
    }
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value;
    if (!value.trim()) {
      input.focus();
      return;
    }
    queue({ text: value });
    input.value = "";
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  /* Every button under a reply, and the language switch, is a submit button of a "press" form. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("press")) {
      return;
    }
    event.preventDefault();
    var button = event.submitter;
    if (!button || !button.value) {
      return;
    }
    var reply = form.elements.namedItem("reply");
    var body = { payload: button.value, label: button.textContent };
    if (reply) {
      body.reply = Number(reply.value);
    }
    queue(body, button.textContent);
  });

  /* Enter sends only through this script; without it the hint would be wrong. */
  document.getElementById("message-hint").hidden = false;
  input.setAttribute("aria-describedby", "message-hint");
  outbox.forEach(showPending);
  scrollToEnd();
  flush();
  poll();
})();
