"""Placeholder: the /ws/ device consumer (live delivery issue)."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class DeviceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=4401)
