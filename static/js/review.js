// The review queue's keyboard: Y / N label the selected trajectory without a reload, S skips,
// J / K move, Enter opens. Without JavaScript the row's buttons post ordinary forms.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || table.dataset.reviewer !== "1") return;
  var counter = document.getElementById("labelled-count");
  var token = (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value;
  var current = null;

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tr.queue-row")); }
  function select(row) {
    if (current) current.classList.remove("selected");
    current = row || null;
    if (current) { current.classList.add("selected"); current.focus({preventScroll: false}); }
  }
  function move(step) {
    var all = rows();
    var i = all.indexOf(current);
    select(all[Math.max(0, Math.min(all.length - 1, i + step))]);
  }
  function label(row, value) {
    row.classList.add("pending");
    var body = new URLSearchParams({label: value});
    fetch(row.dataset.labelUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": token, "Accept": "application/json"}
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (data) {
      var all = rows();
      var next = all[all.indexOf(row) + 1] || all[all.indexOf(row) - 1];
      row.remove();
      if (counter) counter.textContent = String(Number(counter.textContent) + 1);
      select(next);
      document.body.dataset.lastLabel = data.trajectory + ":" + data.label;
    }).catch(function (err) {
      row.classList.remove("pending");
      row.classList.add("failed");
      row.title = "Could not save the label: " + err.message;
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key.toLowerCase();
    if (!current) select(rows()[0]);
    if (!current) return;
    if (key === "y") { label(current, "yes"); event.preventDefault(); }
    else if (key === "n") { label(current, "no"); event.preventDefault(); }
    else if (key === "s" || key === "j") { move(1); event.preventDefault(); }
    else if (key === "k") { move(-1); event.preventDefault(); }
    else if (key === "enter") { location.href = current.dataset.detailUrl; }
  });
  select(rows()[0]);
})();
