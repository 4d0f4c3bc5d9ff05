"""The version written into every image's infotext."""

VERSION = "0.1.0"
INFOTEXT_VERSION = f"easel-{VERSION}"
