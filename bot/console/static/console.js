/*
 * Support console: live queue and live ticket transcript over /console/ws, waiting times,
 * canned-response insertion. Plain JavaScript, no build step. Every form also works without
 * this file; it only keeps pages fresh. Text from customers is set through textContent only.
 */
(function () {
  "use strict";

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") el.textContent = attrs[name];
      else if (name === "className") el.className = attrs[name];
      else el.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child) el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return el;
  }

  function since(iso) {
    var seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function tickTimes() {
    document.querySelectorAll("time.since").forEach(function (el) {
      el.textContent = since(el.getAttribute("datetime"));
    });
  }

  function connect(query, onFrame) {
    var status = document.getElementById("live-status");
    var backoff = 500;
    function open() {
      var scheme = location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(scheme + "//" + location.host + "/console/ws" + query());
      ws.addEventListener("open", function () {
        backoff = 500;
        document.body.dataset.live = "on";
        if (status) status.textContent = "Live.";
      });
      ws.addEventListener("message", function (event) {
        try {
          onFrame(JSON.parse(event.data));
        } catch (e) {
          /* ignore a bad frame */
        }
      });
      ws.addEventListener("close", function () {
        document.body.dataset.live = "off";
        if (status) status.textContent = "Reconnecting…";
        setTimeout(open, backoff);
        backoff = Math.min(backoff * 2, 10000);
      });
    }
    open();
  }

  // ------------------------------------------------------------------ queue

  function queueRow(t) {
    var preview = h("ul", { className: "preview" });
    (t.last_messages || []).forEach(function (m) {
      preview.appendChild(h("li", {}, [h("b", { text: m.author + ":" }), " " + m.text]));
    });
    return h("tr", { "data-ticket": String(t.id) }, [
      h("td", {}, [h("a", { href: "/console/tickets/" + t.id, text: "#" + t.id })]),
      h("td", {}, [h("time", { className: "since", datetime: t.created_at, text: since(t.created_at) })]),
      h("td", { text: t.channel }),
      h("td", { text: t.customer }),
      h("td", { text: String(t.reason).replace(/_/g, " ") }),
      h("td", {}, [preview]),
      h("td", { text: t.assigned_to ? t.state + " to " + t.assigned_to : t.state }),
    ]);
  }

  function startQueue() {
    var body = document.getElementById("queue-body");
    connect(function () { return ""; }, function (frame) {
      if (frame.type !== "queue") return;
      var rows = frame.tickets.map(queueRow);
      if (!rows.length) rows = [h("tr", { className: "empty" }, [h("td", { colspan: "7", text: "Nobody is waiting." })])];
      body.replaceChildren.apply(body, rows);
      document.title = (frame.tickets.filter(function (t) { return t.state === "waiting"; }).length || "") +
        (frame.tickets.length ? " waiting · " : "") + "Queue · Northwind support console";
    });
  }

  // ------------------------------------------------------------------ ticket

  function messageItem(m) {
    var who = m.author === "staff" ? (m.staff_name || "staff") + " (staff)" : m.author;
    var item = h("li", { className: "msg msg--" + m.author, "data-id": String(m.id) }, [
      h("span", { className: "msg__who", text: who }),
      h("time", { datetime: m.created_at, text: String(m.created_at).slice(11, 16) }),
    ]);
    if (m.text) item.appendChild(h("p", { text: m.text }));
    if (m.media && /^[0-9a-f]{64}$/.test(m.media.id)) {
      var src = "/console/media/" + m.media.id;
      item.appendChild(h("a", { href: src }, [h("img", { className: "photo", src: src, alt: "Photo sent by the customer" })]));
    }
    (m.cards || []).forEach(function (c) {
      item.appendChild(h("p", { className: "card", text: "🛍 " + c.title + " — " + c.price + " " + c.currency }));
    });
    if (m.buttons && m.buttons.length) {
      item.appendChild(h("p", { className: "buttons", text: "[" + m.buttons.map(function (b) { return b.title; }).join(" · ") + "]" }));
    }
    return item;
  }

  function startTicket(root) {
    var id = root.getAttribute("data-ticket");
    var lastId = Number(root.getAttribute("data-last-id")) || 0;
    var list = document.getElementById("transcript");
    var badge = document.getElementById("ticket-state");
    var initialState = badge ? badge.textContent : "";
    connect(function () { return "?ticket=" + encodeURIComponent(id) + "&after=" + lastId; }, function (frame) {
      if (frame.type !== "ticket") return;
      (frame.messages || []).forEach(function (m) {
        if (m.id <= lastId || list.querySelector('[data-id="' + m.id + '"]')) return;
        lastId = m.id;
        list.appendChild(messageItem(m));
      });
      var label = frame.ticket.state + (frame.ticket.assigned_to ? " to " + frame.ticket.assigned_to : "");
      if (badge && label !== badge.textContent) {
        badge.textContent = label;
        if (label !== initialState) badge.classList.add("changed");
      }
    });
    var canned = document.getElementById("canned");
    var text = document.getElementById("reply-text");
    if (canned && text) {
      canned.addEventListener("change", function () {
        var option = canned.options[canned.selectedIndex];
        var body = option && option.getAttribute("data-body");
        if (body) {
          text.value = text.value ? text.value + "\n" + body : body;
          text.focus();
        }
      });
    }
  }

  // Campaign composer: the segment's live count follows every change of the filters.
  function startSegmentCount(form) {
    var out = document.getElementById("segment-count");
    var csrf = document.body.getAttribute("data-csrf");
    var timer = null;
    function refresh() {
      var body = new URLSearchParams(new FormData(form));
      fetch("/console/api/segments/count", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: body,
      })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.error) out.textContent = data.error.message;
          else out.textContent = data.recipients + " recipients (" + data.matching +
            " customers match; the others have not opted in or cannot be reached)";
          out.dataset.recipients = data.error ? "" : String(data.recipients);
        })
        .catch(function () { out.textContent = "Could not count the segment just now."; });
    }
    function soon() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }
    document.getElementById("segment").addEventListener("input", soon);
    document.getElementById("segment").addEventListener("change", soon);
    refresh();
  }

  function start() {
    tickTimes();
    setInterval(tickTimes, 1000);
    var page = document.body.getAttribute("data-page");
    if (page === "queue") startQueue();
    var ticket = document.querySelector(".ticket[data-ticket]");
    if (page === "ticket" && ticket) startTicket(ticket);
    var campaignForm = document.getElementById("campaign-form");
    if (page === "campaign-new" && campaignForm) startSegmentCount(campaignForm);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
