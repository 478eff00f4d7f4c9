// Collects every uncaught error and rejected promise, and shows it, so an
// operator sees a broken page and the browser test can read the list.
"use strict";
window.__consoleErrors = [];
(function () {
  function note(msg) {
    window.__consoleErrors.push(String(msg));
    var b = document.getElementById("banner");
    if (b) {
      b.hidden = false;
      b.textContent = "Error: " + msg;
    }
  }
  window.addEventListener("error", function (e) {
    note(e.message || (e.target && e.target.src ? "failed to load " + e.target.src : "error"));
  }, true);
  // A Content-Security-Policy refusal is an error of the console too.
  document.addEventListener("securitypolicyviolation", function (e) {
    note("CSP refused " + e.blockedURI + " (" + e.violatedDirective + ")");
  });
  window.addEventListener("unhandledrejection", function (e) {
    note(e.reason && e.reason.message ? e.reason.message : e.reason);
  });
  var orig = console.error;
  console.error = function () {
    window.__consoleErrors.push(Array.prototype.join.call(arguments, " "));
    orig.apply(console, arguments);
  };
})();
