// Progressive enhancement only: every page works without this file.
// Filters apply as soon as a choice changes (the Filter button still works without script).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select.autosubmit").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
});
