// Client glue for the server-rendered pages: the CSRF header on htmx requests, keeping the
// session alive, showing refusals where they happen, and two register-map editor helpers.
// Everything else is plain HTML from the server.
(function () {
  "use strict";
  var SESSION_REFRESH_MS = 10 * 60 * 1000;
  var body = document.body;

  // Double-submit CSRF: the server put the token on <body>; the guard wants it back in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = body.getAttribute("data-csrf");
    if (token) event.detail.headers["x-csrf-token"] = token;
  });

  // Access tokens live 15 minutes; renew while a page stays open (a wall display, say).
  if (body.hasAttribute("data-csrf")) {
    setInterval(function () {
      fetch("/session/refresh", { method: "POST", credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (session) { if (session && session.csrf) body.setAttribute("data-csrf", session.csrf); })
        .catch(function () { /* offline: the next navigation signs in again */ });
    }, SESSION_REFRESH_MS);
  }

  function messageOf(xhr) {
    try {
      var parsed = JSON.parse(xhr.responseText);
      if (parsed && parsed.error && parsed.error.message) return parsed.error.message;
    } catch (_) { /* not JSON */ }
    return "The gateway answered " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "");
  }

  // A periodic refresh (hx-trigger "every …") of part of a page.
  function polls(element) {
    var trigger = element && element.getAttribute ? element.getAttribute("hx-trigger") || "" : "";
    return /\bevery\b/.test(trigger);
  }

  // An error is shown next to what caused it: the nearest [data-errors] block's .request-error,
  // else the page's flash area.
  function showError(element, message) {
    var scope = element && element.closest ? element.closest("[data-errors]") : null;
    var slot = scope ? scope.querySelector(".request-error") : null;
    if (!slot) slot = document.getElementById("flash");
    if (!slot) { window.alert(message); return; }
    slot.textContent = message;
    slot.hidden = false;
    slot.classList.add("is-visible");
    slot.setAttribute("data-from-poll", polls(element) ? "1" : "0");
  }

  // A user's action clears the last error. A periodic refresh clears only an error of a refresh: the
  // answer to what the user did (e.g. a refused acknowledgement) stays until they act again.
  function clearError(element) {
    var fromPoll = polls(element);
    var scope = element && element.closest ? element.closest("[data-errors]") : null;
    var slots = [scope ? scope.querySelector(".request-error") : null, document.getElementById("flash")];
    slots.forEach(function (slot) {
      if (!slot || !slot.classList.contains("is-visible")) return;
      if (fromPoll && slot.getAttribute("data-from-poll") !== "1") return;
      slot.textContent = ""; slot.classList.remove("is-visible"); if (slot.id === "flash") slot.hidden = true;
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) { clearError(event.detail.elt); });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status === 401) { signIn(); return; }
    showError(event.detail.elt, messageOf(xhr));
  });

  document.addEventListener("htmx:sendError", function (event) {
    showError(event.detail.elt, "No answer from the gateway; check the network and try again.");
  });

  function signIn() {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  }

  // An expired session turns a partial into the sign-in page (the guard redirects): go there whole.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var url = event.detail.xhr && event.detail.xhr.responseURL;
    if (url && new URL(url).pathname === "/login") {
      event.detail.shouldSwap = false;
      signIn();
    }
  });

  // After a swap, move focus where the user needs to look: an error summary, a result, a notice.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.elt;
    if (!target || !target.querySelector) return;
    var focus = target.matches && target.matches("[data-focus]") ? target : target.querySelector("[data-focus], [aria-invalid='true']");
    if (focus) {
      if (!focus.hasAttribute("tabindex") && !/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(focus.tagName)) focus.setAttribute("tabindex", "-1");
      focus.focus({ preventScroll: false });
    }
  });

  // Register map: remove a row (and its byte-order preview row).
  document.addEventListener("click", function (event) {
    var remove = event.target.closest && event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest("tr");
      var next = row && row.nextElementSibling;
      if (next && next.classList.contains("reg-preview")) next.remove();
      var focusTarget = (next && !next.classList.contains("reg-preview") ? next : row && row.previousElementSibling) || null;
      if (row) row.remove();
      if (focusTarget && focusTarget.querySelector) { var input = focusTarget.querySelector("input"); if (input) input.focus(); }
      return;
    }
    // Byte-order preview: use the order whose decoded value reads right.
    var choice = event.target.closest && event.target.closest("[data-use-order]");
    if (choice) {
      var preview = choice.closest("tr.reg-preview");
      var registerRow = preview && preview.previousElementSibling;
      var select = registerRow && registerRow.querySelector("select[name='reg.byte_order']");
      if (!select) return;
      var order = choice.getAttribute("data-use-order");
      select.value = order === "ABCD" ? "" : order;
      preview.querySelectorAll("[data-use-order]").forEach(function (b) {
        b.setAttribute("aria-pressed", b === choice ? "true" : "false");
        b.classList.toggle("is-configured", b === choice);
      });
      select.classList.add("just-changed");
      setTimeout(function () { select.classList.remove("just-changed"); }, 1200);
    }
  });
})();
