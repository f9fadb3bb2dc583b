/* Citizen pages: focus the error summary after a failed submit, and count a text's characters
   live ("已输入 N/1000 字"). The pages work without it: the server counts and refuses too. */
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  var areas = document.querySelectorAll("textarea[data-max]");
  Array.prototype.forEach.call(areas, function (area) {
    var max = parseInt(area.getAttribute("data-max"), 10);
    var out = document.getElementById(area.id + "-count");
    if (!out || !max) { return; }
    var last = "";
    function update() {
      var n = Array.from(area.value).length;
      var text = "已输入 " + n + "/" + max + " 字" + (n > max ? "，超出 " + (n - max) + " 字，请删减" : "");
      if (text !== last) { out.textContent = text; last = text; }
      out.classList.toggle("over", n > max);
      area.setAttribute("aria-invalid", n > max ? "true" : "false");
    }
    area.addEventListener("input", update);
    update();
  });
})();
