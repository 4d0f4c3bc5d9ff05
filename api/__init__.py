"""HTTP-level pieces mounted on the same server as the page."""
