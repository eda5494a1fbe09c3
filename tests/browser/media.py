"""Proving media flows: connection state and inbound-rtp stats of the page's peer connections."""

from __future__ import annotations

import time
from typing import Any

STATS_JS = """async (remote) => {
  const peers = window.callsite && window.callsite.peers;
  const peer = peers && peers.get(remote);
  if (!peer) return {exists: false};
  const out = {exists: true, connectionState: peer.pc.connectionState, video: null, audio: null};
  const stats = await peer.pc.getStats();
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    const kind = r.kind || r.mediaType;
    out[kind] = {
      bytesReceived: r.bytesReceived || 0,
      packetsReceived: r.packetsReceived || 0,
      framesDecoded: r.framesDecoded || 0,
    };
  });
  return out;
}"""


def media_stats(page: Any, remote: str) -> dict[str, Any]:
    return page.evaluate(STATS_JS, remote)


def flowing(stats: dict[str, Any], *, video: bool) -> bool:
    if not stats.get("exists") or stats.get("connectionState") != "connected":
        return False
    audio = stats.get("audio") or {}
    if audio.get("bytesReceived", 0) <= 0:
        return False
    if video:
        v = stats.get("video") or {}
        return v.get("bytesReceived", 0) > 0 and v.get("framesDecoded", 0) > 0
    return True


def wait_for_media(page: Any, remote: str, *, video: bool = True, timeout: float = 20) -> dict:
    """Wait until the page's connection to ``remote`` is connected and decodes their media."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = media_stats(page, remote)
        if flowing(stats, video=video):
            return stats
        time.sleep(0.25)
    raise AssertionError(f"no media from {remote} on {page.url}: {stats}")
