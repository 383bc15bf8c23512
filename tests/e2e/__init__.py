"""End-to-end tests: a live app driven by headless Chromium."""
