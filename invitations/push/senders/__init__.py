"""One async sender per push provider, each behind ``base.Sender``."""
