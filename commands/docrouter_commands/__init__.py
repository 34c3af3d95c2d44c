"""The docrouter command line: argument parsing and printing, outside the library."""
