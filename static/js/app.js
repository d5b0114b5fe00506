// The portal's only script: behaviour that used to live in inline handlers, which the
// Content-Security-Policy (script-src 'self') does not run. Loaded in <head> without defer, so the
// "js" class is set before the first paint; everything else waits for the document.
document.documentElement.classList.add("js");
document.addEventListener("submit", function (event) {
  var form = event.target;
  var message = form.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); return; }
  // A second press while the first is on its way sends nothing: the button says it is busy. The
  // buttons are disabled only after this event, once the browser has read the pressed button's value.
  if (form.classList.contains("submitting")) { event.preventDefault(); return; }
  form.classList.add("submitting");
  var pressed = event.submitter || form.querySelector("button[type=submit], button:not([type])");
  if (pressed) pressed.setAttribute("aria-busy", "true");
  setTimeout(function () {
    form.querySelectorAll("button, input[type=submit]").forEach(function (button) { button.disabled = true; });
  }, 0);
});
window.addEventListener("pageshow", function () {
  // Back to a page kept in the browser's cache: its forms can be sent again.
  document.querySelectorAll("form.submitting").forEach(function (form) {
    form.classList.remove("submitting");
    form.querySelectorAll("[aria-busy]").forEach(function (button) { button.removeAttribute("aria-busy"); });
    form.querySelectorAll("button, input[type=submit]").forEach(function (button) { button.disabled = false; });
  });
});
document.addEventListener("change", function (event) {
  var form = event.target.form;
  if (form && form.hasAttribute("data-workspace-switcher") && event.target.value) {
    window.location.href = event.target.value;
  }
});
document.addEventListener("click", function (event) {
  var toggle = event.target.closest("[data-nav-toggle]");
  if (!toggle) return;
  var open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", open);
  toggle.parentNode.classList.toggle("open", open);
});
document.addEventListener("click", function (event) {
  // "Copy" beside a value shown once (a new token); says so when the clipboard is not allowed.
  var button = event.target.closest("[data-copy]");
  if (button) {
    navigator.clipboard.writeText(document.getElementById(button.dataset.copy).textContent).then(
      function () { button.textContent = "Copied"; }, function () { button.textContent = "Select and copy"; });
  }
  var opener = event.target.closest("[data-open]");  // a link that opens a <details> disclosure
  if (opener) document.getElementById(opener.dataset.open).open = true;
});
document.addEventListener("DOMContentLoaded", function () {
  // On a phone a table too wide for the screen becomes a list of cards, each value labelled with its
  // column; elsewhere (or for code) it scrolls inside its own box, which keyboard users can focus.
  document.querySelectorAll(".table-wrap, pre").forEach(function (box) {
    if (box.scrollWidth <= box.clientWidth) return;
    var table = box.querySelector("table");
    if (table && window.innerWidth <= 600 && table.tHead) {
      var heads = Array.from(table.tHead.rows[0].cells).map(function (th) { return th.textContent.trim(); });
      Array.from(table.tBodies).concat(table.tFoot ? [table.tFoot] : []).forEach(function (part) {
        Array.from(part.rows).forEach(function (row) {
          var column = 0;  // a cell spanning columns takes the label of its last one
          Array.from(row.cells).forEach(function (cell) {
            column += cell.colSpan;
            if (heads[column - 1] && cell.colSpan === 1) cell.setAttribute("data-label", heads[column - 1]);
            if (cell.childNodes.length > 1) {
              // One box for the value: a cell's loose text, links and line breaks would each become
              // a flex item of their own and could not wrap.
              var value = document.createElement("span");
              value.className = "cell-value";
              while (cell.firstChild) value.appendChild(cell.firstChild);
              cell.appendChild(value);
            }
          });
        });
      });
      table.classList.add("stacked");
      return;
    }
    box.tabIndex = 0; box.setAttribute("role", "region");
    var caption = box.previousElementSibling;
    box.setAttribute("aria-label", caption && /^H\d$/.test(caption.tagName) ? caption.textContent : (box.tagName === "PRE" ? "Code" : "Table"));
  });
});
