// The dashboard's own script (no inline script: the page's CSP forbids it).
// Every action form carries data-confirm: ask before it is sent.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
