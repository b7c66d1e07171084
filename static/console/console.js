/* ATP console behaviour. No inline scripts anywhere: this file wires everything by data-*
   attributes, so the Content-Security-Policy can forbid inline code. */
(function () {
  "use strict";
  var root = document.documentElement;

  // --- theme: the toggle flips light/dark and remembers it in a cookie the server reads ---
  function effectiveTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function setTheme(theme) {
    root.setAttribute("data-theme", theme);
    document.cookie = "atp_theme=" + theme + "; path=/; max-age=31536000; SameSite=Lax";
    document.dispatchEvent(new CustomEvent("atp:theme", { detail: theme }));
  }
  window.atpTheme = effectiveTheme;

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-theme-toggle]");
    if (target) { setTheme(effectiveTheme() === "dark" ? "light" : "dark"); return; }

    var nav = event.target.closest("[data-nav-toggle]");
    if (nav) {
      var sidebar = document.getElementById("sidebar");
      var open = sidebar.classList.toggle("open");
      nav.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }

    // Copy buttons: data-copy="#element" copies that element's text (a key shown once).
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          var label = copy.querySelector("[data-copy-label]") || copy;
          var before = label.textContent;
          label.textContent = "Copied";
          announce("Copied to the clipboard");
          setTimeout(function () { label.textContent = before; }, 1600);
        });
      }
      return;
    }

    if (event.target.closest("[data-close-modal]")) {
      var dialog = document.getElementById("console-modal");
      if (dialog && dialog.open) dialog.close();
    }
  });

  // --- filters: served open; on a phone folded behind their summary unless one is set -----
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 860px)") : null;
  function fitFilters() {
    document.querySelectorAll("details[data-filters]").forEach(function (d) {
      d.open = !(narrow && narrow.matches) || d.getAttribute("data-filters") === "set";
    });
  }
  if (narrow) {
    if (narrow.addEventListener) narrow.addEventListener("change", fitFilters);
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fitFilters);
    else fitFilters();
  }

  function announce(text) {
    var live = document.getElementById("console-live");
    if (live) live.textContent = text;
  }
  window.atpAnnounce = announce;

  // --- modal: htmx content swapped into #console-modal-body opens the dialog ---------------
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "console-modal-body") {
      var dialog = document.getElementById("console-modal");
      if (dialog && !dialog.open) dialog.showModal();
      var focus = dialog.querySelector("[autofocus]");
      if (focus) focus.focus();
    }
  });
  document.addEventListener("atp:close-modal", function () {
    var dialog = document.getElementById("console-modal");
    if (dialog && dialog.open) dialog.close();
  });

  // --- confirm: a link or form with data-confirm asks first (used without the dialog) ------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // --- polling pauses in hidden tabs: an element marked data-poll (hx-trigger="every 2s")
  // skips its requests while the tab is hidden (no eval: the CSP forbids it).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute && elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });

  // Errors from htmx requests: say so instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 422) return; // a form with errors: swapped in by the form itself
    announce(status === 403 ? "You may not do that." : "The request failed (" + status + "). Try again.");
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    // Forms answer 422 with the form and its errors: swap them in.
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
