"""Local stand-ins for the push services (FCM HTTP v1 and APNs over HTTP/2): development,
the demo and tests only; the product never imports them."""
