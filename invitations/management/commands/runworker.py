"""`manage.py runworker call-timers`: Channels' runworker, with instances started eagerly."""

from channels.management.commands.runworker import Command as ChannelsRunworker

from invitations.timers import EagerWorker


class Command(ChannelsRunworker):
    worker_class = EagerWorker
