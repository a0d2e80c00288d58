// Talking to the JSON API; an error answer becomes an Error carrying the server's message.

export async function detect(blob, { annotate = false } = {}) {
  const response = await fetch(annotate ? "/api/detect?annotate=1" : "/api/detect", {
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
