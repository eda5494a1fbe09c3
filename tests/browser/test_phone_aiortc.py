"""A phone, simulated with aiortc, answers a call from the browser exactly as a mobile app would:
a token from the REST API, the /ws/ socket with that token, call.ack, accept over REST, then the
WebRTC offer to the caller over rtc.signal (API.md: the newly accepted participant offers).
Media must flow both ways: the browser decodes the phone's video, and the phone receives the
browser's audio and video.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, shot
from .media import wait_for_media

pytestmark = pytest.mark.browser

PHONE_DEVICE = "phone-aiortc-1"


def _rest(base: str, method: str, path: str, body: Any = None, token: str = "") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


class Phone(threading.Thread):
    """Runs its own event loop; the test thread reads ``online``, ``stats`` and ``error``."""

    def __init__(self, base_url: str, username: str) -> None:
        super().__init__(daemon=True)
        self.base = base_url
        self.username = username
        self.online = threading.Event()
        self.media_ok = threading.Event()
        self.finished = threading.Event()
        self.stop_requested = threading.Event()
        self.error: BaseException | None = None
        self.frames = {"video": 0, "audio": 0}
        self.inbound: dict[str, dict[str, int]] = {}
        self.outbound: dict[str, int] = {}
        self.ended_reason: str | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.finished.set()

    async def _post(self, path: str, body: Any, token: str) -> Any:
        return await asyncio.to_thread(_rest, self.base, "POST", path, body, token)

    async def main(self) -> None:
        import websockets
        from aiortc import (
            RTCConfiguration,
            RTCIceServer,
            RTCPeerConnection,
            RTCSessionDescription,
        )
        from aiortc.contrib.media import MediaPlayer
        from aiortc.sdp import candidate_from_sdp

        token = (
            await self._post(
                "/api/auth/token/",
                {"username": self.username, "password": PASSWORD, "device_id": PHONE_DEVICE},
                "",
            )
        )["token"]
        ws_url = self.base.replace("http://", "ws://") + f"/ws/?device_id={PHONE_DEVICE}"
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Token {token}"}
        ) as ws:
            ready = json.loads(await ws.recv())
            assert ready["type"] == "session.ready", ready
            self.online.set()

            async def next_event(*types: str, timeout: float = 30) -> dict[str, Any]:
                async with asyncio.timeout(timeout):
                    while True:
                        event = json.loads(await ws.recv())
                        if event.get("type") in types:
                            return event

            invitation = await next_event("call.invitation_received")
            call_id, caller = invitation["call_id"], invitation["inviter"]
            await ws.send(json.dumps({"type": "call.ack", "call_id": call_id}))
            await self._post(f"/api/calls/{call_id}/accept/", {"device_id": PHONE_DEVICE}, token)

            ice = await asyncio.to_thread(
                _rest, self.base, "GET", "/api/rtc/ice-servers/", None, token
            )
            servers = [RTCIceServer(**s) for s in ice["ice_servers"]]
            pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
            video_src = MediaPlayer("testsrc=size=320x240:rate=30", format="lavfi")
            audio_src = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
            pc.addTrack(audio_src.audio)
            pc.addTrack(video_src.video)

            async def consume(track: Any) -> None:
                try:
                    while True:
                        await track.recv()
                        self.frames[track.kind] += 1
                except Exception:
                    return

            consumers: list[asyncio.Task[None]] = []
            pc.on("track", lambda track: consumers.append(asyncio.ensure_future(consume(track))))

            async def signal(data: dict[str, Any]) -> None:
                message = {"type": "rtc.signal", "call_id": call_id, "to": caller, "data": data}
                await ws.send(json.dumps(message))

            # The newly accepted participant offers (aiortc gathers candidates before it returns,
            # so they travel inside the SDP; then the end-of-candidates marker).
            await pc.setLocalDescription(await pc.createOffer())
            await signal({"description": {"type": "offer", "sdp": pc.localDescription.sdp}})
            await signal({"candidate": None})

            async def receive_signals() -> None:
                while True:
                    event = json.loads(await ws.recv())
                    if event.get("type") == "call.ended":
                        self.ended_reason = event["reason"]
                        return
                    if event.get("type") != "rtc.signal" or event["from"] != caller:
                        continue
                    data = event["data"]
                    if "description" in data:
                        d = data["description"]
                        await pc.setRemoteDescription(RTCSessionDescription(d["sdp"], d["type"]))
                    elif data.get("candidate") and data["candidate"].get("candidate"):
                        c = data["candidate"]
                        cand = candidate_from_sdp(c["candidate"].split(":", 1)[1])
                        cand.sdpMid = c.get("sdpMid")
                        cand.sdpMLineIndex = c.get("sdpMLineIndex")
                        await pc.addIceCandidate(cand)

            signals = asyncio.ensure_future(receive_signals())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.media_ok.is_set():
                await asyncio.sleep(0.25)
                await self._collect_stats(pc)
                if (
                    pc.connectionState == "connected"
                    and self.frames["video"] > 10
                    and self.frames["audio"] > 10
                    and self.inbound.get("video", {}).get("packetsReceived", 0) > 0
                    and self.inbound.get("audio", {}).get("packetsReceived", 0) > 0
                    and self.outbound.get("video", 0) > 0
                ):
                    self.media_ok.set()
            # Hold the call until the browser hangs up (call.ended) or the test gives up.
            while not signals.done() and not self.stop_requested.is_set():
                await asyncio.sleep(0.1)
            signals.cancel()
            for task in consumers:
                task.cancel()
            await pc.close()
            video_src.video.stop()
            audio_src.audio.stop()

    async def _collect_stats(self, pc: Any) -> None:
        report = await pc.getStats()
        for stat in report.values():
            if stat.type == "inbound-rtp":
                # aiortc's inbound-rtp stats count packets, not bytes.
                self.inbound[stat.kind] = {"packetsReceived": stat.packetsReceived}
            elif stat.type == "outbound-rtp":
                self.outbound[stat.kind] = stat.bytesSent


def test_browser_calls_an_aiortc_phone_and_media_flows_both_ways(
    team: dict, open_as: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aioice.ice

    # aioice skips loopback addresses; this machine's test traffic stays on 127.0.0.1.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda *a, **k: ["127.0.0.1"])
    alice, phone_user = team["alice"], team["erin"]
    phone = Phone(server.url, phone_user)
    phone.start()
    try:
        assert phone.online.wait(15), phone.error
        a = open_as(alice)
        expect(a.get_by_test_id(f"person-{phone_user}")).to_have_attribute("data-online", "true")
        a.get_by_test_id(f"call-video-{phone_user}").click()
        expect(a.get_by_test_id("calling-page")).to_be_visible(timeout=20000)

        # Browser side: connected, decoding the phone's test pattern and hearing its tone.
        stats = wait_for_media(a, phone_user, video=True, timeout=30)
        assert stats["video"]["framesDecoded"] > 0
        # Phone side: connected, receiving the browser's fake camera and microphone.
        assert phone.media_ok.wait(30), (
            f"phone: {phone.error!r} frames={phone.frames} in={phone.inbound} out={phone.outbound}"
        )
        a.wait_for_timeout(800)
        shot(a, "40-calling-aiortc-phone")

        a.get_by_test_id("hangup").click()
        assert phone.finished.wait(15)
        assert phone.error is None, repr(phone.error)
        assert phone.ended_reason == "all_left"
    finally:
        phone.stop_requested.set()
        phone.join(10)
