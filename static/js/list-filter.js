/* A long list (a province's departments: over a thousand; a hall's service items: hundreds) gets
   a box to narrow it once it has more than LONG items (or than its data-filter number). Two kinds
   of list: a select[data-filter] (the box goes right after the select, after its label when the
   label wraps it) and a fieldset[data-filter] of checkboxes (admin/_checks.html's check_list; the
   box goes above the boxes); data-filter-label names what is typed. Typing keeps the items whose
   name contains the text (spaces and the tree's indentation ignored) and says how many there are;
   in a single-choice select a single match is chosen. A chosen option or a ticked box is never
   hidden. The box has no name, so a form never sends it. The page works without it. */
(function () {
  "use strict";
  var LONG = 15;
  function plain(text) {
    return text.replace(/[\s\u3000]+/g, "").toLowerCase();
  }

  // One list: its items (each hidden when it does not match), whether one is chosen, how a
  // single match is chosen (if at all), what follows a filtering, where the box goes.
  function selectList(select) {
    var options = Array.prototype.filter.call(select.options, function (o) { return o.value !== ""; });
    return {
      items: options,
      chosen: function (o) { return o.selected; },
      choose: select.multiple ? null : function (o) {
        o.selected = true;
        select.dispatchEvent(new Event("change", {bubbles: true}));
      },
      // A group (the counter's service items by department) with nothing left shows no heading.
      done: function () {
        Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
          group.hidden = !Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
        });
      },
      noun: "下拉列表",
      id: select.id || select.name || "list",
      // After the select's label when the label wraps it: inside, the box and its status would
      // become part of the select's accessible name.
      place: function (wrap) { (select.closest("label") || select).insertAdjacentElement("afterend", wrap); }
    };
  }

  function checkList(fieldset) {
    var boxes = fieldset.querySelector(".check-list");
    var labels = boxes ? Array.prototype.slice.call(boxes.querySelectorAll("label")) : [];
    return {
      items: labels,
      chosen: function (label) { var input = label.querySelector("input"); return !!(input && input.checked); },
      choose: null,
      done: function () {},
      noun: "选项",
      id: fieldset.id || "checks",
      place: function (wrap) { boxes.insertAdjacentElement("beforebegin", wrap); }
    };
  }

  function attach(element, list, n) {
    var from = parseInt(element.getAttribute("data-filter"), 10);
    if (list.items.length <= (isNaN(from) ? LONG : from)) { return; }
    var label = element.getAttribute("data-filter-label") || "名称";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "list-filter";
    box.id = list.id + "-filter-" + n;
    box.setAttribute("aria-label", "按" + label + "筛选" + list.noun);
    box.placeholder = "输入" + label + "筛选";
    box.autocomplete = "off";
    var status = document.createElement("span");
    status.className = "hint list-filter-status";
    status.setAttribute("role", "status");
    status.id = box.id + "-status";
    box.setAttribute("aria-describedby", status.id);
    var texts = list.items.map(function (item) { return plain(item.textContent); });
    box.addEventListener("input", function () {
      var q = plain(box.value);
      var matches = list.items.map(function (item, i) { return !q || texts[i].indexOf(q) !== -1; });
      var shown = list.items.filter(function (item, i) { return matches[i]; });
      if (q && shown.length === 1 && list.choose) { list.choose(shown[0]); }
      // After choosing: the option chosen before is hidden like any other that does not match.
      list.items.forEach(function (item, i) { item.hidden = !matches[i] && !list.chosen(item); });
      list.done();
      if (!q) {
        status.textContent = "";
      } else if (shown.length === 1) {
        status.textContent = (list.choose ? "已选中：" : "1 项符合：") + shown[0].textContent.trim();
      } else {
        status.textContent = shown.length ? shown.length + " 项符合，请在列表中选择" : "没有符合的项";
      }
    });
    var wrap = document.createElement("span");
    wrap.className = "list-filter-wrap";
    wrap.appendChild(box);
    wrap.appendChild(status);
    list.place(wrap);
  }

  Array.prototype.forEach.call(document.querySelectorAll("select[data-filter], fieldset[data-filter]"), function (el, n) {
    attach(el, el.tagName === "SELECT" ? selectList(el) : checkList(el), n);
  });
})();
