// StepCoin console: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";

  // Forms with data-confirm ask before they are sent (money, deactivation, cancellation).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);

  // A "select all" checkbox: <input type="checkbox" data-select-all="name-of-boxes">
  document.addEventListener("change", function (event) {
    var box = event.target;
    var name = box.getAttribute && box.getAttribute("data-select-all");
    if (!name) { return; }
    document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (b) {
      b.checked = box.checked;
    });
  });

  // Review queue keyboard shortcuts (see the page's legend): j/k move, x select,
  // a approve, r reject (asks for a note first), n focus the note.
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-review-row]"));
  if (!rows.length) { return; }
  var current = 0;
  function show(index) {
    if (index < 0 || index >= rows.length) { return; }
    rows[current].classList.remove("current");
    current = index;
    rows[current].classList.add("current");
    rows[current].scrollIntoView({ block: "nearest" });
  }
  function submit(decision) {
    // Each row's form has <button name="decision" value="approve|reject"> and a note field;
    // clicking the button keeps the no-script behaviour (and the note's validation) intact.
    var form = rows[current].querySelector("form[data-decide]");
    if (!form) { return; }
    var note = form.querySelector('[name="note"]');
    if (decision === "reject" && note && !note.value.trim()) {
      note.focus();
      note.setAttribute("placeholder", "A note is needed to reject; type it and press r again");
      return;
    }
    var button = form.querySelector('button[name="decision"][value="' + decision + '"]');
    if (button) { button.click(); }
  }
  // Esc leaves the note field so that the shortcuts work again.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && event.target.blur) { event.target.blur(); }
  });
  show(0);
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "j") { show(current + 1); }
    else if (key === "k") { show(current - 1); }
    else if (key === "x") {
      var box = rows[current].querySelector('input[type="checkbox"]');
      if (box) { box.checked = !box.checked; }
    }
    else if (key === "a") { submit("approve"); }
    else if (key === "r") { submit("reject"); }
    else if (key === "n") {
      var note = rows[current].querySelector('[name="note"]');
      if (note) { note.focus(); }
    }
    else { return; }
    event.preventDefault();
  });
})();
