// Fill the summary from the delivery form's query string (a little JS, like a real page).
"use strict";
var q = new URLSearchParams(location.search);
["street", "city", "country"].forEach(function (k) {
  document.getElementById("sum-" + k).textContent = q.get(k) || "";
});
