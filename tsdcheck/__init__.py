"""tsdcheck: an executable formal model of POSIX thread-specific data and a checker for real implementations."""

__version__ = "0.1.0"
