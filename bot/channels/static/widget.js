/*
 * Northwind Threads chat widget.
 *
 * Plain JavaScript, no build step, no dependencies. Speaks the gateway's WebSocket protocol
 * (`/ws?session=<id>` on the page's own origin): history / ack / typing / message / error from
 * the server, `{"type": "message", "id", "text" | "payload"+"title"}` from us.
 *
 * Everything the server or the customer wrote reaches the page through textContent or
 * validated attributes, never through innerHTML.
 */
(function () {
  "use strict";

  var SESSION_KEY = "northwind-chat:session";
  var OUTBOX_KEY_PREFIX = "northwind-chat:outbox:";
  var SESSION_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;
  var BACKOFF_START_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  // If the server never sends history after the socket opens we still want queued messages out.
  var HISTORY_GRACE_MS = 2000;
  // The local "waiting for a reply" dots give up after this long without any server activity.
  var AWAIT_REPLY_TIMEOUT_MS = 30000;
  var MAX_MESSAGE_LENGTH = 2000;
  // Photo search: what the server accepts (it checks again and answers 413/415 otherwise).
  var MAX_PHOTO_BYTES = 10 * 1024 * 1024;
  var PHOTO_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];

  // ---------------------------------------------------------------- ids and storage

  var ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  function randomBytes(count) {
    var bytes = new Uint8Array(count);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < count; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return bytes;
  }

  function newSessionId() {
    var bytes = randomBytes(24);
    var id = "";
    for (var i = 0; i < bytes.length; i++) id += ID_ALPHABET[bytes[i] & 63];
    return id;
  }

  // crypto.randomUUID only exists in secure contexts (https, localhost); a shop opened over
  // plain http on a LAN address still needs ids, so fall back to a v4 uuid from random bytes.
  function newMessageId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      try {
        return window.crypto.randomUUID();
      } catch (e) {
        /* fall through */
      }
    }
    var b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = "";
    for (var i = 0; i < 16; i++) hex += (b[i] + 0x100).toString(16).slice(1);
    return (
      hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20)
    );
  }

  // localStorage can throw (privacy modes, full quota); the chat must still work without it.
  var storage = {
    get: function (key) {
      try {
        return window.localStorage.getItem(key);
      } catch (e) {
        return null;
      }
    },
    set: function (key, value) {
      try {
        window.localStorage.setItem(key, value);
      } catch (e) {
        /* memory only */
      }
    },
    remove: function (key) {
      try {
        window.localStorage.removeItem(key);
      } catch (e) {
        /* nothing to remove */
      }
    },
  };

  function loadSessionId() {
    // `?session=<id>` continues a known chat (the demo's customers: demo-customer-01-northwind …)
    var given = new URLSearchParams(window.location.search).get("session");
    if (given && SESSION_PATTERN.test(given)) {
      storage.set(SESSION_KEY, given);
      return given;
    }
    var stored = storage.get(SESSION_KEY);
    if (stored && SESSION_PATTERN.test(stored)) return stored;
    var fresh = newSessionId();
    storage.set(SESSION_KEY, fresh);
    return fresh;
  }

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "className") el.className = value;
        else if (name === "text") el.textContent = value;
        else el.setAttribute(name, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child) el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return el;
  }

  function safeHttpUrl(raw) {
    if (typeof raw !== "string" || raw === "") return null;
    try {
      var url = new URL(raw, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  var URL_IN_TEXT = /https?:\/\/[^\s<>"']+/g;
  // Sentence punctuation right after a link belongs to the sentence, not the address.
  var TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;

  function appendLine(parent, line) {
    var last = 0;
    var match;
    URL_IN_TEXT.lastIndex = 0;
    while ((match = URL_IN_TEXT.exec(line)) !== null) {
      var raw = match[0];
      var trail = raw.match(TRAILING_PUNCTUATION);
      // Keep a closing parenthesis when the link itself opened one (Wikipedia-style URLs).
      if (trail && trail[0].charAt(0) === ")" && raw.indexOf("(") !== -1) trail = null;
      var address = trail ? raw.slice(0, raw.length - trail[0].length) : raw;
      var href = safeHttpUrl(address);
      if (match.index > last) parent.appendChild(document.createTextNode(line.slice(last, match.index)));
      if (href) {
        parent.appendChild(
          h("a", { href: href, target: "_blank", rel: "noopener noreferrer nofollow", text: address })
        );
      } else {
        parent.appendChild(document.createTextNode(address));
      }
      last = match.index + address.length;
      URL_IN_TEXT.lastIndex = last;
    }
    if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
  }

  function appendText(parent, text) {
    String(text)
      .replace(/\r\n?/g, "\n")
      .split("\n")
      .forEach(function (line, index) {
        if (index > 0) parent.appendChild(document.createElement("br"));
        appendLine(parent, line);
      });
  }

  function formatPrice(price, currency) {
    var amount = Number(price);
    if (price === null || price === undefined || price === "" || !isFinite(amount)) return "";
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR" }).format(
        amount
      );
    } catch (e) {
      // Unknown currency code: show it as the server sent it rather than nothing.
      return String(price) + (currency ? " " + currency : "");
    }
  }

  function formatTime(iso) {
    if (!iso) return null;
    var date = new Date(iso);
    if (isNaN(date.getTime())) return null;
    try {
      return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      return date.toLocaleString();
    }
  }

  // A camera outline (not an emoji: not every system has an emoji font).
  function cameraIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    [
      "M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1z",
      "M12 10.5a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7z",
    ].forEach(function (d) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "1.8");
      path.setAttribute("stroke-linejoin", "round");
      svg.appendChild(path);
    });
    return svg;
  }

  // ---------------------------------------------------------------- widget markup

  function buildWidget() {
    var ui = {};
    ui.status = h("p", { id: "chat-status", className: "chat__status", role: "status" }, ["Connecting…"]);
    ui.newConversation = h("button", { type: "button", className: "chat__action", id: "chat-new" }, [
      "New conversation",
    ]);
    ui.human = h("button", { type: "button", className: "chat__action", id: "chat-human" }, [
      "Talk to a person",
    ]);
    ui.minimise = h(
      "button",
      {
        type: "button",
        className: "chat__action chat__action--icon",
        id: "chat-minimise",
        "aria-label": "Minimise chat",
        title: "Minimise chat",
        "aria-controls": "chat-panel",
        "aria-expanded": "true",
      },
      [h("span", { "aria-hidden": "true", text: "–" })]
    );
    ui.log = h("div", {
      id: "chat-log",
      className: "chat__log",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-label": "Conversation",
    });
    ui.empty = h("p", { className: "chat__empty", id: "chat-empty" }, [
      "Hi! Ask me where your order is, how returns work, or for help finding something to wear.",
    ]);
    ui.typing = h(
      "div",
      { id: "typing", className: "typing", hidden: true },
      [
        h("span", { className: "typing__dot", "aria-hidden": "true" }),
        h("span", { className: "typing__dot", "aria-hidden": "true" }),
        h("span", { className: "typing__dot", "aria-hidden": "true" }),
        h("span", { className: "visually-hidden", text: "The assistant is typing" }),
      ]
    );
    ui.scroller = h("div", { className: "chat__scroller", id: "chat-scroller" }, [ui.empty, ui.log, ui.typing]);
    ui.input = h("input", {
      id: "chat-input",
      className: "chat__input",
      type: "text",
      name: "message",
      autocomplete: "off",
      maxlength: MAX_MESSAGE_LENGTH,
      placeholder: "Type your message…",
      enterkeyhint: "send",
    });
    ui.send = h("button", { id: "chat-send", className: "chat__send", type: "submit" }, ["Send"]);
    ui.photoInput = h("input", {
      id: "chat-photo-input",
      className: "visually-hidden",
      type: "file",
      accept: PHOTO_TYPES.join(","),
      tabindex: "-1",
    });
    ui.attach = h(
      "button",
      {
        type: "button",
        className: "chat__attach",
        id: "chat-attach",
        "aria-label": "Search by photo",
        title: "Search by photo (you can also drop or paste a picture)",
      },
      [cameraIcon()]
    );
    ui.form = h("form", { className: "chat__composer", id: "chat-form" }, [
      ui.attach,
      ui.photoInput,
      h("label", { for: "chat-input", className: "visually-hidden", text: "Message to the shop assistant" }),
      ui.input,
      ui.send,
    ]);
    ui.dropHint = h("div", { className: "chat__drop-hint", id: "chat-drop-hint", hidden: true }, [
      "Drop a photo to find similar items",
    ]);
    ui.panel = h(
      "section",
      { className: "chat__panel", id: "chat-panel", "aria-labelledby": "chat-title" },
      [
        h("header", { className: "chat__header" }, [
          h("div", { className: "chat__heading" }, [
            h("h2", { id: "chat-title", className: "chat__title", text: "Northwind Threads" }),
            ui.status,
          ]),
          h("div", { className: "chat__actions" }, [ui.human, ui.newConversation, ui.minimise]),
        ]),
        ui.scroller,
        ui.dropHint,
        ui.form,
      ]
    );
    ui.launcher = h(
      "button",
      { type: "button", className: "chat__launcher", id: "chat-launcher", hidden: true, "aria-controls": "chat-panel" },
      ["Chat with us"]
    );
    ui.root = h("div", { className: "chat", id: "chat" }, [ui.panel, ui.launcher]);
    var mount = document.getElementById("chat-widget");
    (mount || document.body).appendChild(ui.root);
    return ui;
  }

  // ---------------------------------------------------------------- the widget

  function ChatWidget() {
    this.ui = buildWidget();
    this.sessionId = loadSessionId();
    this.socket = null;
    this.historyReceived = false;
    this.historyTimer = null;
    this.reconnectTimer = null;
    this.backoffMs = BACKOFF_START_MS;
    this.everConnected = false;
    this.serverTyping = false;
    this.awaitingReply = false;
    this.awaitTimer = null;
    this.renderedServerIds = new Set();
    this.outbox = []; // {id, text?, payload?, title?, status, el}
    this.restoreOutbox();
    this.bindEvents();
    this.renderOutbox();
    this.connect();
  }

  ChatWidget.prototype.bindEvents = function () {
    var self = this;
    this.ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = self.ui.input.value.trim();
      if (!text) {
        self.ui.input.focus();
        return;
      }
      self.ui.input.value = "";
      self.send({ text: text });
    });
    this.bindPhotoEvents();
    this.ui.newConversation.addEventListener("click", function () {
      self.startNewConversation();
    });
    this.ui.human.addEventListener("click", function () {
      self.askForPerson();
    });
    this.ui.minimise.addEventListener("click", function () {
      self.setOpen(false);
    });
    this.ui.launcher.addEventListener("click", function () {
      self.setOpen(true);
    });
    window.addEventListener("online", function () {
      self.reconnectNow();
    });
    window.addEventListener("offline", function () {
      self.updateStatus();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") self.reconnectNow();
    });
    window.addEventListener("pagehide", function () {
      self.leaving = true;
    });
    window.addEventListener("pageshow", function () {
      self.leaving = false;
      self.reconnectNow();
    });
  };

  ChatWidget.prototype.setOpen = function (open) {
    this.ui.panel.hidden = !open;
    this.ui.launcher.hidden = open;
    this.ui.minimise.setAttribute("aria-expanded", String(open));
    this.ui.launcher.setAttribute("aria-expanded", String(open));
    this.ui.root.classList.toggle("chat--minimised", !open);
    if (open) {
      this.ui.input.focus();
      this.scrollToEnd(true);
    } else {
      this.ui.launcher.focus();
    }
  };

  // ------------------------------------------------ connection

  ChatWidget.prototype.socketUrl = function () {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws?session=" + encodeURIComponent(this.sessionId);
  };

  ChatWidget.prototype.connect = function () {
    var self = this;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.historyReceived = false;
    this.setState("connecting");
    var socket;
    try {
      socket = new WebSocket(this.socketUrl());
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", function () {
      if (self.socket !== socket) return;
      self.backoffMs = BACKOFF_START_MS;
      self.everConnected = true;
      self.setState("connected");
      clearTimeout(self.historyTimer);
      self.historyTimer = setTimeout(function () {
        if (self.socket === socket && !self.historyReceived) {
          self.historyReceived = true;
          self.flushOutbox();
        }
      }, HISTORY_GRACE_MS);
    });
    socket.addEventListener("message", function (event) {
      if (self.socket !== socket) return;
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (data && typeof data === "object") self.handleServerEvent(data);
    });
    socket.addEventListener("close", function () {
      if (self.socket !== socket) return;
      self.socket = null;
      clearTimeout(self.historyTimer);
      // Anything sent but not acked goes back to "waiting" and is re-sent after reconnect.
      self.outbox.forEach(function (entry) {
        if (entry.status === "sent") self.setEntryStatus(entry, "pending");
      });
      self.serverTyping = false;
      self.stopAwaitingReply();
      if (!self.leaving) self.scheduleReconnect();
    });
    // "error" is always followed by "close"; reconnecting happens there.
  };

  ChatWidget.prototype.scheduleReconnect = function () {
    var self = this;
    if (this.reconnectTimer) return;
    this.setState("offline");
    var delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    // A little jitter so a server restart is not met by every widget in the same millisecond.
    delay = Math.round(delay * (0.85 + Math.random() * 0.3));
    this.reconnectTimer = setTimeout(function () {
      self.reconnectTimer = null;
      self.connect();
    }, delay);
  };

  ChatWidget.prototype.reconnectNow = function () {
    if (this.socket) return;
    this.backoffMs = BACKOFF_START_MS;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.connect();
  };

  ChatWidget.prototype.setState = function (state) {
    this.state = state;
    document.body.dataset.chatState = state;
    this.updateStatus();
  };

  ChatWidget.prototype.updateStatus = function () {
    var text;
    if (this.state === "connected") text = "Connected";
    else if (navigator.onLine === false) text = "Offline — messages will be sent when you are back online";
    else if (this.everConnected || this.state === "offline") text = "Reconnecting…";
    else text = "Connecting…";
    if (this.ui.status.textContent !== text) this.ui.status.textContent = text;
    this.ui.root.dataset.state = this.state;
  };

  // ------------------------------------------------ server events

  ChatWidget.prototype.handleServerEvent = function (data) {
    switch (data.type) {
      case "history":
        this.showHistory(Array.isArray(data.messages) ? data.messages : []);
        this.historyReceived = true;
        clearTimeout(this.historyTimer);
        this.flushOutbox();
        break;
      case "ack":
        this.acknowledge(data.id);
        break;
      case "typing":
        this.serverTyping = data.on === true;
        if (!this.serverTyping) this.stopAwaitingReply();
        this.updateTyping();
        break;
      case "message":
        if (data.message && typeof data.message === "object") this.receive(data.message);
        break;
      case "error":
        this.showError(data);
        break;
      default:
      // Unknown events come from a newer server; ignoring them keeps old widgets working.
    }
  };

  function clientIdOf(message) {
    return message.client_message_id || message.client_id || message.message_id || null;
  }

  ChatWidget.prototype.showHistory = function (messages) {
    var self = this;
    var log = this.ui.log;
    // The transcript is redrawn on every (re)connect; keep the live region quiet meanwhile so a
    // screen reader does not read fifty old messages aloud.
    log.setAttribute("aria-live", "off");
    this.renderedServerIds = new Set();
    var nodes = [];
    messages.forEach(function (message) {
      if (!message || typeof message !== "object") return;
      var clientId = clientIdOf(message);
      if (clientId) self.dropFromOutbox(clientId);
      var node = self.renderMessage(message);
      if (node) nodes.push(node);
    });
    this.outbox.forEach(function (entry) {
      entry.el = self.renderUserEntry(entry);
      nodes.push(entry.el);
    });
    log.replaceChildren.apply(log, nodes);
    this.afterAppend();
    this.scrollToEnd(true);
    setTimeout(function () {
      log.setAttribute("aria-live", "polite");
    }, 0);
  };

  ChatWidget.prototype.receive = function (message) {
    if (message.id !== undefined && message.id !== null) {
      if (this.renderedServerIds.has(String(message.id))) return;
    }
    if (message.role === "user") {
      // Our own message echoed back (e.g. to other tabs): we already show it.
      var clientId = clientIdOf(message);
      if (clientId && this.findEntryById(clientId)) {
        this.acknowledge(clientId);
        return;
      }
    } else {
      // A reply ends the wait; a server that forgets typing:false must not leave dots forever.
      this.serverTyping = false;
      this.stopAwaitingReply();
    }
    var node = this.renderMessage(message);
    if (node) this.append(node);
  };

  ChatWidget.prototype.showError = function (data) {
    var entry = data.id ? this.findEntryById(data.id) : this.oldestUnacknowledged(data.code);
    if (entry) {
      // The server refused this message for good; re-sending it would only fail again.
      this.outbox.splice(this.outbox.indexOf(entry), 1);
      this.saveOutbox();
      this.setEntryStatus(entry, "failed");
    }
    this.stopAwaitingReply();
    var text =
      typeof data.message === "string" && data.message.trim()
        ? data.message.trim()
        : "Sorry, something went wrong on our side. Please try again in a moment.";
    var bubble = h("div", { className: "msg__bubble" });
    appendText(bubble, text);
    var node = h("div", { className: "msg error", "data-code": data.code || null }, [bubble]);
    this.append(node, { keepQuickReplies: true });
  };

  // ------------------------------------------------ rendering

  ChatWidget.prototype.renderMessage = function (message) {
    if (message.id !== undefined && message.id !== null) this.renderedServerIds.add(String(message.id));
    if (message.role === "user") {
      var text = message.text || message.title;
      if (!text) return null;
      return this.renderUserBubble(text, "delivered", message.created_at);
    }
    return this.renderBotMessage(message);
  };

  ChatWidget.prototype.renderBotMessage = function (message) {
    var self = this;
    var node = h("div", { className: "msg bot", "data-id": message.id });
    var when = formatTime(message.created_at);
    if (message.agent) {
      node.classList.add("msg--agent");
      node.appendChild(h("span", { className: "msg__agent", text: String(message.agent) + " · support team" }));
    }
    if (message.text) {
      var bubble = h("div", { className: "msg__bubble", title: when });
      appendText(bubble, message.text);
      node.appendChild(bubble);
    }
    var cards = Array.isArray(message.cards) ? message.cards : [];
    if (cards.length) {
      var row = h("ul", { className: "cards", "aria-label": "Products" });
      cards.forEach(function (card) {
        if (card && typeof card === "object") row.appendChild(self.renderCard(card));
      });
      node.appendChild(row);
    }
    var buttons = Array.isArray(message.buttons) ? message.buttons : [];
    if (buttons.length) {
      var group = h("div", { className: "quick-replies", role: "group", "aria-label": "Suggested replies" });
      buttons.forEach(function (button) {
        var el = self.renderButton(button, "quick-reply");
        if (el) group.appendChild(el);
      });
      node.appendChild(group);
    }
    return node.childNodes.length ? node : null;
  };

  ChatWidget.prototype.renderButton = function (button, className) {
    var self = this;
    if (!button || typeof button !== "object" || !button.title || !button.payload) return null;
    var link = /^https?:\/\//.test(String(button.payload)) ? safeHttpUrl(String(button.payload)) : null;
    if (link) {
      // a campaign's tracked link: opens the page instead of sending a message
      return h("a", {
        href: link, target: "_blank", rel: "noopener noreferrer nofollow",
        className: className + " is-link", text: String(button.title),
      });
    }
    var el = h("button", { type: "button", className: className, text: String(button.title) });
    el.addEventListener("click", function () {
      if (el.disabled) return;
      el.classList.add("is-chosen");
      self.send({ payload: String(button.payload), title: String(button.title) });
      self.ui.input.focus();
    });
    return el;
  };

  function placeholderImage() {
    return h("div", { className: "card__image card__image--placeholder", "aria-hidden": "true" }, [
      h("span", { className: "card__placeholder-icon" }),
    ]);
  }

  ChatWidget.prototype.renderCard = function (card) {
    var self = this;
    var title = card.title ? String(card.title) : "Product";
    var item = h("li", { className: "card", "data-product-id": card.product_id });
    var src = safeHttpUrl(card.image_url);
    if (src) {
      var img = h("img", { className: "card__image", src: src, alt: title, loading: "lazy", decoding: "async" });
      img.addEventListener("error", function () {
        if (img.parentNode) img.parentNode.replaceChild(placeholderImage(), img);
      });
      item.appendChild(img);
    } else {
      item.appendChild(placeholderImage());
    }
    var body = h("div", { className: "card__body" }, [h("h3", { className: "card__title", text: title })]);
    if (card.subtitle) body.appendChild(h("p", { className: "card__subtitle", text: String(card.subtitle) }));
    var price = formatPrice(card.price, card.currency);
    if (price) body.appendChild(h("p", { className: "card__price", text: price }));
    item.appendChild(body);
    var buttons = Array.isArray(card.buttons) ? card.buttons : [];
    if (buttons.length) {
      var actions = h("div", { className: "card__buttons" });
      buttons.forEach(function (button) {
        var el = self.renderButton(button, "card__button");
        if (el) actions.appendChild(el);
      });
      item.appendChild(actions);
    }
    return item;
  };

  var STATUS_LABELS = {
    pending: "Waiting to send",
    sent: "Sending…",
    delivered: "Delivered",
    failed: "Not sent",
  };

  ChatWidget.prototype.renderUserBubble = function (text, status, createdAt) {
    var bubble = h("div", { className: "msg__bubble", title: formatTime(createdAt) });
    appendText(bubble, text);
    // The status label is drawn by CSS from data-label, so the element's text stays exactly
    // what the customer wrote.
    var meta = h("span", { className: "msg__meta" });
    var node = h("div", { className: "msg user" }, [bubble, meta]);
    this.applyStatus(node, status);
    return node;
  };

  ChatWidget.prototype.renderUserEntry = function (entry) {
    var node = this.renderUserBubble(entry.title || entry.text, entry.status);
    node.dataset.clientId = entry.id;
    return node;
  };

  ChatWidget.prototype.applyStatus = function (node, status) {
    node.dataset.status = status;
    var meta = node.querySelector(".msg__meta");
    if (meta) meta.setAttribute("data-label", STATUS_LABELS[status] || "");
  };

  ChatWidget.prototype.append = function (node, options) {
    // Measure before appending: a tall message (a row of cards) must not make us think the
    // reader had scrolled away from the end.
    var follow = node.classList.contains("user") || this.isNearEnd();
    this.ui.log.appendChild(node);
    this.afterAppend(options);
    this.scrollToEnd(follow);
  };

  ChatWidget.prototype.afterAppend = function (options) {
    var log = this.ui.log;
    this.ui.empty.hidden = log.childElementCount > 0;
    if (options && options.keepQuickReplies) return;
    // Only the newest message's suggestions stay clickable: older ones answer a question the
    // conversation has moved past.
    var messages = log.querySelectorAll(".msg.bot, .msg.user");
    var newest = messages.length ? messages[messages.length - 1] : null;
    log.querySelectorAll(".quick-replies button").forEach(function (button) {
      var current = newest && newest.contains(button);
      button.disabled = !current;
    });
  };

  ChatWidget.prototype.isNearEnd = function () {
    var scroller = this.ui.scroller;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  };

  ChatWidget.prototype.scrollToEnd = function (force) {
    if (force || this.isNearEnd()) this.ui.scroller.scrollTop = this.ui.scroller.scrollHeight;
  };

  // ------------------------------------------------ typing indicator

  ChatWidget.prototype.startAwaitingReply = function () {
    var self = this;
    this.awaitingReply = true;
    clearTimeout(this.awaitTimer);
    this.awaitTimer = setTimeout(function () {
      self.stopAwaitingReply();
    }, AWAIT_REPLY_TIMEOUT_MS);
    this.updateTyping();
  };

  ChatWidget.prototype.stopAwaitingReply = function () {
    this.awaitingReply = false;
    clearTimeout(this.awaitTimer);
    this.updateTyping();
  };

  ChatWidget.prototype.updateTyping = function () {
    var on = this.state === "connected" && (this.serverTyping || this.awaitingReply);
    if (this.ui.typing.hidden === !on) return;
    var follow = this.isNearEnd();
    this.ui.typing.hidden = !on;
    if (on) this.scrollToEnd(follow);
  };

  // ------------------------------------------------ outbox

  ChatWidget.prototype.outboxKey = function () {
    return OUTBOX_KEY_PREFIX + this.sessionId;
  };

  ChatWidget.prototype.saveOutbox = function () {
    var items = this.outbox.map(function (entry) {
      return { id: entry.id, text: entry.text, payload: entry.payload, title: entry.title };
    });
    if (items.length) storage.set(this.outboxKey(), JSON.stringify(items));
    else storage.remove(this.outboxKey());
  };

  // Messages typed just before a reload are still unsent; they survive in localStorage.
  // (Photos are not kept: an upload either reached the server or is shown as failed.)
  ChatWidget.prototype.restoreOutbox = function () {
    var raw = storage.get(this.outboxKey());
    if (!raw) return;
    try {
      var items = JSON.parse(raw);
      if (!Array.isArray(items)) return;
      this.outbox = items
        .filter(function (item) {
          return item && typeof item.id === "string" && (item.text || item.payload);
        })
        .map(function (item) {
          return { id: item.id, text: item.text, payload: item.payload, title: item.title, status: "pending" };
        });
    } catch (e) {
      storage.remove(this.outboxKey());
    }
  };

  ChatWidget.prototype.renderOutbox = function () {
    var self = this;
    this.outbox.forEach(function (entry) {
      entry.el = self.renderUserEntry(entry);
      self.ui.log.appendChild(entry.el);
    });
    this.afterAppend();
  };

  // The server reads one socket's frames in order and answers each message frame with either
  // an ack or an error, so an error without an id belongs to the oldest message still in flight.
  ChatWidget.prototype.oldestUnacknowledged = function (code) {
    if (code === "invalid_session" || code === "invalid_json") return null;
    for (var i = 0; i < this.outbox.length; i++) if (this.outbox[i].status === "sent") return this.outbox[i];
    return null;
  };

  ChatWidget.prototype.findEntryById = function (id) {
    for (var i = 0; i < this.outbox.length; i++) if (this.outbox[i].id === id) return this.outbox[i];
    return null;
  };

  ChatWidget.prototype.dropFromOutbox = function (id) {
    var entry = this.findEntryById(id);
    if (!entry) return;
    this.outbox.splice(this.outbox.indexOf(entry), 1);
    this.saveOutbox();
  };

  ChatWidget.prototype.setEntryStatus = function (entry, status) {
    entry.status = status;
    if (entry.el) this.applyStatus(entry.el, status);
  };

  ChatWidget.prototype.send = function (content) {
    var entry = {
      id: newMessageId(),
      text: content.text,
      payload: content.payload,
      title: content.title,
      status: "pending",
    };
    this.outbox.push(entry);
    this.saveOutbox();
    entry.el = this.renderUserEntry(entry);
    this.append(entry.el);
    if (this.canSend()) this.transmit(entry);
  };

  ChatWidget.prototype.canSend = function () {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.historyReceived;
  };

  ChatWidget.prototype.transmit = function (entry) {
    var frame = { type: "message", id: entry.id };
    if (entry.payload) {
      frame.payload = entry.payload;
      frame.title = entry.title;
    } else {
      frame.text = entry.text;
    }
    try {
      this.socket.send(JSON.stringify(frame));
    } catch (e) {
      return; // the close handler will schedule a reconnect and the entry stays queued
    }
    this.setEntryStatus(entry, "sent");
    this.startAwaitingReply();
  };

  ChatWidget.prototype.flushOutbox = function () {
    var self = this;
    if (!this.canSend()) return;
    this.outbox.forEach(function (entry) {
      if (entry.status !== "delivered") self.transmit(entry);
    });
  };

  ChatWidget.prototype.acknowledge = function (id) {
    var entry = this.findEntryById(id);
    if (!entry) return;
    this.outbox.splice(this.outbox.indexOf(entry), 1);
    this.saveOutbox();
    this.setEntryStatus(entry, "delivered");
  };

  // ------------------------------------------------ photo search

  // A photo reaches the server by upload button, drag and drop, or paste; the caption is what
  // is typed in the message field at that moment ("like this but under 40").
  ChatWidget.prototype.bindPhotoEvents = function () {
    var self = this;
    var panel = this.ui.panel;
    var depth = 0;
    this.ui.attach.addEventListener("click", function () {
      self.ui.photoInput.click();
    });
    this.ui.photoInput.addEventListener("change", function () {
      var file = self.ui.photoInput.files && self.ui.photoInput.files[0];
      self.ui.photoInput.value = "";
      if (file) self.sendPhoto(file);
    });
    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }
    panel.addEventListener("dragenter", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      self.ui.dropHint.hidden = false;
      panel.classList.add("chat__panel--dropping");
    });
    panel.addEventListener("dragover", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    panel.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) {
        self.ui.dropHint.hidden = true;
        panel.classList.remove("chat__panel--dropping");
      }
    });
    panel.addEventListener("drop", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      self.ui.dropHint.hidden = true;
      panel.classList.remove("chat__panel--dropping");
      var file = event.dataTransfer.files && event.dataTransfer.files[0];
      if (file) self.sendPhoto(file);
    });
    this.ui.input.addEventListener("paste", function (event) {
      var items = (event.clipboardData && event.clipboardData.items) || [];
      for (var i = 0; i < items.length; i++) {
        if (items[i].kind === "file" && /^image\//.test(items[i].type)) {
          var file = items[i].getAsFile();
          if (file) {
            event.preventDefault();
            self.sendPhoto(file);
            return;
          }
        }
      }
    });
  };

  ChatWidget.prototype.renderPhotoBubble = function (file, caption, status) {
    var bubble = h("div", { className: "msg__bubble msg__bubble--photo" });
    var src = null;
    try {
      src = window.URL && URL.createObjectURL ? URL.createObjectURL(file) : null;
    } catch (e) {
      src = null;
    }
    if (src) {
      var img = h("img", { className: "msg__photo", src: src, alt: caption ? "Your photo: " + caption : "Your photo" });
      bubble.appendChild(img);
    }
    if (caption) {
      var text = h("p", { className: "msg__caption" });
      appendText(text, caption);
      bubble.appendChild(text);
    } else if (!src) {
      bubble.appendChild(document.createTextNode("📷 Photo"));
    }
    var node = h("div", { className: "msg user msg--photo" }, [bubble, h("span", { className: "msg__meta" })]);
    this.applyStatus(node, status);
    return node;
  };

  ChatWidget.prototype.sendPhoto = function (file) {
    var self = this;
    if (PHOTO_TYPES.indexOf(file.type) === -1) {
      this.showError({ code: "not_an_image", message: "Please send a photo as a JPEG, PNG, GIF or WebP picture." });
      return;
    }
    if (file.size > MAX_PHOTO_BYTES) {
      this.showError({ code: "photo_too_large", message: "That photo is too big — please send one under 10 MB." });
      return;
    }
    var caption = this.ui.input.value.trim().slice(0, 500);
    this.ui.input.value = "";
    var id = newMessageId();
    var node = this.renderPhotoBubble(file, caption, "sent");
    node.dataset.clientId = id;
    this.append(node);
    this.startAwaitingReply();
    var url =
      "/api/v1/sessions/" + encodeURIComponent(this.sessionId) + "/photos?message_id=" +
      encodeURIComponent(id) + (caption ? "&caption=" + encodeURIComponent(caption) : "");
    fetch(url, { method: "POST", headers: { "Content-Type": file.type }, body: file })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            return { status: response.status, data: data };
          });
      })
      .then(function (result) {
        var data = result.data || {};
        var messages = Array.isArray(data.messages) ? data.messages : [];
        if (result.status >= 400 && !messages.length) {
          self.applyStatus(node, "failed");
          var error = data.error || {};
          self.showError({
            code: error.code || "photo_failed",
            message: error.message || "Sorry, I couldn't send that photo. Please try again.",
          });
          return;
        }
        self.applyStatus(node, "delivered");
        if (data.message_id !== undefined && data.message_id !== null) {
          self.renderedServerIds.add(String(data.message_id));
        }
        messages.forEach(function (message) {
          self.receive(message);
        });
      })
      .catch(function () {
        self.applyStatus(node, "failed");
        self.showError({ code: "photo_failed", message: "Sorry, I couldn't send that photo. Please try again." });
      })
      .then(function () {
        self.stopAwaitingReply();
      });
  };

  // ------------------------------------------------ handoff to a person

  // The server stores the request, opens a support ticket and answers with the queue position
  // (or when support opens); the same reply also arrives on the socket, deduplicated by id.
  ChatWidget.prototype.askForPerson = function () {
    var self = this;
    var button = this.ui.human;
    button.disabled = true;
    this.append(this.renderUserBubble("Talk to a person", "delivered"));
    this.startAwaitingReply();
    var url = "/api/v1/sessions/" + encodeURIComponent(this.sessionId) + "/handoff";
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message_id: newMessageId() }),
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        (data && Array.isArray(data.messages) ? data.messages : []).forEach(function (m) {
          self.receive(m);
        });
      })
      .catch(function () {
        self.showError({ code: "handoff_failed", message: "Sorry, I couldn't reach our team. Please try again." });
      })
      .then(function () {
        self.stopAwaitingReply();
        button.disabled = false;
      });
  };

  // ------------------------------------------------ new conversation

  ChatWidget.prototype.startNewConversation = function () {
    storage.remove(this.outboxKey());
    storage.remove(SESSION_KEY);
    this.sessionId = loadSessionId();
    this.outbox = [];
    this.renderedServerIds = new Set();
    this.serverTyping = false;
    this.stopAwaitingReply();
    this.ui.log.replaceChildren();
    this.afterAppend();
    var old = this.socket;
    this.socket = null;
    if (old) {
      try {
        old.close(1000, "new conversation");
      } catch (e) {
        /* already closed */
      }
    }
    this.everConnected = false;
    this.backoffMs = BACKOFF_START_MS;
    this.connect();
    this.ui.input.focus();
  };

  function start() {
    if (document.getElementById("chat")) return;
    window.northwindChat = new ChatWidget();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
