// Fill the new server's connection and limit fields from a preset without reloading the
// page. Without this script each preset link reloads the add form prefilled by the server.
"use strict";
(function () {
  function setField(name, value) {
    const field = document.getElementById("id_" + name);
    if (!field) {
      return;
    }
    if (field.type === "checkbox") {
      field.checked = Boolean(value);
    } else {
      field.value = value === null || value === undefined ? "" : value;
    }
    field.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function showInformation(preset) {
    const box = document.getElementById("preset-information");
    const limits = document.getElementById("preset-published-limits");
    const warnings = document.getElementById("preset-warnings");
    limits.textContent = preset.published_limits;
    warnings.replaceChildren(
      ...preset.warnings.map(function (text) {
        const paragraph = document.createElement("p");
        paragraph.className = "errornote";
        paragraph.textContent = text;
        return paragraph;
      })
    );
    box.hidden = !(preset.published_limits || preset.warnings.length);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const data = document.getElementById("server-presets-data");
    if (!data) {
      return;
    }
    const presets = JSON.parse(data.textContent);
    document.querySelectorAll(".preset-link").forEach(function (link) {
      link.addEventListener("click", function (event) {
        const preset = presets[link.dataset.preset];
        if (!preset) {
          return;
        }
        event.preventDefault();
        ["host", "port", "security", "use_auth", "auth_method", "limit_period", "limit_count"].forEach(
          function (name) {
            setField(name, preset[name]);
          }
        );
        showInformation(preset);
      });
    });
  });
})();
