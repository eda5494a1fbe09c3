// The add-people dialog: search people and invite them into the running call.

import { api, knownName, rememberName } from "../api.js";
import { h, toast } from "../ui.js";
import { applyCall } from "./lifecycle.js";
import { addCandidate, inviteErrorText } from "./model.js";

const $ = (id) => document.getElementById(id);

function showError(text) {
  $("add-error").textContent = text;
  $("add-error").hidden = false;
}

async function fillList(state) {
  const list = $("add-list");
  const term = $("add-search").value.trim();
  const seq = ++state.addSearchSeq;
  let page;
  try {
    page = await api("GET", "users/?search=" + encodeURIComponent(term));
    if (seq !== state.addSearchSeq) return; // a newer search is on its way
  } catch (err) {
    showError(err.message);
    return;
  }
  const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
  list.replaceChildren();
  for (const u of page.results) {
    rememberName(u.username, u.display_name);
    const { inCall, note } = addCandidate(state.call, u.username, u.online);
    const id = `add-${u.username}`;
    list.append(
      h(
        "li",
        {},
        h("input", {
          type: "checkbox",
          id,
          value: u.username,
          "data-testid": `add-select-${u.username}`,
          disabled: inCall,
          checked: checked.has(u.username),
        }),
        h("label", { for: id }, `${u.display_name} `, h("span", { class: "muted", text: note })),
      ),
    );
  }
}

export function wireAddPeople(state) {
  const dialog = $("add-dialog");

  $("add-people").addEventListener("click", async () => {
    $("add-error").hidden = true;
    dialog.showModal();
    await fillList(state);
  });
  $("add-search").addEventListener("input", () => fillList(state));

  $("add-form").addEventListener("submit", async (ev) => {
    if (ev.submitter && ev.submitter.value !== "invite") return;
    ev.preventDefault();
    const invitees = [...$("add-list").querySelectorAll("input:checked")].map((i) => i.value);
    if (!invitees.length) return showError("Choose someone to add.");
    try {
      const res = await api("POST", `calls/${state.callId}/invite/`, { invitees });
      for (const e of res.errors || []) toast(inviteErrorText(e, knownName(e.user)), "error");
      dialog.close();
      applyCall(state, res.call);
    } catch (err) {
      showError(err.message);
    }
  });
}
