// Refreshes the template editor's preview panel as the administrator types. The page works
// without it: the "Preview unsaved changes" button posts the form to the same view.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const module = document.querySelector(".mail-preview-module[data-preview-url]");
  const form = module && module.closest("form");
  if (!form) {
    return;
  }
  let timer = null;
  let generation = 0;
  const refresh = async () => {
    const current = ++generation;
    const data = new FormData(form);
    data.set("_fragment", "1");
    const response = await fetch(module.dataset.previewUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
    });
    if (!response.ok || current !== generation) {
      return;
    }
    const panel = document.getElementById("mail-preview");
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    panel.replaceWith(holder.firstElementChild);
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
});
