"""Building the sandbox image (offline via debootstrap, or from a Dockerfile)."""
