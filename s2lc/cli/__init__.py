"""The ``s2lc`` command-line interface: thin click commands over the library."""
