"""The socket side: /ws/ routing, authentication, the device consumer, the wire protocol, the
WebRTC signalling relay, and the device lifecycle behind presence. It calls services; services
never import it."""
