// Show only the parts of the server form that the chosen transport and sign-in method use.
// Without this script every part shows under its own heading, and the server ignores the
// parts that do not apply.
"use strict";
(function () {
  function chosen(name, fallback) {
    const field = document.getElementById("id_" + name);
    return field && field.value ? field.value : fallback;
  }

  function showRow(name, visible) {
    document.querySelectorAll(".form-row.field-" + name).forEach(function (row) {
      row.hidden = !visible;
    });
  }

  function update() {
    const transport = chosen("transport", "smtp");
    const method = chosen("auth_method", "password");
    const useAuth = document.getElementById("id_use_auth");
    const signsIn = !useAuth || useAuth.checked;
    const bySmtp = transport === "smtp";
    document.querySelectorAll("fieldset.smtp-only").forEach(function (fieldset) {
      fieldset.hidden = !bySmtp;
    });
    document.querySelectorAll("fieldset.esp-credentials").forEach(function (fieldset) {
      fieldset.hidden = !fieldset.classList.contains("transport-" + transport);
    });
    document.querySelectorAll("fieldset.oauth-credentials").forEach(function (fieldset) {
      fieldset.hidden = !(bySmtp && signsIn && fieldset.classList.contains("auth-" + method));
    });
    ["auth_method", "username"].forEach(function (name) {
      showRow(name, signsIn);
    });
    ["new_password", "clear_password"].forEach(function (name) {
      showRow(name, signsIn && method === "password");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("id_transport")) {
      return;
    }
    ["transport", "auth_method", "use_auth"].forEach(function (name) {
      const field = document.getElementById("id_" + name);
      if (field) {
        field.addEventListener("change", update);
      }
    });
    update();
  });
})();
