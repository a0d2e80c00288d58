// Photo page: each chosen or dropped photo is posted to /api/detect and shown annotated by the server.
import { detect } from "./api.js";
import { describe, summary } from "./faces.js";

const form = document.getElementById("upload-form");
const input = document.getElementById("file-input");
const status = document.getElementById("status");
const results = document.getElementById("results");
const template = document.getElementById("result-template");
const maxBytes = Number(form.dataset.maxBytes);
const ACCEPTED = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"];
// Browsers that cannot show HEIC often leave its type empty: the name tells.
const accepted = (file) => ACCEPTED.includes(file.type) || /\.hei[cf]$/i.test(file.name);

async function analyse(file) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.querySelector(".result-name").textContent = file.name;
  const summaryLine = card.querySelector(".summary");
  const image = card.querySelector(".result-image");
  const download = card.querySelector(".download");
  image.hidden = download.hidden = true;
  summaryLine.textContent = "Analysing…";
  results.prepend(card);
  try {
    if (!accepted(file)) throw new Error("This file type is not supported; choose a JPEG, PNG, WebP or HEIC photo.");
    if (file.size > maxBytes) throw new Error(`This file is larger than ${maxBytes / 1048576} MB.`);
    const result = await detect(file.type ? file : file.slice(0, file.size, "image/heic"), { annotate: true });
    const url = `data:image/jpeg;base64,${result.annotated_image}`;
    summaryLine.textContent = summary(result.faces);
    image.src = download.href = url;
    image.alt = `${file.name}: ${summary(result.faces)}`;
    download.download = file.name.replace(/\.[^.]+$/, "") + "-annotated.jpg";
    image.hidden = download.hidden = false;
    const list = card.querySelector(".faces");
    result.faces.forEach((face, i) => {
      const item = document.createElement("li");
      item.className = face.label;
      item.textContent = `Face ${i + 1}: ${describe(face)}`;
      list.append(item);
    });
    card.classList.add(result.faces.length ? "has-faces" : "no-faces");
  } catch (error) {
    summaryLine.textContent = error.message;
    card.classList.add("error");
  }
}

async function analyseAll(files) {
  const list = [...files];
  if (!list.length) return;
  status.textContent = `Analysing ${list.length} photo${list.length > 1 ? "s" : ""}…`;
  for (const file of list) await analyse(file);
  status.textContent = `Done: ${list.length} photo${list.length > 1 ? "s" : ""} analysed.`;
}

input.addEventListener("change", () => {
  analyseAll(input.files);
  input.value = "";
});
form.addEventListener("submit", (event) => event.preventDefault());
for (const name of ["dragenter", "dragover"]) {
  form.addEventListener(name, (event) => {
    event.preventDefault();
    form.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  form.addEventListener(name, () => form.classList.remove("dragging"));
}
form.addEventListener("drop", (event) => {
  event.preventDefault();
  analyseAll(event.dataTransfer.files);
});
