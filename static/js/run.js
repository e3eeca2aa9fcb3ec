// The run page's live updates: a websocket that swaps server-rendered fragments by id.
// While it is down, the htmx polling on #slots and #run-status carries the page.
(function () {
  "use strict";
  var root = document.getElementById("run-live");
  if (!root) return;
  var badge = document.getElementById("ws-state");
  var delay = 1000;
  window.webrlLive = false;
  window.webrlFrames = 0;

  function setState(text, cls) {
    if (!badge) return;
    badge.textContent = text;
    badge.className = "badge " + cls;
  }

  function swapFragments(html, event) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    Array.prototype.forEach.call(holder.content.children, function (el) {
      if (!el.id) return;
      var current = document.getElementById(el.id);
      if (current) {
        current.replaceWith(el);
      } else if (event === "frame") {
        document.getElementById("slots").appendChild(el);
      } else {
        return;
      }
      if (window.htmx) window.htmx.process(el);
    });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + root.dataset.ws);
    socket.onopen = function () {
      window.webrlLive = true;
      delay = 1000;
      setState("live", "ok");
    };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.html) swapFragments(data.html, data.event);
      if (data.event === "frame") window.webrlFrames += 1;
      if (!data.html && data.event !== "frame") document.body.dispatchEvent(new Event("webrl:refresh"));
    };
    socket.onclose = function (event) {
      window.webrlLive = false;
      if (event.code === 4403) { setState("no access", "failed"); return; }
      setState("polling", "");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
