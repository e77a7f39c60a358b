"""Code that runs inside the benchmarked client processes (their task root): handlers, payloads, the plain bootstrap."""
