// The staff customer page's reveal countdown (templates/access/customer.html): each
// revealed value's time left, live; when the reveal that opened it ends, that value
// is taken off the page, each at its own end: its "Shown" cell says what it is
// without a reveal, the "Revealed for…" message goes, and the field is offered for
// a reveal again ("What you can do" and the form's box the server sent hidden).
// Without JavaScript the page says until when each shows and reloads itself a
// second after the first ends (a <noscript> meta refresh). The page gives the
// server's time (data-now): the countdown runs on the server's clock, whatever the
// browser's says. A file of our own: the Content Security Policy allows no inline
// script.
(function () {
  "use strict";
  var timer = document.getElementById("reveal-timer");
  if (!timer) { return; }

  // The server's clock minus the browser's, taken when the page's first byte
  // arrived (the server read its clock just before sending it), not when this
  // script runs: a browser clock minutes off then neither keeps a value on screen
  // past its end nor takes it off early.
  var serverNow = Date.parse(timer.getAttribute("data-now"));
  var receivedAt = Date.now();
  if (window.performance && performance.getEntriesByType) {
    var navigation = performance.getEntriesByType("navigation")[0];
    var since = navigation ? performance.now() - navigation.responseStart : -1;
    if (navigation && navigation.responseStart > 0 && since >= 0 && since < 60000) {
      receivedAt -= since;
    }
  }
  var offset = isNaN(serverNow) ? 0 : serverNow - receivedAt;
  function now() { return Date.now() + offset; }

  var announce = document.getElementById("reveal-announce");
  var fields = [];
  var items = timer.querySelectorAll("[data-field][data-expires-at]");
  for (var i = 0; i < items.length; i++) {
    var name = items[i].getAttribute("data-field");
    var ends = Date.parse(items[i].getAttribute("data-expires-at"));
    if (isNaN(ends)) { continue; }
    fields.push({
      name: name,
      label: items[i].getAttribute("data-label") || name,
      ends: ends,
      item: items[i],
      left: items[i].querySelector(".reveal-left"),
      done: false,
    });
  }
  if (!fields.length) { return; }

  function say(text) {
    if (!announce) { return; }
    announce.textContent = text;
    announce.className = "warn";
  }

  function show(el) { if (el) { el.hidden = false; } }

  // The field offered for a reveal again, and named as masked if it is.
  function offerAgain(field, after) {
    var opened = document.querySelector('[data-revealed-now="' + field.name + '"]');
    if (opened) { opened.parentNode.removeChild(opened); }
    var choice = document.querySelector('[data-reveal-choice="' + field.name + '"]');
    if (choice) {
      var box = choice.querySelector("input");
      if (box) { box.disabled = false; }
      show(choice);
      show(document.getElementById("reveal-section"));
      var offered = [];
      var choices = document.querySelectorAll("[data-reveal-choice]");
      for (var i = 0; i < choices.length; i++) {
        if (!choices[i].hidden) { offered.push(choices[i].getAttribute("data-label")); }
      }
      var list = document.getElementById("reveal-offer-fields");
      if (list) { list.textContent = offered.join(", "); }
      show(document.getElementById("reveal-offer"));
    }
    var masked = document.getElementById("masked-fields");
    if (after === "masked" && masked) {
      masked.textContent = masked.textContent ? masked.textContent + ", " + field.label : field.label;
      show(document.getElementById("masked-now"));
    }
  }

  function expire(field) {
    field.done = true;
    // "Revealed for N minutes" is no longer true.
    var said = document.querySelectorAll(".message.reveal-opened");
    for (var m = 0; m < said.length; m++) { said[m].parentNode.removeChild(said[m]); }
    var after = "";
    var shown = document.querySelectorAll("td[data-shown-field]");
    for (var k = 0; k < shown.length; k++) {
      if (shown[k].getAttribute("data-shown-field") !== field.name) { continue; }
      after = shown[k].getAttribute("data-after") || "";
      shown[k].textContent = "";
      var badge = document.createElement("span");
      badge.className = "badge vis-" + after;
      badge.textContent = after;
      shown[k].appendChild(badge);
      shown[k].removeAttribute("data-shown-field");
    }
    offerAgain(field, after);
    var cells = document.querySelectorAll("td[data-revealed]");
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].getAttribute("data-field") !== field.name) { continue; }
      cells[i].textContent = "Reveal expired: reload to see it masked";
      cells[i].classList.add("muted");
      cells[i].removeAttribute("data-revealed");
    }
    field.item.textContent = field.label + ": the reveal expired, the value was removed from this page.";
    var open = fields.filter(function (f) { return !f.done; });
    if (!open.length) {
      timer.hidden = true;
      say("The reveal expired: its values were removed from this page.");
    } else {
      say("The reveal of " + field.label + " expired: its value was removed from this page.");
    }
  }

  function tick() {
    var at = now();
    var open = 0;
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.done) { continue; }
      var seconds = Math.ceil((field.ends - at) / 1000);
      if (seconds <= 0) { expire(field); continue; }
      open++;
      if (field.left) {
        var m = Math.floor(seconds / 60), s = seconds % 60;
        field.left.textContent = ": " + m + ":" + (s < 10 ? "0" : "") + s + " left";
      }
    }
    if (open) { window.setTimeout(tick, 1000 - (Date.now() % 1000) + 5); }
  }
  tick();
})();
