// Webcam page: sends each camera frame, downscaled to JPEG, to /api/detect?mode=frame (searched at one scale, so
// that the server keeps the camera's rate) with up to two requests in flight, and draws the newest answer over
// the video.
import { detect } from "./api.js";
import { drawFaces, summary } from "./faces.js";

const FRAME_WIDTH = 480; // wide enough for faces across a room, small enough for a quick round trip
const JPEG_QUALITY = 0.8;
const IN_FLIGHT = 2; // the page grabs and sends a frame while the server works on the last one
const RETRY_MS = 1000; // after a failed frame, so a server in trouble is not flooded
const NO_FACE = "No face in view. Face the camera, come closer or add light.";

const video = document.getElementById("video");
const stage = document.querySelector(".stage");
const overlay = document.getElementById("overlay");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const cameraChoice = document.getElementById("camera-choice");
const cameraSelect = document.getElementById("camera-select");
const message = document.getElementById("message");
const fpsOut = document.getElementById("fps");
const latencyOut = document.getElementById("latency");
const faceCountOut = document.getElementById("face-count");

const frame = document.createElement("canvas");
let stream = null;
let lastResult = null; // { faces, width } of the most recent answer
let completions = []; // times of answers in the last second, for frames per second
let session = 0; // bumped on every start and stop: a loop from an earlier session ends instead of running twice

function cameraErrorMessage(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission was denied. Allow the camera for this site in your browser settings, then press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found. Connect a camera and press Start again.";
    case "NotReadableError":
      return "The camera is busy in another application. Close it there and press Start again.";
    default:
      return `The camera could not start: ${error.message || error.name}`;
  }
}

function cameraUnavailableReason() {
  if (!window.isSecureContext) {
    return "The camera only works on a secure page: open this site over HTTPS or on localhost.";
  }
  if (!navigator.mediaDevices?.getUserMedia) return "This browser cannot share a camera with web pages.";
  return null;
}

// The message is a role="alert": screen readers announce each change, so it is written only when it changes.
function showMessage(text) {
  if (message.textContent !== text) message.textContent = text;
}

async function listCameras(activeId) {
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  cameraSelect.replaceChildren(
    ...cameras.map((camera, i) => new Option(camera.label || `Camera ${i + 1}`, camera.deviceId, false, camera.deviceId === activeId)),
  );
  cameraChoice.hidden = cameras.length < 2;
}

async function start(deviceId) {
  const reason = cameraUnavailableReason();
  if (reason) {
    showMessage(reason);
    return;
  }
  showMessage("");
  stopCamera();
  const mine = session;
  let opened;
  try {
    opened = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (error) {
    if (mine === session) showMessage(cameraErrorMessage(error));
    return;
  }
  if (mine !== session) {
    opened.getTracks().forEach((track) => track.stop()); // stopped or restarted while the camera was opening
    return;
  }
  stream = opened;
  video.srcObject = stream;
  try {
    await video.play();
  } catch (error) {
    if (mine === session) {
      stopCamera();
      showMessage(`The camera opened but its video could not play (${error.name}). Press Start again.`);
    }
    return; // an AbortError from a newer start or a stop needs no word
  }
  if (mine !== session) return;
  fitStage(stream.getVideoTracks()[0]);
  startButton.disabled = true;
  stopButton.disabled = false;
  await listCameras(stream.getVideoTracks()[0].getSettings().deviceId);
  if (mine === session) loop(mine);
}

// The stage takes the camera's shape (4:3, 16:9, a portrait phone's), and a camera that faces the user is shown
// mirrored, boxes included, as people expect of themselves; only a camera that says it faces away is not.
function fitStage(track) {
  stage.style.setProperty("--ratio", String(video.videoWidth / video.videoHeight));
  stage.classList.toggle("mirrored", track.getSettings().facingMode !== "environment");
}

function stopCamera() {
  session += 1;
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
  lastResult = null;
  completions = [];
  draw();
  startButton.disabled = false;
  stopButton.disabled = true;
  fpsOut.textContent = latencyOut.textContent = faceCountOut.textContent = "–";
}

function grabFrame() {
  const scale = Math.min(1, FRAME_WIDTH / video.videoWidth);
  frame.width = Math.round(video.videoWidth * scale);
  frame.height = Math.round(video.videoHeight * scale);
  frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
  return new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves when the camera shows a new frame (or after a while, so that a stopped video cannot hold a loop).
function nextVideoFrame() {
  return Promise.race([
    new Promise((resolve) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(resolve) : requestAnimationFrame(resolve))),
    sleep(250),
  ]);
}

async function loop(mine) {
  const current = () => mine === session;
  const pending = new Set();
  let failing = false; // after a failure, one frame at a time, a second apart, until one is answered
  let shownSent = 0; // when the answer on screen was sent: a late answer never replaces a newer one

  async function send(blob) {
    const sent = performance.now();
    try {
      const result = await detect(blob, { frame: true });
      failing = false;
      if (!current() || sent < shownSent) return;
      shownSent = sent;
      lastResult = result;
      showMessage("");
      const now = performance.now();
      completions = completions.filter((t) => now - t < 1000).concat(now);
      fpsOut.textContent = completions.length.toFixed(0);
      latencyOut.textContent = `${Math.round(now - sent)} ms`;
      faceCountOut.textContent = summary(lastResult.faces, NO_FACE);
      draw();
    } catch (error) {
      failing = true;
      if (current()) showMessage(`The server could not analyse the frame: ${error.message}`);
      await sleep(RETRY_MS);
    }
  }

  while (current()) {
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) {
      await new Promise((resolve) => requestAnimationFrame(resolve));
      continue;
    }
    if (pending.size >= (failing ? 1 : IN_FLIGHT)) {
      await Promise.race(pending);
      continue;
    }
    const request = send(await grabFrame()).finally(() => pending.delete(request));
    pending.add(request);
    await nextVideoFrame(); // each camera frame is sent once at most: the camera sets the pace
  }
}

// Keeps the overlay exactly over the picture the video element shows, at any window size.
function draw() {
  const rect = video.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  overlay.width = Math.round(rect.width * ratio);
  overlay.height = Math.round(rect.height * ratio);
  const ctx = overlay.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);
  if (!lastResult || !video.videoWidth) return;
  const shown = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight); // object-fit: contain
  const scale = shown * (video.videoWidth / lastResult.width);
  // The video is mirrored by CSS; the boxes are mirrored here, so that their labels still read left to right.
  const width = lastResult.width;
  const faces = stage.classList.contains("mirrored")
    ? lastResult.faces.map((f) => ({ ...f, box: { ...f.box, x: width - f.box.x - f.box.w } }))
    : lastResult.faces;
  drawFaces(ctx, faces, {
    scale,
    offsetX: (rect.width - video.videoWidth * shown) / 2,
    offsetY: (rect.height - video.videoHeight * shown) / 2,
  });
  overlay.dataset.boxes = String(lastResult.faces.length);
}

startButton.addEventListener("click", () => start());
stopButton.addEventListener("click", stopCamera);
cameraSelect.addEventListener("change", () => start(cameraSelect.value));
new ResizeObserver(draw).observe(video);
