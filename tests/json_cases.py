"""JSON documents the runtime must refuse exactly as awslambdaric does, shared by the core, first-invocation and
differential tests. The first nine are errors the standard library's scanner raises itself (on 3.10/3.11 that
error path needs `json.decoder` imported, which the first invocation never does)."""

MALFORMED_EVENTS = [
    b"{bad",
    b'{"a": "unterminated',
    b'{"a" 1}',
    b'{"a": 1,}',
    b"[1 2]",
    b'{"a": "\x01"}',
    b'{"a": "\\x41"}',
    b'{"a": "\\u12"}',
    b"{'a': 1}",
]
TOO_DEEP = b"[" * 100_000 + b"]" * 100_000  # past every recursion limit
