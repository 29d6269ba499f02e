// Small progressive enhancements; every page works without them.
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches("select[data-autosubmit]") && el.value) {
    el.form.requestSubmit();
  }
});
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Repeating groups of the case form: add and remove items, keeping the
// numbers in field names (prints_1_material, prints_2_material...) in order.
function renumberGroup(group) {
  var name = group.getAttribute("data-group");
  var pattern = new RegExp("^(i-|f-|err-)?" + name + "_\\d+_");
  group.querySelectorAll(".group-items > .group-item").forEach(function (item, index) {
    var number = index + 1;
    item.setAttribute("data-number", number);
    item.querySelector("[data-item-number]").textContent = number;
    item.querySelectorAll("[name], [id], [for]").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value && pattern.test(value)) {
          el.setAttribute(attr, value.replace(pattern, function (m, prefix) {
            return (prefix || "") + name + "_" + number + "_";
          }));
        }
      });
    });
  });
}
document.addEventListener("click", function (event) {
  var add = event.target.closest("[data-add-item]");
  var remove = event.target.closest("[data-remove-item]");
  if (add) {
    var group = add.closest(".group");
    var items = group.querySelector(".group-items");
    var max = parseInt(group.getAttribute("data-max") || "0", 10);
    if (max && items.children.length >= max) {
      add.disabled = true;
      return;
    }
    var html = group.querySelector("template").innerHTML.replace(/__N__/g, "0");
    items.insertAdjacentHTML("beforeend", html);
    renumberGroup(group);
    if (max && items.children.length >= max) { add.disabled = true; }
    var first = items.lastElementChild.querySelector("input, select, textarea");
    if (first) { first.focus(); }
  } else if (remove) {
    var owner = remove.closest(".group");
    remove.closest(".group-item").remove();
    owner.querySelector("[data-add-item]").disabled = false;
    renumberGroup(owner);
  }
});
