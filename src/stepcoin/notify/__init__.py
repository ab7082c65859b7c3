"""Notifications (issue 18): push devices, the in-app inbox, preferences, and the outbox that
sends pushes through FCM and APNs (docs/notifications.md)."""
