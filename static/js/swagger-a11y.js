// /v1/docs/: a page language and labels for Swagger UI's example pickers (axe), as a file: the
// Content-Security-Policy runs no inline script.
document.documentElement.lang = "en";
// Swagger UI draws its example pickers without a label; name them as they appear.
new MutationObserver(function () {
  document.querySelectorAll("#swagger-ui select:not([aria-label])").forEach(function (select) {
    select.setAttribute("aria-label", select.classList.contains("examples-select-element") ? "Example" : (select.name || "Choice"));
  });
}).observe(document.getElementById("swagger-ui"), {childList: true, subtree: true});
