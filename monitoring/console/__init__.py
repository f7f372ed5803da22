"""The web console: server-rendered pages of what the service knows (overview, agent, alerts, traces,
a trace's waterfall), with a little vanilla JavaScript for refresh and the waterfall.

Everything it needs is served by the service itself (no CDN, no build step): it works in a cluster
without internet. Pages need the read API's credentials (auth.py) and carry a strict Content Security
Policy; every value from agents or spans is escaped by the templates.
"""

from .handlers import add_console_routes

__all__ = ["add_console_routes"]
