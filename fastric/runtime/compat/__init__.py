"""Cold-path compatibility with awslambdaric 4.2.2: what runs only when the hot path cannot give its answer."""
