"""The abstract state machine of POSIX thread-specific data: free of I/O."""
