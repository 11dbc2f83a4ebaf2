// The staff customer page's reveal countdown (templates/access/customer.html): the time
// left, live; when it is up, the revealed values are taken off the page. Without
// JavaScript the page says until when they show, and a reload after that says
// "expired". A file of our own: the Content Security Policy allows no inline script.
(function () {
  "use strict";
  var timer = document.getElementById("reveal-timer");
  if (!timer) { return; }
  var ends = Date.parse(timer.getAttribute("data-expires-at"));
  var left = timer.querySelector(".reveal-left");
  if (isNaN(ends) || !left) { return; }

  function expire() {
    var cells = document.querySelectorAll("[data-revealed]");
    for (var i = 0; i < cells.length; i++) {
      cells[i].textContent = "Reveal expired: reload to see it masked";
      cells[i].classList.add("muted");
      cells[i].removeAttribute("data-revealed");
    }
    timer.hidden = true;
    var announce = document.getElementById("reveal-announce");
    if (announce) {
      announce.textContent = "The reveal expired: its values were removed from this page.";
      announce.className = "warn";
    }
  }

  function tick() {
    var seconds = Math.ceil((ends - Date.now()) / 1000);
    if (seconds <= 0) { expire(); return; }
    var m = Math.floor(seconds / 60), s = seconds % 60;
    left.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    window.setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }
  tick();
})();
