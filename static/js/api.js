// Talking to the JSON API; an error answer becomes an Error carrying the server's message.

// frame: a video frame, which the server searches at one scale (a photo gets several, for small faces).
export async function detect(blob, { annotate = false, frame = false } = {}) {
  const query = new URLSearchParams();
  if (annotate) query.set("annotate", "1");
  if (frame) query.set("mode", "frame");
  const search = query.toString();
  const response = await fetch(search ? `/api/detect?${search}` : "/api/detect", {
    method: "POST",
    headers: { "Content-Type": blob.type || "application/octet-stream" },
    body: blob,
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message || `The server answered ${response.status}.`);
  }
  return body;
}
