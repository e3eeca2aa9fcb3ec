// The launch form marks fields that differ from the preset as they are edited, and counts them per
// section. The server's preview (and its validation) remains the authority.
(function () {
  "use strict";
  var form = document.getElementById("launch-form");
  if (!form) return;

  function same(value, preset) {
    if (value === preset) return true;
    var a = value.split(",").map(function (s) { return s.trim(); });
    var b = preset.split(",").map(function (s) { return s.trim(); });
    if (a.length !== b.length) return false;
    return a.every(function (x, i) {
      return x === b[i] || (x !== "" && b[i] !== "" && !isNaN(x) && !isNaN(b[i]) && Number(x) === Number(b[i]));
    });
  }

  function current(input) {
    return input.type === "checkbox" ? String(input.checked) : input.value;
  }

  function refresh(box) {
    var input = box.querySelector("input, select");
    if (!input || input.disabled) return;
    box.classList.toggle("changed", !same(current(input), box.dataset.preset));
    var section = box.closest("details");
    if (!section) return;
    var count = section.querySelectorAll(".config-field.changed").length;
    var badge = section.querySelector(".section-changed");
    badge.textContent = count + " changed";
    badge.hidden = count === 0;
  }

  form.addEventListener("input", function (event) {
    var box = event.target.closest(".config-field[data-preset]");
    if (box) refresh(box);
  });
  window.webrlLaunchReady = true;
})();
