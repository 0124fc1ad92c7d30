"""Alerts to chat: Slack, Microsoft Teams, Discord, Rocket.Chat and Google Chat, with severity filtering.

Must not decide when to alert (the engine does); only how each service wants the message.
"""
