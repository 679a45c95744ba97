// Acme Expenses: a little progressive enhancement. The forms work without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var amount = document.getElementById("amount");
  var total = document.getElementById("total");
  if (amount && total) {
    var show = function () {
      var n = parseFloat(amount.value.replace(",", "."));
      total.textContent = isFinite(n) ? "EUR " + n.toFixed(2) : "EUR 0.00";
    };
    amount.addEventListener("input", show);
    amount.addEventListener("blur", function () {
      var n = parseFloat(amount.value.replace(",", "."));
      if (isFinite(n)) { amount.value = n.toFixed(2); }
      show();
    });
    show();
  }
});
