// Tabular inlines and split date/time widgets render inputs with no <label> of their own: name
// each after its column header or its row's label, so screen readers (and axe) know what it is.
document.querySelectorAll("#content input:not([type=hidden]), #content select, #content textarea").forEach(function (field) {
  if ((field.labels && field.labels.length) || field.getAttribute("aria-label")) return;
  var name = "", cell = field.closest("td"), row = field.closest(".form-row, .fieldBox");
  if (cell && cell.closest(".tabular")) {
    var th = cell.closest("table").querySelectorAll("thead th")[Array.from(cell.parentNode.children).indexOf(cell)];
    name = th ? th.textContent.trim() : "";
  } else if (row && row.querySelector("label")) {
    name = row.querySelector("label").textContent.replace(":", "").trim();
    if (field.classList.contains("vDateField")) name += " (date)";
    if (field.classList.contains("vTimeField")) name += " (time)";
  }
  field.setAttribute("aria-label", name || field.name);
});
