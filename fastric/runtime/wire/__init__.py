"""The runtime's wire layer: Runtime API requests and responses (sans-I/O) and the two transports."""
