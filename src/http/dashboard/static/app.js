// feerecon dashboard: the only script, loaded from /assets (the CSP allows no inline script).
// Every page works without it; it only adds confirmations and shows fields where they apply.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // <form data-confirm="..."> asks before submitting (closing a day cannot be undone).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  // The case code field of a resolution matters only to confirm_from_settlement.
  document.querySelectorAll("select[data-shows]").forEach(function (select) {
    var target = document.getElementById(select.getAttribute("data-shows"));
    var when = select.getAttribute("data-when");
    if (!target) { return; }
    var sync = function () { target.hidden = select.value !== when; };
    select.addEventListener("change", sync);
    sync();
  });
  // Filters apply as soon as they change.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
});
