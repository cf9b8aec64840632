"""Shop assistant application core: settings, store, channels, router, CLI, supervisor."""
