// verdict report page: open the collapsed branches a link points into; expand or collapse the tree;
// print with every branch open; sort tables whose header is clicked. No network, no libraries.
(function () {
  "use strict";
  function reveal(id) {
    var el = id && document.getElementById(id);
    if (!el) return;
    for (var p = el; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
    el.scrollIntoView({block: "center"});
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[href^='#']");
    if (a) reveal(decodeURIComponent(a.getAttribute("href").slice(1)));
    var b = e.target.closest && e.target.closest("button[data-tree]");
    if (b) {
      var open = b.getAttribute("data-tree") === "open";
      document.querySelectorAll("#tree details").forEach(function (d) { d.open = open; });
    }
  });
  if (location.hash) reveal(decodeURIComponent(location.hash.slice(1)));
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var num = th.getAttribute("data-type") === "number", sign = dir === "ascending" ? 1 : -1;
        function key(r) {
          var c = r.cells[col], v = c.getAttribute("data-v");
          if (v === null) v = c.textContent.trim();
          return num ? (v === "" ? NaN : parseFloat(v)) : v.toLowerCase();
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (num) {  // blanks last either way
            if (isNaN(x)) return isNaN(y) ? 0 : 1;
            if (isNaN(y)) return -1;
            return sign * (x - y);
          }
          return sign * (x < y ? -1 : x > y ? 1 : 0);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
