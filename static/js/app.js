// The portal's only script: behaviour that used to live in inline handlers, which the
// Content-Security-Policy (script-src 'self') does not run.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("change", function (event) {
  var form = event.target.form;
  if (form && form.hasAttribute("data-workspace-switcher") && event.target.value) {
    window.location.href = event.target.value;
  }
});
