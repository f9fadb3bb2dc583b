/* A long list (a province's departments: over a thousand) gets a box to narrow it: every
   select[data-filter] with more options than its data-filter number gets a search box right
   after it (after its label, when the label wraps it). Typing keeps the options whose name
   contains the text (the tree's indentation ignored) and says how many there are; a single
   match is chosen. The box has no name, so a form never sends it; the selected option is
   never hidden. The page works without it. */
(function () {
  "use strict";
  function plain(text) {
    return text.replace(/[\s\u3000]+/g, "").toLowerCase();
  }
  Array.prototype.forEach.call(document.querySelectorAll("select[data-filter]"), function (select, n) {
    var options = Array.prototype.filter.call(select.options, function (o) { return o.value !== ""; });
    if (options.length <= (parseInt(select.getAttribute("data-filter"), 10) || 0)) { return; }
    var label = select.getAttribute("data-filter-label") || "名称";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "select-filter";
    box.id = (select.id || select.name || "list") + "-filter-" + n;
    box.setAttribute("aria-label", "按" + label + "筛选下拉列表");
    box.placeholder = "输入" + label + "筛选";
    box.autocomplete = "off";
    var status = document.createElement("span");
    status.className = "hint select-filter-status";
    status.setAttribute("role", "status");
    box.setAttribute("aria-describedby", box.id + "-status");
    status.id = box.id + "-status";
    var texts = options.map(function (o) { return plain(o.textContent); });
    box.addEventListener("input", function () {
      var q = plain(box.value);
      var shown = [];
      options.forEach(function (o, i) {
        var keep = !q || texts[i].indexOf(q) !== -1;
        o.hidden = !keep && !o.selected;
        if (keep) { shown.push(o); }
      });
      if (!q) {
        status.textContent = "";
      } else if (shown.length === 1) {
        if (!select.multiple) {
          shown[0].selected = true;
          select.dispatchEvent(new Event("change", {bubbles: true}));
        }
        status.textContent = (select.multiple ? "1 项符合：" : "已选中：") + shown[0].textContent.trim();
      } else {
        status.textContent = shown.length ? shown.length + " 项符合，请在列表中选择" : "没有符合的项";
      }
    });
    // After the select's label when the label wraps it: inside, the box and its status would
    // become part of the select's accessible name.
    var wrap = document.createElement("span");
    wrap.className = "select-filter-wrap";
    wrap.appendChild(box);
    wrap.appendChild(status);
    (select.closest("label") || select).insertAdjacentElement("afterend", wrap);
  });
})();
