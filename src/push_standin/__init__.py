"""Local stand-ins for the push services (FCM HTTP v1 and APNs), for development, the demo and tests."""
