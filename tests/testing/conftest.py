"""The plugin's own tests run inner pytest sessions with pytest's `pytester`."""

pytest_plugins = ["pytester"]
