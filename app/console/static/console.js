// Paybridge console: the few things plain HTML cannot do. Everything that runs is in this
// file: the pages' Content-Security-Policy allows no inline script and no inline style.
(function () {
  "use strict";

  // Bars and meters: their width comes as data-share (a percentage), set here because
  // a style="" attribute would be refused by the policy.
  function applyShares(root) {
    root.querySelectorAll("[data-share]").forEach(function (el) {
      var share = Math.max(0, Math.min(100, parseFloat(el.getAttribute("data-share")) || 0));
      el.style.width = share + "%";
    });
  }

  // Dangerous buttons ask first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // The dashboard (and a reconcile run's progress) swaps in a fresh body every few
  // seconds. A body marked data-final is the last one: the page is loaded once more, so
  // what depends on the finished work (a run's differences) shows too.
  function refreshPanel(panel) {
    var every = parseInt(panel.getAttribute("data-every"), 10) || 10000;
    function load() {
      var finished = false;
      fetch(panel.getAttribute("data-refresh"), {credentials: "same-origin"})
        .then(function (r) { if (!r.ok || r.redirected) { throw new Error(r.status); } return r.text(); })
        .then(function (html) {
          panel.innerHTML = html;
          applyShares(panel);
          finished = panel.querySelector("[data-final]") !== null;
          var stamp = document.getElementById("refreshed");
          if (stamp) { stamp.textContent = "refreshed " + new Date().toLocaleTimeString(); }
        })
        .catch(function () {
          var stamp = document.getElementById("refreshed");
          if (stamp) { stamp.textContent = "could not refresh; retrying"; }
        })
        .finally(function () {
          if (finished) { window.location.reload(); } else { window.setTimeout(load, every); }
        });
    }
    window.setTimeout(load, every);
  }

  // A bulk operation's page polls its progress until it is done.
  function followBulk(box) {
    var url = box.getAttribute("data-progress");
    function poll() {
      fetch(url, {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (op) {
          var share = op.total ? (op.processed / op.total) * 100 : 100;
          document.getElementById("bar").style.width = share + "%";
          document.getElementById("processed").textContent = op.processed;
          document.getElementById("total").textContent = op.total;
          document.getElementById("changed").textContent = op.changed;
          var badge = document.createElement("span");
          badge.className = "badge badge-" + op.status;
          badge.textContent = op.status;
          document.getElementById("status").replaceChildren(badge);
          document.getElementById("error").textContent = op.error || "";
          if (op.status !== "done" && op.status !== "failed") { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyShares(document);
    var panel = document.getElementById("panel");
    if (panel && panel.hasAttribute("data-refresh")) { refreshPanel(panel); }
    var box = document.getElementById("bulk");
    if (box) { followBulk(box); }
  });
})();
