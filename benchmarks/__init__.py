"""fastric's benchmarks: a verifying Runtime API, client launchers, scenarios and the comparison script."""
